"""A sequence's `schedule.max_per_day`: at most that many emails a local day to one person,
across every sequence they are in. Pure: which claimed emails wait for the next day."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from drip.addresses import zone
from drip.schedule import Slot, slot_on
from drip.sequence import Library
from drip.store import ClaimedDelivery

#: How far back the emails a person already got today are looked for (a local day is at
#: most 26 hours long, counted from the latest timezone).
LOOK_BACK = timedelta(hours=27)


def start_of_day(now: datetime, timezone: str) -> datetime:
    """Local midnight of today in `timezone`, as a UTC instant."""
    tz = zone(timezone)
    local = now.astimezone(tz)
    return datetime.combine(local.date(), datetime.min.time(), tzinfo=tz).astimezone(
        now.tzinfo)


def over_the_limit(batch: Sequence[ClaimedDelivery], already: Mapping[int, Sequence[datetime]],
                   library: Library, now: datetime) -> dict[int, Slot]:
    """The claimed emails that must wait, each with the slot it waits for.

    `already`: per subscriber, when each email they got in the last LOOK_BACK went out
    (or started to). Emails are taken in due order; one that answers a join at once
    (a step sent `immediately`) is never held back, but it counts.
    """
    counted: dict[int, int] = {}
    waiting: dict[int, Slot] = {}
    for claimed in sorted(batch, key=lambda c: (c.due_at, c.id)):
        person = claimed.subscriber_id
        if person not in counted:
            midnight = start_of_day(now, claimed.timezone)
            counted[person] = sum(1 for at in already.get(person, ()) if at >= midnight)
        sequence = library.sequences.get(claimed.sequence_key)
        limit = sequence.schedule.max_per_day if sequence else None
        immediate = bool(sequence and claimed.seq_no == 1
                         and claimed.step_key in sequence.step_keys
                         and sequence.step(claimed.step_key).immediate)
        if limit is not None and counted[person] >= limit and not immediate:
            assert sequence is not None
            tomorrow = now.astimezone(zone(claimed.timezone)).date() + timedelta(days=1)
            waiting[claimed.id] = slot_on(tomorrow, sequence.schedule, zone(claimed.timezone))
            continue
        counted[person] += 1
    return waiting

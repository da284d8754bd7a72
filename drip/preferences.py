"""When a subscriber wants their emails: the "when do you want these?" page's rules.

A subscriber picks a local send time and, if they like, a weekday for the weekly email.
The choice is checked against the windows and days of the sequences they are in, kept on
the subscriber, and their scheduled emails move into the new slot at once: the same week
(a pause-a-week stays), never sooner than six days after the email before, never outside
the window. Later emails are planned from it as they go out (drip.dispatch).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from drip.addresses import zone
from drip.errors import InvalidPreference
from drip.planner import CHECKPOINT_REMINDER, base_variant, is_checkpoint_reminder
from drip.schedule import SendPreference, next_open_slot, personal, slot_on
from drip.sequence import WEEKDAYS, Library, Schedule, weekday_name
from drip.store import Move, PreferenceRow, Store, Upcoming

_TIME = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")
#: The times the page offers, every half hour inside the window (any HH:MM is accepted).
STEP_MINUTES = 30


@dataclass(frozen=True)
class Arrival:
    """When one scheduled email will arrive, and what it is."""

    sequence_name: str
    label: str
    due_at: datetime


@dataclass(frozen=True)
class PreferencesView:
    """What the page shows: the choice so far, what may be chosen, and what comes when."""

    subscriber: PreferenceRow
    opens: time
    closes: time
    days: tuple[str, ...]
    program_time: time
    arrivals: tuple[Arrival, ...]

    @property
    def times(self) -> tuple[str, ...]:
        """The send times offered, every half hour from the window's opening."""
        start = self.opens.hour * 60 + self.opens.minute
        end = (24 * 60 if self.closes == time.max
               else self.closes.hour * 60 + self.closes.minute)
        return tuple(f"{m // 60:02d}:{m % 60:02d}" for m in range(start, end, STEP_MINUTES))


def view(store: Store, library: Library, subscriber_id: int) -> PreferencesView:
    """The page for one subscriber; reads only."""
    person = store.send_preference(subscriber_id)
    upcoming = store.upcoming(subscriber_id)
    return _view(person, upcoming, library)


def save(store: Store, library: Library, subscriber_id: int, *, send_time: str, weekday: str,
         now: datetime) -> PreferencesView:
    """Keep the subscriber's choice and move their scheduled emails into it; the page after.
    A time or day their sequences never send at raises InvalidPreference, changing nothing."""
    person = store.send_preference(subscriber_id)
    upcoming = store.upcoming(subscriber_id)
    schedules = _schedules(library, upcoming)
    preference = parse_preference(send_time, weekday, schedules)
    moves = replan(upcoming, library, person.timezone, preference, now)
    store.save_send_preference(subscriber_id, preference, moves)
    return view(store, library, subscriber_id)


def parse_preference(send_time: str, weekday: str,
                     schedules: Sequence[Schedule]) -> SendPreference:
    """The form's two fields as a SendPreference, or InvalidPreference naming each field."""
    opens, closes, days = _bounds(schedules)
    problems: dict[str, str] = {}
    at: time | None = None
    if send_time.strip():
        match = _TIME.match(send_time)
        if match and int(match.group(1)) < 24 and int(match.group(2)) < 60:
            at = time(int(match.group(1)), int(match.group(2)))
        if at is None:
            problems["send_time"] = "Choose a time from the list, like 07:00."
        elif not (opens <= at < closes):
            problems["send_time"] = (f"Choose a time from the list: your program sends "
                                     f"only between {opens:%H:%M} and {_closing(closes)}.")
    day: str | None = None
    if weekday.strip():
        name = weekday_name(weekday)
        if name not in WEEKDAYS:
            problems["weekday"] = "Choose a day from the list, or any day."
        elif name not in days:
            problems["weekday"] = (f"Your program does not send on {name.title()}s; choose "
                                   "one of the days in the list.")
        else:
            day = name
    if problems:
        raise InvalidPreference(problems)
    return SendPreference(at, day)


def replan(upcoming: Iterable[Upcoming], library: Library, timezone: str,
           preference: SendPreference, now: datetime) -> list[Move]:
    """Where each scheduled email goes with the new preference. Pure.

    The same week as planned (so a pause-a-week still counts): the chosen weekday nearest
    the planned day, but a weekly email never less than six days after the one before;
    then the chosen time, inside the window. An email already due is left to go now.
    """
    tz = zone(timezone)
    moves: list[Move] = []
    for item in upcoming:
        sequence = library.sequences.get(item.sequence_key)
        if sequence is None or item.due_at <= now or item.step_key not in sequence.step_keys:
            continue
        schedule = personal(sequence.schedule, preference)
        planned = item.due_at.astimezone(tz).date()
        day = planned
        reminder = is_checkpoint_reminder(item.variant)
        if schedule.weekday is not None and not reminder:
            pinned = WEEKDAYS.index(schedule.weekday)
            day = planned + timedelta(days=(pinned - planned.weekday() + 3) % 7 - 3)
            earliest = _earliest(item, tz)
            while earliest is not None and day < earliest:
                day += timedelta(days=7)
        slot = slot_on(max(day, now.astimezone(tz).date()), schedule, tz)
        if slot.window_end_at is not None and slot.window_end_at <= now:
            slot = next_open_slot(now, schedule, tz)
        if slot.due_at < now:
            slot = next_open_slot(now, schedule, tz)
        moves.append(Move(item.delivery_id, slot.due_at, slot.window_end_at, item.step_key,
                          item.variant))
    return moves


def _earliest(item: Upcoming, tz: ZoneInfo) -> date | None:
    """The first day a weekly email may go: six days after a weekly one before it (a week's
    plan needs its week), one day after a checkpoint reminder's weekly email."""
    if item.previous is None:
        return None
    _, variant, went_out_at = item.previous
    local = went_out_at.astimezone(tz)
    if is_checkpoint_reminder(variant):
        return local.date() + timedelta(days=1)
    return local.date() + timedelta(days=6)


def _schedules(library: Library, upcoming: Iterable[Upcoming]) -> list[Schedule]:
    found = [library.sequences[u.sequence_key].schedule for u in upcoming
             if u.sequence_key in library.sequences]
    return found or [Schedule()]


def _bounds(schedules: Sequence[Schedule]) -> tuple[time, time, tuple[str, ...]]:
    """The window and days every one of these schedules allows."""
    opens = max(s.opens for s in schedules)
    closes = min(s.closes if s.window is not None else time(21) for s in schedules)
    days = tuple(d for d in WEEKDAYS if all(d in s.days for s in schedules))
    return opens, closes, days


def _closing(closes: time) -> str:
    return "midnight" if closes == time.max else f"{closes:%H:%M}"


def _view(person: PreferenceRow, upcoming: Sequence[Upcoming],
          library: Library) -> PreferencesView:
    schedules = _schedules(library, upcoming)
    opens, closes, days = _bounds(schedules)
    arrivals = []
    for item in upcoming:
        sequence = library.sequences.get(item.sequence_key)
        if sequence is None or item.step_key not in sequence.step_keys:
            continue
        week = sequence.step(item.step_key).week
        label = (f"a quick check-in on Week {week}"
                 if base_variant(item.variant) == CHECKPOINT_REMINDER else f"Week {week}")
        arrivals.append(Arrival(sequence.name, label, item.due_at))
    return PreferencesView(person, opens, closes, days, schedules[0].send_time,
                           tuple(arrivals))

"""When an email may go out: local send slots, the send window and days, DST, and a
subscriber's own preferred time and day, as pure functions.

A slot is always checked in the subscriber's zone after it is computed: a send time that
DST skips moves forward, and if that takes it out of the window (or a zone skips a whole
day, as Samoa did in 2011) the slot moves to the next day that has room.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from drip.sequence import QUIET_END, QUIET_START, WEEKDAYS, Schedule, Step

#: How many days ahead a slot is looked for: every weekday twice, whatever `days` allows.
_HORIZON = 15


@dataclass(frozen=True)
class Slot:
    """A delivery may go out from `due_at` until `window_end_at` (None: any time after)."""

    due_at: datetime
    window_end_at: datetime | None


@dataclass(frozen=True)
class SendPreference:
    """A subscriber's own choice from the preferences page: a local send time and a weekday
    for the weekly email; None keeps the sequence's."""

    send_time: time | None = None
    weekday: str | None = None

    @property
    def empty(self) -> bool:
        return self.send_time is None and self.weekday is None


def personal(schedule: Schedule, preference: SendPreference | None) -> Schedule:
    """The sequence's schedule with the subscriber's preference in it, where it fits: a time
    outside this sequence's window, or a day it never sends on, is left out (a preference is
    per subscriber, a window per sequence)."""
    if preference is None or preference.empty:
        return schedule
    update: dict[str, object] = {}
    if preference.send_time is not None and schedule.opens <= preference.send_time < (
            schedule.closes if schedule.window is not None else QUIET_START):
        update["send_time"] = preference.send_time
    if preference.weekday is not None and preference.weekday in schedule.days:
        update["weekday"] = preference.weekday
    return schedule.model_copy(update=update) if update else schedule


def local_moment(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock time; a time skipped by DST moves forward."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def _closing(day: date, schedule: Schedule, tz: ZoneInfo) -> datetime:
    """When the window closes on `day`: the earlier reading of a time DST repeats or skips,
    so the window never runs past its closing time."""
    closes = schedule.closes
    if closes == time.max:
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return min(datetime.combine(day, closes, tzinfo=tz).replace(fold=fold).astimezone(UTC)
               for fold in (0, 1))


def sends_on(day: date, schedule: Schedule) -> bool:
    return WEEKDAYS[day.weekday()] in schedule.days


def in_window(moment: datetime, schedule: Schedule, tz: ZoneInfo) -> bool:
    """Whether an email may go out at `moment`: inside the window, on one of the days."""
    local = moment.astimezone(tz)
    if not sends_on(local.date(), schedule):
        return False
    return (schedule.opens <= local.time()
            and moment < _closing(local.date(), schedule, tz))


def _slot_at(day: date, at: time, schedule: Schedule, tz: ZoneInfo) -> Slot | None:
    """The slot at local `at` on `day`, if that day sends and the moment is really inside
    its window (DST or a skipped day can push it out)."""
    if not sends_on(day, schedule):
        return None
    due = local_moment(day, at, tz)
    end = _closing(day, schedule, tz)
    local = due.astimezone(tz)
    if local.date() != day or local.time() < schedule.opens or due >= end:
        return None
    return Slot(due, end)


def slot_on(day: date, schedule: Schedule, tz: ZoneInfo) -> Slot:
    """The send slot on `day`, or on the first day after it that emails may go out on."""
    for offset in range(_HORIZON):
        slot = _slot_at(day + timedelta(days=offset), schedule.send_time, schedule, tz)
        if slot is not None:
            return slot
    raise ValueError("no send slot in two weeks")  # pragma: no cover - days is never empty


def is_quiet(moment: datetime, tz: ZoneInfo) -> bool:
    """True between 21:00 and 06:00 local time, when no scheduled email goes out."""
    local = moment.astimezone(tz).time()
    return local >= QUIET_START or local < QUIET_END


def immediate_slot(now: datetime, schedule: Schedule | None = None,
                   tz: ZoneInfo | None = None) -> Slot:
    """The slot of a first email sent `immediately`: at once. With a window or days in the
    schedule, at once only inside them (else when the window next opens), or at the next
    send time when the schedule says `first_email: send-time`."""
    if schedule is None or tz is None or (not schedule.bounded
                                          and schedule.first_email == "at-once"):
        return Slot(now, None)
    if schedule.first_email == "send-time":
        return next_send_time(now, schedule, tz)
    today = now.astimezone(tz).date()
    if in_window(now, schedule, tz):
        return Slot(now, _closing(today, schedule, tz))
    for offset in range(_HORIZON):
        slot = _slot_at(today + timedelta(days=offset), schedule.opens, schedule, tz)
        if slot is not None and slot.due_at >= now:
            return slot
    return next_open_slot(now, schedule, tz)  # pragma: no cover - a window opens each week


def slot_after(previous: datetime, step: Step, schedule: Schedule, tz: ZoneInfo,
               *, after_immediate: bool) -> Slot:
    """The slot for `step`, which follows an email that went out at `previous`."""
    previous_day = previous.astimezone(tz).date()
    if schedule.weekday is None:
        return slot_on(previous_day + timedelta(days=step.wait_days), schedule, tz)
    pinned = WEEKDAYS.index(schedule.weekday)
    min_gap = schedule.first_pinned_gap_days if after_immediate else step.wait_days
    day = previous_day + timedelta(days=min_gap)
    day += timedelta(days=(pinned - day.weekday()) % 7)
    return slot_on(day, schedule, tz)


def next_open_slot(now: datetime, schedule: Schedule, tz: ZoneInfo) -> Slot:
    """The first send slot that has not closed yet: today's if still open, else the next."""
    today = now.astimezone(tz).date()
    for offset in range(_HORIZON):
        slot = _slot_at(today + timedelta(days=offset), schedule.send_time, schedule, tz)
        if slot is not None and slot.window_end_at is not None and slot.window_end_at > now:
            return _after_repeated_hour(slot, now, schedule, tz)
    raise ValueError("no send slot in two weeks")  # pragma: no cover - days is never empty


def _after_repeated_hour(slot: Slot, now: datetime, schedule: Schedule, tz: ZoneInfo) -> Slot:
    """When clocks go back inside an open window, the wall clock can read earlier than the
    window's opening again (01:00 for the second time in a 01:15-02:15 window): wait until
    it reads the opening time once more."""
    local = now.astimezone(tz)
    if slot.due_at >= now or local.time() >= schedule.opens:
        return slot
    reopens = datetime.combine(local.date(), schedule.opens, tzinfo=tz).replace(fold=1)
    due = reopens.astimezone(UTC)
    if due <= now or slot.window_end_at is None or due >= slot.window_end_at:
        return slot
    return Slot(due, slot.window_end_at)


def next_send_time(now: datetime, schedule: Schedule, tz: ZoneInfo) -> Slot:
    """The first send slot that starts at or after `now`."""
    today = now.astimezone(tz).date()
    for offset in range(_HORIZON):
        slot = _slot_at(today + timedelta(days=offset), schedule.send_time, schedule, tz)
        if slot is not None and slot.due_at >= now:
            return slot
    raise ValueError("no send slot in two weeks")  # pragma: no cover - days is never empty

"""When an email may go out: local send slots, quiet hours and DST, as pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from drip.sequence import QUIET_END, QUIET_START, WEEKDAYS, Schedule, Step


@dataclass(frozen=True)
class Slot:
    """A delivery may go out from `due_at` until `window_end_at` (None: any time after)."""

    due_at: datetime
    window_end_at: datetime | None


def local_moment(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock time; a time skipped by DST moves forward."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def slot_on(day: date, schedule: Schedule, tz: ZoneInfo) -> Slot:
    return Slot(local_moment(day, schedule.send_time, tz), local_moment(day, QUIET_START, tz))


def is_quiet(moment: datetime, tz: ZoneInfo) -> bool:
    """True between 21:00 and 06:00 local time, when no scheduled email goes out."""
    local = moment.astimezone(tz).time()
    return local >= QUIET_START or local < QUIET_END


def immediate_slot(now: datetime) -> Slot:
    return Slot(now, None)


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
    """The first send slot that has not closed yet: today's if still open, else tomorrow's."""
    today = now.astimezone(tz).date()
    for offset in range(0, 3):
        slot = slot_on(today + timedelta(days=offset), schedule, tz)
        if slot.window_end_at is not None and slot.window_end_at > now:
            return slot
    return slot_on(today + timedelta(days=3), schedule, tz)  # pragma: no cover - unreachable

"""Send slots in local time: quiet hours, pinned weekdays and DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from drip.schedule import is_quiet, local_moment, next_open_slot, slot_after
from drip.sequence import Schedule, Step

WEEKLY = Step(key="week-2", week=2, send_after="1 week", subject="s", preheader="p",
              template="t.md.j2")


def local(moment: datetime, tz: str) -> datetime:
    return moment.astimezone(ZoneInfo(tz))


@pytest.mark.parametrize("tz", ["America/Los_Angeles", "Europe/London", "Australia/Sydney"])
def test_weekly_slot_is_six_thirty_local_across_dst(tz: str) -> None:
    # 2026: LA springs forward 8 March, London 29 March, Sydney falls back 5 April.
    previous = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
    for _ in range(8):
        slot = slot_after(previous, WEEKLY, Schedule(), ZoneInfo(tz), after_immediate=False)
        assert local(slot.due_at, tz).time() == time(6, 30)
        assert slot.window_end_at is not None
        assert local(slot.window_end_at, tz).time() == time(21, 0)
        assert local(slot.due_at, tz).date() == local(previous, tz).date() + timedelta(days=7)
        previous = slot.due_at


def test_dst_week_is_an_hour_short_or_long_but_the_local_hour_holds() -> None:
    tz = ZoneInfo("Europe/London")
    before = local_moment(datetime(2026, 3, 27).date(), time(6, 30), tz)
    after = local_moment(datetime(2026, 4, 3).date(), time(6, 30), tz)
    assert after - before == timedelta(days=7, hours=-1)


def test_pinned_weekday_starts_each_week_on_monday() -> None:
    schedule = Schedule(weekday="monday")
    tz = ZoneInfo("Europe/London")
    joined = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # a Wednesday
    second = slot_after(joined, WEEKLY, schedule, tz, after_immediate=True)
    assert local(second.due_at, "Europe/London").strftime("%A %H:%M") == "Monday 06:30"
    assert (second.due_at.date() - joined.date()).days >= 5  # five calendar days at least
    third = slot_after(second.due_at, WEEKLY, schedule, tz, after_immediate=False)
    assert third.due_at - second.due_at == timedelta(days=7)


def test_pinned_weekday_after_a_late_join_skips_a_too_short_first_week() -> None:
    schedule = Schedule(weekday="monday")
    joined = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)  # Saturday: Monday is only 2 days away
    second = slot_after(joined, WEEKLY, schedule, ZoneInfo("UTC"), after_immediate=True)
    assert second.due_at.date() == datetime(2026, 3, 16).date()


@pytest.mark.parametrize(("hour", "quiet"), [(20, False), (21, True), (23, True), (0, True),
                                             (5, True), (6, False), (12, False)])
def test_quiet_hours(hour: int, quiet: bool) -> None:
    tz = ZoneInfo("Australia/Sydney")
    moment = datetime(2026, 5, 1, hour, 59 if hour == 20 else 0, tzinfo=tz)
    assert is_quiet(moment, tz) is quiet


def test_a_missed_window_moves_to_the_next_morning_never_the_night() -> None:
    tz = ZoneInfo("America/Los_Angeles")
    late = datetime(2026, 3, 10, 22, 30, tzinfo=tz)
    slot = next_open_slot(late.astimezone(UTC), Schedule(), tz)
    assert local(slot.due_at, "America/Los_Angeles") == datetime(2026, 3, 11, 6, 30, tzinfo=tz)
    midday = datetime(2026, 3, 10, 13, 0, tzinfo=tz)
    slot = next_open_slot(midday.astimezone(UTC), Schedule(), tz)
    assert slot.due_at < midday.astimezone(UTC)  # today's slot is still open: due now
    assert slot.window_end_at is not None and slot.window_end_at > midday


def test_send_time_must_be_in_the_day() -> None:
    with pytest.raises(ValueError, match="between 06:00 and 20:59"):
        Schedule(send_time=time(22, 0))

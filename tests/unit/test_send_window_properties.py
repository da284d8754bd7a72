"""Property tests of the send window and days: nothing is planned outside the window or on
an excluded day, in any IANA zone, across DST transitions (drip.schedule, drip.planner)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from drip.journey import Persona, walk
from drip.planner import NOT_YET, PASSED, REPEAT_LAST, email_after, first_email
from drip.schedule import (
    SendPreference,
    Slot,
    immediate_slot,
    next_open_slot,
    next_send_time,
    personal,
    slot_after,
    slot_on,
)
from drip.sequence import WEEKDAYS, Schedule, Step, load_library
from tests.conftest import ROOT

ZONES = sorted(available_timezones())
SHIPPED = load_library(ROOT / "sequences")
PHT = SHIPPED.sequence("pht-7-week")


def step(days: int) -> Step:
    return Step(key="week-2", week=2, send_after=f"{days} days", subject="s", preheader="p",
                template="t.md.j2")


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    """A schedule with a window (quarter hours, at least an hour long), some days, a send
    time inside the window and maybe a pinned weekday among the days."""
    opens = draw(st.integers(0, 22 * 4)) * 15
    closes = draw(st.integers(opens // 15 + 4, 24 * 4)) * 15
    send = draw(st.integers(opens, closes - 1))
    days = draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True))
    weekday = draw(st.none() | st.sampled_from(days))
    window = f"{opens // 60:02d}:{opens % 60:02d}-{closes // 60:02d}:{closes % 60:02d}"
    return Schedule(send_time=time(send // 60, send % 60), window=window, days=tuple(days),
                    weekday=weekday, first_email=draw(st.sampled_from(["at-once", "send-time"])))


@cache
def transitions(zone_name: str, year: int) -> tuple[datetime, ...]:
    """The UTC instants (to the hour) at which a zone's offset changed in a year."""
    tz = ZoneInfo(zone_name)
    found = []
    moment = datetime(year, 1, 1, tzinfo=UTC)
    previous = moment.astimezone(tz).utcoffset()
    while moment.year == year:
        moment += timedelta(hours=6)
        offset = moment.astimezone(tz).utcoffset()
        if offset != previous:
            hour = moment - timedelta(hours=6)
            while hour.astimezone(tz).utcoffset() == previous:
                hour += timedelta(minutes=15)
            found.append(hour)
            previous = offset
    return tuple(found)


@st.composite
def moments(draw: st.DrawFn, zone_name: str) -> datetime:
    """A UTC moment, often within days of one of the zone's DST transitions."""
    year = draw(st.integers(1995, 2037))
    near = transitions(zone_name, year)
    if near and draw(st.booleans()):
        pivot = draw(st.sampled_from(near))
        return pivot + timedelta(minutes=draw(st.integers(-15 * 24 * 60, 2 * 24 * 60)))
    return draw(st.datetimes(min_value=datetime(year, 1, 1), max_value=datetime(year, 12, 31),
                             timezones=st.just(UTC)))


def assert_inside(slot: Slot, schedule: Schedule, tz: ZoneInfo, *, sent_from: datetime) -> None:
    """The slot goes out (at `sent_from` at the earliest) inside the window, on a send day,
    and the window it gives the dispatcher closes on time."""
    assert slot.window_end_at is not None
    start = max(slot.due_at, sent_from)
    assert start < slot.window_end_at, (slot, sent_from)
    local = start.astimezone(tz)
    assert WEEKDAYS[local.weekday()] in schedule.days, (local, schedule.days)
    assert local.time() >= schedule.opens, (local, schedule.window)
    # the last moment the dispatcher may send it is still that day, before the close
    last = (slot.window_end_at - timedelta(microseconds=1)).astimezone(tz)
    assert last.date() == local.date(), (last, local)
    assert schedule.closes == time.max or last.time() < schedule.closes, (last, schedule)


@settings(max_examples=600, deadline=None)
@given(st.data(), st.sampled_from(ZONES), schedules(), st.integers(1, 14))
def test_every_slot_is_inside_the_window_on_a_send_day(data: st.DataObject, zone_name: str,
                                                       schedule: Schedule, wait: int) -> None:
    tz = ZoneInfo(zone_name)
    now = data.draw(moments(zone_name))
    assert_inside(slot_after(now, step(wait), schedule, tz, after_immediate=data.draw(
        st.booleans())), schedule, tz, sent_from=now)
    assert_inside(slot_on(now.astimezone(tz).date(), schedule, tz), schedule, tz,
                  sent_from=now - timedelta(days=2))
    assert_inside(next_open_slot(now, schedule, tz), schedule, tz, sent_from=now)
    assert_inside(next_send_time(now, schedule, tz), schedule, tz, sent_from=now)
    # a join answered at once: inside the window too, since this schedule has one
    assert_inside(immediate_slot(now, schedule, tz), schedule, tz, sent_from=now)


@settings(max_examples=300, deadline=None)
@given(st.data(), st.sampled_from(ZONES), schedules(),
       st.none() | st.integers(0, 24 * 4 - 1), st.none() | st.sampled_from(WEEKDAYS))
def test_a_subscribers_preference_never_takes_a_slot_out_of_the_window(
        data: st.DataObject, zone_name: str, schedule: Schedule, minutes: int | None,
        weekday: str | None) -> None:
    tz = ZoneInfo(zone_name)
    preference = SendPreference(
        None if minutes is None else time(minutes // 15 // 4, minutes % 4 * 15), weekday)
    mine = personal(schedule, preference)
    now = data.draw(moments(zone_name))
    assert_inside(slot_after(now, step(7), mine, tz, after_immediate=False), schedule, tz,
                  sent_from=now)
    if preference.send_time is not None and schedule.opens <= preference.send_time < (
            schedule.closes):
        assert mine.send_time == preference.send_time


@settings(max_examples=200, deadline=None)
@given(st.data(), st.sampled_from(ZONES), schedules(),
       st.lists(st.sampled_from([PASSED, NOT_YET, None, REPEAT_LAST]), max_size=14))
def test_a_whole_journey_keeps_to_the_window(data: st.DataObject, zone_name: str,
                                             schedule: Schedule,
                                             answers: list[str | None]) -> None:
    """The shipped program with a window and days: every email of a journey, the first
    one included, goes out inside them, however the runner answers."""
    sequence = PHT.model_copy(update={"schedule": schedule})
    joined = data.draw(moments(zone_name))
    persona = Persona(timezone=zone_name, joined_at=joined, answers=tuple(answers))
    tz = ZoneInfo(zone_name)
    journey = walk(sequence, SHIPPED.offers, persona)
    assume(journey.emails)
    first = first_email(sequence, zone_name, joined).slot
    assert_inside(first, schedule, tz, sent_from=joined)
    for email in journey.emails:
        local = email.at.astimezone(tz)
        assert WEEKDAYS[local.weekday()] in schedule.days, (email, schedule)
        assert schedule.opens <= local.time(), (email, schedule)
        if schedule.closes != time.max:
            assert local.time() < schedule.closes, (email, schedule)
        following = email_after(sequence, zone_name, email.step_key, email.variant, email.at)
        if following is not None:
            assert_inside(following.slot, schedule, tz, sent_from=email.at)


def test_without_a_schedule_nothing_changes() -> None:
    """No `schedule:` block: quiet hours 21:00-06:00, any day, and a join answered at once
    at any hour, as before."""
    schedule = Schedule()
    assert (schedule.opens, schedule.closes) == (time(6), time(21))
    night = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)
    assert immediate_slot(night, schedule, ZoneInfo("UTC")) == Slot(night, None)


def test_an_excluded_day_moves_the_weekly_email_to_the_next_send_day() -> None:
    schedule = Schedule(window="06:00-20:00", days=("mon", "tue", "wed", "thu", "fri", "sat"))
    tz = ZoneInfo("Europe/Berlin")
    sunday = date(2026, 3, 29)  # and the night Berlin springs forward
    slot = slot_on(sunday, schedule, tz)
    assert slot.due_at.astimezone(tz) == datetime(2026, 3, 30, 6, 30, tzinfo=tz)
    assert slot.window_end_at == datetime(2026, 3, 30, 20, 0, tzinfo=tz)


def test_a_join_outside_the_window_waits_for_it_to_open() -> None:
    schedule = Schedule(window="07:00-20:00", send_time="08:00")
    tz = ZoneInfo("Asia/Tokyo")
    late = datetime(2026, 5, 1, 22, 15, tzinfo=tz)
    slot = immediate_slot(late.astimezone(UTC), schedule, tz)
    assert slot.due_at == datetime(2026, 5, 2, 7, 0, tzinfo=tz)
    inside = datetime(2026, 5, 1, 12, 0, tzinfo=tz)
    assert immediate_slot(inside, schedule, tz).due_at == inside
    waits = schedule.model_copy(update={"first_email": "send-time"})
    assert immediate_slot(inside, waits, tz).due_at == datetime(2026, 5, 2, 8, 0, tzinfo=tz)


def test_a_send_time_that_dst_skips_out_of_the_window_moves_a_day() -> None:
    """New York skips 02:00-03:00 on 8 March 2026: a 02:30 send in a 02:00-03:00 window has
    no slot that night and goes the night after."""
    schedule = Schedule(window="02:00-03:00", send_time="02:30")
    tz = ZoneInfo("America/New_York")
    slot = slot_on(date(2026, 3, 8), schedule, tz)
    assert slot.due_at.astimezone(tz) == datetime(2026, 3, 9, 2, 30, tzinfo=tz)


def test_clocks_going_back_inside_a_window_wait_for_its_opening_again() -> None:
    """Montevideo, 27 March 2005: at 02:00 the clocks went back to 01:00, inside a
    01:15-02:15 window; the wall clock reads 01:00 again, so the email waits for 01:15."""
    tz = ZoneInfo("America/Montevideo")
    schedule = Schedule(send_time=time(1, 15), window="01:15-02:15", days=tuple(WEEKDAYS),
                        weekday=None, first_email="at-once")
    now = datetime(2005, 3, 27, 4, 0, tzinfo=UTC)
    slot = next_open_slot(now, schedule, tz)
    assert_inside(slot, schedule, tz, sent_from=now)
    assert slot.due_at == datetime(2005, 3, 27, 4, 15, tzinfo=UTC)

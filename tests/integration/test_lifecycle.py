"""Unsubscribe, suppress, pause and resume: the next dispatch sees them, nothing bursts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from drip import lifecycle
from drip.clock import FixedClock
from drip.errors import Conflict
from drip.runtime import Drip
from drip.subscriptions import enroll


def join(drip: Drip, email: str = "ana@example.com", tz: str = "Europe/London") -> int:
    return enroll(drip.store, drip.library, email=email, sequence_key="basic",
                  now=drip.clock.now(), timezone=tz).subscriber_id


def states(drip: Drip, email: str = "ana@example.com") -> list[tuple[str, str]]:
    return [(r.step_key, r.state) for r in drip.store.deliveries(email=email)]


def test_unsubscribe_cancels_what_is_already_due(basic_drip: Drip) -> None:
    subscriber = join(basic_drip)
    change = lifecycle.unsubscribe(basic_drip.store, subscriber, basic_drip.clock.now(),
                                   source="test")
    assert change.changed and change.count == 1
    report = basic_drip.dispatcher().run_once()
    assert report.sent == []
    assert states(basic_drip) == [("week-1", "cancelled")]
    again = lifecycle.unsubscribe(basic_drip.store, subscriber, basic_drip.clock.now(),
                                  source="test")
    assert not again.changed


def test_unsubscribe_from_offers_keeps_the_program(basic_drip: Drip) -> None:
    subscriber = join(basic_drip)
    assert lifecycle.unsubscribe(basic_drip.store, subscriber, basic_drip.clock.now(),
                                 source="test", scope="offers").changed
    assert [s.step_key for s in basic_drip.dispatcher().run_once().sent] == ["week-1"]


def test_pause_holds_and_resume_shifts_by_the_pause(basic_drip: Drip, clock: FixedClock) -> None:
    join(basic_drip)
    dispatcher = basic_drip.dispatcher()
    dispatcher.run_once()  # week-1
    (week2,) = [r for r in basic_drip.store.deliveries() if r.step_key == "week-2"]
    lifecycle.pause_subscriber(basic_drip.store, "ana@example.com", clock.now())
    clock.advance(days=20)
    assert dispatcher.run_once().sent == []
    assert ("week-2", "held") in states(basic_drip)
    lifecycle.resume_subscriber(basic_drip.store, basic_drip.library, "ANA@example.com",
                                clock.now())
    (moved,) = [r for r in basic_drip.store.deliveries() if r.step_key == "week-2"]
    assert moved.state == "scheduled"
    assert moved.due_at.date() == (week2.due_at + timedelta(days=20)).date()
    clock.at = moved.due_at + timedelta(minutes=5)
    assert [s.step_key for s in dispatcher.run_once().sent] == ["week-2"]


def test_pause_a_week_link_moves_the_next_email(basic_drip: Drip, clock: FixedClock) -> None:
    join(basic_drip)
    basic_drip.dispatcher().run_once()
    (week2,) = [r for r in basic_drip.store.deliveries() if r.step_key == "week-2"]
    (enrollment_id,) = {p.enrollment_id for p in basic_drip.store.pending_deliveries()}
    lifecycle.postpone(basic_drip.store, basic_drip.library, enrollment_id, clock.now())
    (moved,) = [r for r in basic_drip.store.deliveries() if r.step_key == "week-2"]
    assert moved.due_at - week2.due_at == timedelta(days=7)


def test_suppress_and_unsuppress(basic_drip: Drip, clock: FixedClock) -> None:
    join(basic_drip)
    assert lifecycle.suppress(basic_drip.store, "ana@example.com", clock.now(), "bounced").changed
    assert basic_drip.dispatcher().run_once().sent == []
    with pytest.raises(Conflict):
        lifecycle.pause_subscriber(basic_drip.store, "ana@example.com", clock.now())
    lifecycle.unsuppress(basic_drip.store, basic_drip.library, "ana@example.com", clock.now())
    assert [s.step_key for s in basic_drip.dispatcher().run_once().sent] == ["week-1"]


def test_kill_switch_stops_everything_and_resumes_without_loss(basic_drip: Drip,
                                                               clock: FixedClock) -> None:
    for n in range(5):
        join(basic_drip, f"runner{n}@example.com")
    lifecycle.pause_all(basic_drip.store, clock.now(), "testing")
    dispatcher = basic_drip.dispatcher()
    assert dispatcher.run_once().paused
    assert basic_drip.store.count_deliveries(["sent"]) == 0
    lifecycle.resume_all(basic_drip.store)
    assert len(dispatcher.run_once().sent) == 5


def test_sequence_pause_skips_only_that_sequence(basic_drip: Drip, clock: FixedClock) -> None:
    join(basic_drip)
    lifecycle.pause_sequence(basic_drip.store, "basic", clock.now())
    assert basic_drip.dispatcher().run_once().sent == []
    clock.advance(hours=3)
    lifecycle.resume_sequence(basic_drip.store, basic_drip.library, "basic", clock.now())
    assert len(basic_drip.dispatcher().run_once().sent) == 1

"""Windows in which a due email could be lost or doubled, found in review.

Each test drives real dispatch passes against real SQLite and PostgreSQL; the providers
here are stand-ins for SendGrid that act as an operator (or SendGrid) would while a
request is out.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from drip import lifecycle
from drip.clock import FixedClock, as_utc
from drip.errors import Conflict
from drip.events import ingest
from drip.message import Message
from drip.models import Delivery
from drip.providers.base import ProviderEvent, SendResult
from drip.runtime import Drip
from drip.store import ClaimedDelivery, Sending, WentOut
from drip.subscriptions import enroll
from tests.conftest import FIXTURES, make_settings
from tests.support.sendgrid_standin import SendGridStandIn

KEY = "SG.test-key"


def hand_over_and_die(drip: Drip, clock: FixedClock, worker: str = "dead") -> ClaimedDelivery:
    """A worker claims the one due email, marks it `sending` (handed to the provider) and
    dies before recording the answer."""
    lease = timedelta(seconds=drip.settings.lease_seconds)
    (claimed,) = drip.store.claim_due(clock.now(), 10, worker, clock.now() + lease)
    drip.store.mark_sending([Sending(claimed.id, claimed.step_key, claimed.variant, None, "h")],
                            worker, clock.now(), clock.now() + lease)
    return claimed


class PausesWhileSending:
    """Accepts every email; while the request is out, an operator pauses (`drip pause`)
    the subscriber of the first one, as from another terminal."""

    name = "outbox"

    def __init__(self, drip: Drip, email: str) -> None:
        self.drip = drip
        self.email = email
        self.sent: list[tuple[str, str]] = []

    def send_batch(self, messages: Sequence[Message]) -> list[SendResult]:
        for m in messages:
            self.sent.append((m.to_email, m.step_key))
            if m.to_email == self.email:
                lifecycle.pause_subscriber(self.drip.store, self.email, self.drip.clock.now())
        return [SendResult(m.delivery_id, "accepted", message_id=f"m{m.delivery_id}")
                for m in messages]

    def close(self) -> None:
        pass


def test_pausing_while_an_email_is_with_the_provider_does_not_end_the_program(
    basic_drip: Drip, clock: FixedClock
) -> None:
    drip = basic_drip
    enroll(drip.store, drip.library, email="ana@example.com", sequence_key="basic",
           now=clock.now(), timezone="Europe/London")
    provider = PausesWhileSending(drip, "ana@example.com")
    assert [s.step_key for s in drip.dispatcher(provider).run_once().sent] == ["week-1"]
    clock.advance(days=8)  # week-2 is due while Ana is paused
    drip.dispatcher(provider).run_once()
    clock.advance(days=1)
    lifecycle.resume_subscriber(drip.store, drip.library, "ana@example.com", clock.now())
    clock.advance(days=2)
    drip.dispatcher(provider).run_once()
    rows = [(r.step_key, r.state) for r in drip.store.deliveries(email="ana@example.com")]
    # Paused, then resumed: week-2 still goes (late), it is not dropped.
    assert ("week-2", "sent") in rows, rows


class RevokesTheKey(SendGridStandIn):
    """The SendGrid stand-in, where the API key is revoked (or its Mail Send permission
    removed) right after the first request it accepts: later requests get 401."""

    revoked = False

    def _record(self, body: dict[str, Any], message_id: str) -> None:
        super()._record(body, message_id)
        if not self.revoked:
            self.revoked = True
            self.api_key = "SG.revoked"


def test_a_key_revoked_mid_batch_does_not_resend_what_sendgrid_accepted(
    tmp_path: Path, database_url: str, clock: FixedClock
) -> None:
    with RevokesTheKey(api_key=KEY) as standin:
        drip = Drip.from_settings(make_settings(
            tmp_path, database_url, sequences_dir=FIXTURES / "basic" / "sequences",
            templates_dir=FIXTURES / "basic" / "templates", backend="sendgrid",
            sendgrid_host=standin.url, sendgrid_api_key=KEY, sendgrid_timeout=2.0), clock)
        try:
            for email in ("ana@example.com", "ben@example.com"):
                enroll(drip.store, drip.library, email=email, sequence_key="basic",
                       now=clock.now(), timezone="Europe/London")
            # Ben opted out of offers: his week-1 has no nudge, so it is a second group
            # (a second request) in the same batch.
            ben = drip.store.subscriber_by_email("ben@example.com")
            lifecycle.unsubscribe(drip.store, ben.id, clock.now(), source="test",
                                  scope="offers")
            first = drip.dispatcher().run_once()
            assert first.halted and len(standin.requests) == 1
            assert len(standin.accepted_emails()) == 1
            # The operator fixes the key and resets the circuit; dispatch resumes.
            standin.api_key = KEY
            drip.store.close_circuit("sendgrid", clock.now())
            clock.advance(minutes=2)
            drip.dispatcher().run_once()
            assert standin.accepted_counts() == {"ana@example.com": 1, "ben@example.com": 1}
        finally:
            drip.close()


def test_a_send_the_provider_confirmed_is_not_reaped_as_unknown(
    basic_drip: Drip, clock: FixedClock
) -> None:
    drip = basic_drip
    enroll(drip.store, drip.library, email="ana@example.com", sequence_key="basic",
           now=clock.now(), timezone="Europe/London")
    lease = timedelta(seconds=drip.settings.lease_seconds)
    # A worker hands Ana's email to SendGrid, SendGrid accepts it, and the worker dies
    # before recording the answer.
    claimed = hand_over_and_die(drip, clock)
    # Seconds later SendGrid's Event Webhook reports it processed, naming the delivery.
    clock.advance(seconds=5)
    ingest(drip.store, [ProviderEvent("ev-1", "processed", "ana@example.com", clock.now(),
                                      delivery_id=claimed.id)], clock.now())
    clock.advance(seconds=lease.total_seconds())
    assert drip.dispatcher(worker="alive").run_once().expired_leases == 1
    (row,) = [r for r in drip.store.deliveries() if r.id == claimed.id]
    assert row.state == "sent", (row.state, row.last_error)


@pytest.mark.parametrize("suppressed_by", ["operator", "bounce"])
def test_unsuppressing_someone_keeps_the_pause_they_had(
    basic_drip: Drip, clock: FixedClock, suppressed_by: str
) -> None:
    """Paused by an operator, then suppressed (`drip suppress`, or a bounce the webhook
    reports), then unsuppressed: the pause still holds their email until they are resumed.
    It used to go out at the next dispatch, the pause forgotten."""
    drip = basic_drip
    enroll(drip.store, drip.library, email="ana@example.com", sequence_key="basic",
           now=clock.now(), timezone="Europe/London")
    assert [s.step_key for s in drip.dispatcher().run_once().sent] == ["week-1"]
    lifecycle.pause_subscriber(drip.store, "ana@example.com", clock.now())
    clock.advance(days=1)
    if suppressed_by == "operator":
        lifecycle.suppress(drip.store, "ana@example.com", clock.now(), "bounced")
    else:
        assert lifecycle.suppress_many(drip.store, {"ana@example.com": "bounced"},
                                       clock.now()) == 1
    clock.advance(days=1)
    with pytest.raises(Conflict):  # released now, the email would only be cancelled
        lifecycle.resume_subscriber(drip.store, drip.library, "ana@example.com", clock.now())
    lifecycle.unsuppress(drip.store, drip.library, "ana@example.com", clock.now())
    clock.advance(days=14)
    assert drip.dispatcher().run_once().sent == []
    rows = [(r.step_key, r.state) for r in drip.store.deliveries(email="ana@example.com")]
    assert rows == [("week-1", "sent"), ("week-2", "held")]
    lifecycle.resume_subscriber(drip.store, drip.library, "ana@example.com", clock.now())
    (week2,) = [r for r in drip.store.deliveries(email="ana@example.com")
                if r.step_key == "week-2"]
    assert week2.state == "scheduled"
    clock.at = week2.due_at + timedelta(minutes=5)
    assert [s.step_key for s in drip.dispatcher().run_once().sent] == ["week-2"]


def test_a_dead_workers_sends_become_unknown_while_the_kill_switch_is_on(
    basic_drip: Drip, clock: FixedClock
) -> None:
    drip = basic_drip
    enroll(drip.store, drip.library, email="ana@example.com", sequence_key="basic",
           now=clock.now(), timezone="Europe/London")
    claimed = hand_over_and_die(drip, clock)
    # The worker dies mid-send; the operator pulls the kill switch while investigating.
    lifecycle.pause_all(drip.store, clock.now(), "investigating a crash")
    clock.advance(hours=2)
    assert drip.dispatcher(worker="alive").run_once().paused
    (row,) = [r for r in drip.store.deliveries() if r.id == claimed.id]
    assert row.state == "unknown", row.state


class SlowToAnswer:
    """Accepts every email; the first request takes 200 s to answer (three 429 waits and a
    slow answer, on the test clock), as SendGrid under a rate limit does. It notes how much
    lease each email had left when it was handed over."""

    name = "outbox"

    def __init__(self, drip: Drip, clock: FixedClock) -> None:
        self.drip = drip
        self.clock = clock
        self.lease_left: list[float] = []

    def send_batch(self, messages: Sequence[Message]) -> list[SendResult]:
        ids = [m.delivery_id for m in messages]
        with self.drip.store.engine.connect() as conn:
            leases = conn.execute(select(Delivery.lease_until)
                                  .where(Delivery.id.in_(ids))).scalars().all()
        now = self.clock.now()
        self.lease_left += [(as_utc(lease) - now).total_seconds() for lease in leases
                            if lease is not None]
        if len(self.lease_left) == 1:
            time.sleep(0.5)  # real time: the dispatcher claims the next batch meanwhile
            self.clock.advance(seconds=200)
        return [SendResult(m.delivery_id, "accepted", message_id=f"m{m.delivery_id}")
                for m in messages]

    def close(self) -> None:
        pass


def test_each_batch_goes_to_the_provider_with_its_whole_lease(
    basic_drip: Drip, clock: FixedClock
) -> None:
    drip = basic_drip
    if drip.store.dialect != "postgresql":
        pytest.skip("SQLite carries each batch in line: it is claimed after the one before")
    for n in range(2):
        enroll(drip.store, drip.library, email=f"r{n}@example.com", sequence_key="basic",
               now=clock.now(), timezone="Europe/London")
    provider = SlowToAnswer(drip, clock)
    dispatcher = drip.dispatcher(provider)
    dispatcher.batch_size = 1
    assert len(dispatcher.run_once().sent) == 2
    lease = drip.settings.lease_seconds
    assert len(provider.lease_left) == 2
    assert all(left >= lease - 5 for left in provider.lease_left), provider.lease_left


def test_a_send_reaped_by_a_worker_running_the_edited_sequence_is_held_not_dropped(
    basic_drip: Drip, clock: FixedClock, tmp_path: Path, database_url: str
) -> None:
    drip = basic_drip
    enroll(drip.store, drip.library, email="ana@example.com", sequence_key="basic",
           now=clock.now(), timezone="Europe/London")
    drip.dispatcher().run_once()  # week-1 goes
    clock.advance(days=7, hours=1)
    lease = timedelta(seconds=drip.settings.lease_seconds)
    # An old worker hands week-2 to the provider and is killed in the deploy that
    # removes week-2 from the sequence.
    claimed = hand_over_and_die(drip, clock, worker="old")
    assert claimed.step_key == "week-2"
    edited = tmp_path / "edited"
    edited.mkdir()
    (edited / "offers.yaml").write_text(
        (FIXTURES / "basic" / "sequences" / "offers.yaml").read_text())
    original = (FIXTURES / "basic" / "sequences" / "basic.yaml").read_text()
    start, end = original.index("  - key: week-2"), original.index("  - key: week-3")
    (edited / "basic.yaml").write_text(original[:start] + original[end:])
    new = Drip.from_settings(make_settings(
        tmp_path, database_url, sequences_dir=edited,
        templates_dir=FIXTURES / "basic" / "templates"), clock)
    try:
        assert "week-2" not in new.library.sequence("basic").step_keys
        clock.advance(seconds=lease.total_seconds() + 1)
        assert new.dispatcher(worker="new").run_once().expired_leases == 1
        rows = sorted((r.seq_no, r.step_key, r.state, r.last_error)
                      for r in new.store.deliveries(email="ana@example.com"))
        # The enrollment is held with a reason, with a held email in the step's place.
        assert [r[:3] for r in rows] == [(1, "week-1", "sent"), (2, "week-2", "unknown"),
                                         (3, "week-2", "held")]
        assert "'week-2' is no longer in 'basic'" in (rows[2][3] or "")
        (enrollment,) = new.store.timeline("ana@example.com").enrollments
        assert enrollment.state == "paused"
        # Resumed while the step is still missing, it is held again and nothing goes.
        lifecycle.resume_subscriber(new.store, new.library, "ana@example.com", clock.now())
        report = new.dispatcher(worker="new").run_once()
        assert (report.sent_count, report.held) == (0, 1)
        (enrollment,) = new.store.timeline("ana@example.com").enrollments
        assert enrollment.state == "paused"
    finally:
        new.close()
    # The coach puts week-2 back and resumes the runner: what follows week-2 goes, once.
    lifecycle.resume_subscriber(drip.store, drip.library, "ana@example.com", clock.now())
    drip.dispatcher().run_once()
    rows = sorted((r.seq_no, r.step_key, r.state)
                  for r in drip.store.deliveries(email="ana@example.com"))
    assert rows[:3] == [(1, "week-1", "sent"), (2, "week-2", "unknown"), (3, "week-3", "sent")]
    (enrollment,) = drip.store.timeline("ana@example.com").enrollments
    assert enrollment.state in ("active", "completed")


class StopsTheWorker:
    """Accepts every email; while the first request is out, the worker is asked to stop
    (SIGTERM), as a deploy does."""

    name = "outbox"

    def __init__(self) -> None:
        self.dispatcher: Any = None
        self.sent: list[str] = []

    def send_batch(self, messages: Sequence[Message]) -> list[SendResult]:
        self.sent += [m.to_email for m in messages]
        if len(self.sent) == 1:
            time.sleep(0.3)  # real time: on PostgreSQL the next batch is claimed meanwhile
            self.dispatcher.stop()
        return [SendResult(m.delivery_id, "accepted", message_id=f"m{m.delivery_id}")
                for m in messages]

    def close(self) -> None:
        pass


def test_a_worker_asked_to_stop_hands_nothing_more_to_the_provider(
    basic_drip: Drip, clock: FixedClock
) -> None:
    drip = basic_drip
    for n in range(3):
        enroll(drip.store, drip.library, email=f"r{n}@example.com", sequence_key="basic",
               now=clock.now(), timezone="Europe/London")
    provider = StopsTheWorker()
    dispatcher = drip.dispatcher(provider)
    dispatcher.batch_size = 1
    provider.dispatcher = dispatcher
    assert len(dispatcher.run_once().sent) == 1
    assert len(provider.sent) == 1
    week1 = sorted(r.state for r in drip.store.deliveries() if r.step_key == "week-1")
    assert week1 == ["scheduled", "scheduled", "sent"], week1  # the rest wait, unclaimed


def test_what_follows_a_vanished_step_is_held_unless_the_program_was_over(
        basic_drip: Drip, clock: FixedClock) -> None:
    # Pure planning, as the reaper and the courier call it: a graduation email whose step
    # is gone ends the program; any other email on a vanished step holds the enrollment.
    went = [WentOut(1, 11, 21, "basic", 3, "week-9", "graduated", "UTC", clock.now()),
            WentOut(2, 12, 22, "basic", 3, "week-9", "main", "UTC", clock.now()),
            WentOut(3, 13, 23, "gone", 1, "week-1", "main", "UTC", clock.now())]
    planned, finished = basic_drip.dispatcher()._next_steps(went)
    assert finished == [11]
    assert [(p.enrollment_id, p.seq_no, p.step_key) for p in planned] == [
        (12, 4, "week-9"), (13, 2, "week-1")]
    assert all(p.hold for p in planned)
    assert "'week-9' is no longer in 'basic'" in (planned[0].hold or "")
    assert "sequences/gone.yaml" in (planned[1].hold or "")

"""The reaper: one worker at a time returns expired claims and marks lost sends unknown."""

from __future__ import annotations

from datetime import timedelta

from drip.clock import FixedClock
from drip.runtime import Drip
from drip.store import Outcome, Sending
from drip.subscriptions import enroll


def test_only_the_lease_holder_reaps_and_a_live_worker_takes_over(basic_drip: Drip,
                                                                  clock: FixedClock) -> None:
    drip = basic_drip
    for n in range(2):
        enroll(drip.store, drip.library, email=f"r{n}@example.com", sequence_key="basic",
               now=clock.now(), timezone="Europe/London")
    lease = timedelta(seconds=drip.settings.lease_seconds)
    # A worker claims both emails, hands one to the provider, and dies.
    claimed = drip.store.claim_due(clock.now(), 10, "dead", clock.now() + lease)
    assert len(claimed) == 2
    first = claimed[0]
    held = drip.store.mark_sending([Sending(first.id, first.step_key, first.variant, None, "h")],
                                   "dead", clock.now(), clock.now() + lease)
    assert held == {first.id}
    alive_a = drip.dispatcher(worker="worker-a")
    alive_b = drip.dispatcher(worker="worker-b")
    report = alive_a.run_once()  # a takes the reaper lease; nothing has expired yet
    assert report.expired_leases == 0 and report.sent == []
    clock.advance(seconds=lease.total_seconds() - 60)
    assert alive_b.run_once().expired_leases == 0  # a still holds the reaper lease
    clock.advance(seconds=120)  # the dead worker's leases and a's reaper lease expired
    report = alive_b.run_once()
    assert report.expired_leases == 1  # the in-flight one: unknown, never re-sent
    assert [s.email for s in report.sent] == [claimed[1].email]  # the mere claim: sent
    states = {r.email: r.state for r in drip.store.deliveries() if r.step_key == "week-1"}
    assert states == {first.email: "unknown", claimed[1].email: "sent"}
    assert alive_a.run_once().expired_leases == 0  # b holds the lease now; nothing left


def test_a_late_answer_settles_an_unknown_send_but_never_requeues_it(
    basic_drip: Drip, clock: FixedClock
) -> None:
    """A worker's lease ran out while the provider was still answering; the reaper marked
    its sends unknown and planned the next step. Then the slow answer arrives."""
    drip = basic_drip
    for n in range(2):
        enroll(drip.store, drip.library, email=f"slow{n}@example.com", sequence_key="basic",
               now=clock.now(), timezone="Europe/London")
    lease = timedelta(seconds=drip.settings.lease_seconds)
    claimed = drip.store.claim_due(clock.now(), 10, "slow", clock.now() + lease)
    held = drip.store.mark_sending(
        [Sending(c.id, c.step_key, c.variant, None, "h") for c in claimed], "slow",
        clock.now(), clock.now() + lease)
    assert held == {c.id for c in claimed}
    clock.advance(seconds=lease.total_seconds() + 1)
    assert drip.dispatcher(worker="reaper").run_once().expired_leases == 2
    retry_at = clock.now() + timedelta(minutes=5)
    drip.store.record_outcomes([
        Outcome(claimed[0].id, "sent", provider="sendgrid", message_id="late-accept"),
        Outcome(claimed[1].id, "scheduled", error="SendGrid answered 503", retry_at=retry_at),
    ], clock.now())
    rows = {r.id: r for r in drip.store.deliveries()}
    assert rows[claimed[0].id].state == "sent"  # the late acceptance settles it
    assert rows[claimed[1].id].state == "unknown"  # a late 503 does not put it back
    # Each enrollment has exactly one next email planned: nothing doubled.
    week2 = [r for r in rows.values() if r.step_key == "week-2"]
    assert sorted(r.email for r in week2) == sorted(c.email for c in claimed)


def _fail_planning(drip: Drip) -> None:
    """A database fault injected under drip: inserting any second email raises."""
    with drip.store.engine.begin() as conn:
        if drip.store.dialect == "postgresql":
            conn.exec_driver_sql(
                "CREATE FUNCTION injected_fault() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'injected: planning failed'; END $$")
            conn.exec_driver_sql(
                "CREATE TRIGGER injected_fault BEFORE INSERT ON deliveries FOR EACH ROW "
                "WHEN (NEW.seq_no = 2) EXECUTE FUNCTION injected_fault()")
        else:
            conn.exec_driver_sql(
                "CREATE TRIGGER injected_fault BEFORE INSERT ON deliveries "
                "WHEN NEW.seq_no = 2 BEGIN SELECT RAISE(ABORT, 'injected: planning failed'); END")


def _heal(drip: Drip) -> None:
    with drip.store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER injected_fault ON deliveries"
                             if drip.store.dialect == "postgresql"
                             else "DROP TRIGGER injected_fault")
        if drip.store.dialect == "postgresql":
            conn.exec_driver_sql("DROP FUNCTION injected_fault()")


def test_a_send_is_never_recorded_without_its_next_email(basic_drip: Drip,
                                                         clock: FixedClock) -> None:
    """Recording a send and planning the next email are one transaction, for the
    dispatcher and for the reaper: when planning fails, nothing of it is committed, and the
    enrollment is never left active with nothing planned."""
    import pytest
    from sqlalchemy.exc import DBAPIError

    drip = basic_drip
    for n in range(3):
        enroll(drip.store, drip.library, email=f"atomic{n}@example.com", sequence_key="basic",
               now=clock.now(), timezone="Europe/London")
    _fail_planning(drip)
    with pytest.raises(DBAPIError, match="injected"):
        drip.dispatcher(worker="w1").run_once()
    rows = drip.store.deliveries()
    # The emails went to the outbox, but their recording was rolled back with the plan:
    # they are still in flight, not "sent" with nothing after them.
    assert sorted(r.state for r in rows) == ["sending"] * 3
    clock.advance(seconds=drip.settings.lease_seconds + 1)
    with pytest.raises(DBAPIError, match="injected"):  # the reaper's plan fails the same way
        drip.dispatcher(worker="w2").run_once()
    assert sorted(r.state for r in drip.store.deliveries()) == ["sending"] * 3
    _heal(drip)
    report = drip.dispatcher(worker="w2").run_once()
    assert report.expired_leases == 3 and report.planned == 3
    rows = drip.store.deliveries()
    assert sorted((r.step_key, r.state) for r in rows) == (
        [("week-1", "unknown")] * 3 + [("week-2", "scheduled")] * 3)

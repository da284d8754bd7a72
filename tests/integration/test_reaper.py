"""The reaper: one worker at a time returns expired claims and marks lost sends unknown."""

from __future__ import annotations

from datetime import timedelta

from drip.clock import FixedClock
from drip.runtime import Drip
from drip.store import Sending
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

"""Provider outages: the circuit's probe wait doubles up to an hour, a probe risks one
request, and no email spends its attempts while SendGrid is down for everyone: the emails
wait and go when it is back. The scheduler's 60 s tick is played with a fixed clock.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from drip.clock import FixedClock
from drip.runtime import Drip
from tests.integration.test_sendgrid_delivery import KEY, join_many, sendgrid_drip
from tests.support.sendgrid_standin import SendGridStandIn

TICK = timedelta(seconds=60)


def tick(drip: Drip, clock: FixedClock, minutes: int) -> list[timedelta]:
    """Run a pass every minute for `minutes`; the probe waits the circuit set, in order."""
    dispatcher = drip.dispatcher()
    waits: list[timedelta] = []
    last_retry = drip.store.circuit("sendgrid").retry_at
    for _ in range(minutes):
        dispatcher.run_once()
        circuit = drip.store.circuit("sendgrid")
        if circuit.state == "open" and circuit.retry_at != last_retry:
            assert circuit.retry_at is not None
            waits.append(circuit.retry_at - clock.now())
            last_retry = circuit.retry_at
        clock.advance(seconds=TICK.total_seconds())
    return waits


def test_the_probe_wait_doubles_up_to_an_hour(
    tmp_path: Path, database_url: str, clock: FixedClock
) -> None:
    with SendGridStandIn(api_key=KEY) as server:
        drip = sendgrid_drip(tmp_path, database_url, clock, server.url, batch_size=2)
        join_many(drip, 8)
        server.fail_next(503, count=10_000)
        waits = tick(drip, clock, minutes=4 * 60)
        assert waits[0] == timedelta(minutes=1)
        minutes = [round(w.total_seconds() / 60) for w in waits]
        # about 1, 2, 4, 8, 16, 32, 60, 60 (a probe comes on the first tick after its time)
        assert all(b >= min(2 * a, 60) - 1 for a, b in pairwise(minutes))
        assert minutes[-1] == 60 and len(waits) <= 12
        assert server.posts <= 3 + len(waits)  # the run that opened it, then one per probe
        drip.close()


def test_a_probe_risks_one_request_even_when_it_times_out(
    tmp_path: Path, database_url: str, clock: FixedClock
) -> None:
    with SendGridStandIn(api_key=KEY) as server:
        drip = sendgrid_drip(tmp_path, database_url, clock, server.url, batch_size=2,
                             sendgrid_timeout=0.3)
        join_many(drip, 12)
        server.delay_next(1.0, count=1000)  # it takes the mail but never answers in time
        dispatcher = drip.dispatcher()
        first = dispatcher.run_once()
        assert first.circuit_open and server.posts == 3  # three unanswered batches in a row
        clock.advance(minutes=2)
        probe = dispatcher.run_once()
        assert probe.circuit_open and server.posts == 4 and probe.unknown == 1
        states = Counter(r.state for r in drip.store.deliveries() if r.step_key == "week-1")
        assert states == {"unknown": 7, "scheduled": 5}
        drip.close()


@pytest.mark.parametrize("outage", ["503", "refused"])
def test_a_two_hour_outage_spends_no_attempts_and_every_email_goes_after_it(
    tmp_path: Path, database_url: str, clock: FixedClock, outage: str
) -> None:
    server = SendGridStandIn(api_key=KEY).start()
    port = int(server.url.rsplit(":", 1)[1])
    drip = sendgrid_drip(tmp_path, database_url, clock, server.url, batch_size=2)
    emails = join_many(drip, 10)
    if outage == "503":
        server.fail_next(503, count=10_000)
    else:
        server.stop()
    tick(drip, clock, minutes=120)
    rows = [r for r in drip.store.deliveries() if r.step_key == "week-1"]
    assert {r.state for r in rows} == {"scheduled"}, "nothing failed during the outage"
    if outage == "503":
        server.reset_faults()
    else:
        server = SendGridStandIn(api_key=KEY, port=port).start()
    tick(drip, clock, minutes=70)  # the last probe wait was an hour at most
    rows = [r for r in drip.store.deliveries() if r.step_key == "week-1"]
    assert Counter(r.state for r in rows) == {"sent": 10}
    assert sorted(server.accepted_emails()) == sorted(emails)
    server.assert_no_violations()
    server.stop()
    drip.close()


def test_a_probe_answered_429_risks_one_request_not_the_providers_retries(
    tmp_path: Path, database_url: str, clock: FixedClock
) -> None:
    with SendGridStandIn(api_key=KEY) as server:
        drip = sendgrid_drip(tmp_path, database_url, clock, server.url, batch_size=2)
        join_many(drip, 8)
        server.fail_next(503, count=3)
        dispatcher = drip.dispatcher()
        assert dispatcher.run_once().circuit_open and server.posts == 3
        server.rate_limit_next(count=10, reset_in=0)
        clock.advance(minutes=2)
        probe = dispatcher.run_once()
        # outside a probe SendGrid's 429 is waited out and tried again, up to 3 more times;
        # a probe is one request whatever it is answered
        assert probe.circuit_open and server.posts == 4
        assert drip.store.circuit("sendgrid").state == "open"
        server.reset_faults()
        clock.advance(minutes=5)
        assert not dispatcher.run_once().circuit_open
        rows = [r for r in drip.store.deliveries() if r.step_key == "week-1"]
        assert Counter(r.state for r in rows) == {"sent": 8}
        drip.close()

"""The SendGrid transport: connections reused across batches, and each failure judged by the
phase it happened in, against real loopback servers that misbehave at that phase.

Before the request is fully written SendGrid cannot have taken it: the emails are retried.
After it, nobody knows: they are `unknown` and never sent again on their own.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from drip.clock import FixedClock
from drip.errors import NoAnswer, RequestNotSent
from drip.providers.transport import PooledTransport
from tests.integration.test_sendgrid_delivery import KEY, join_many, sendgrid_drip
from tests.support.misbehaving import MisbehavingServer
from tests.support.sendgrid_standin import SendGridStandIn


def test_one_connection_carries_every_batch_of_a_worker(
    tmp_path: Path, database_url: str, clock: FixedClock
) -> None:
    with SendGridStandIn(api_key=KEY) as server:
        drip = sendgrid_drip(tmp_path, database_url, clock, server.url, batch_size=4)
        emails = join_many(drip, 20)
        dispatcher = drip.dispatcher()
        assert dispatcher.run_once().sent_count == 20
        clock.advance(days=8)  # a second pass: week 2, on the same connection
        assert dispatcher.run_once().sent_count == 20
        assert len(server.requests) == 10
        assert server.connections == 1
        assert sorted(Counter(server.accepted_emails())) == sorted(emails)
        server.assert_no_violations()
        drip.close()


def test_a_connection_the_server_closed_while_idle_is_not_reused(
    tmp_path: Path, database_url: str, clock: FixedClock
) -> None:
    with SendGridStandIn(api_key=KEY) as server:
        drip = sendgrid_drip(tmp_path, database_url, clock, server.url, batch_size=4)
        join_many(drip, 8)
        dispatcher = drip.dispatcher()
        server.close_after_answer(count=1)  # as a server ending an idle keep-alive does
        report = dispatcher.run_once()
        assert report.sent_count == 8 and report.unknown == 0 and report.retried == 0
        assert server.connections == 2
        drip.close()


@pytest.mark.parametrize("phase", ["dns", "connect-timeout", "tls-handshake"])
def test_a_request_that_never_went_out_is_retried(
    tmp_path: Path, database_url: str, clock: FixedClock, phase: str
) -> None:
    if phase == "dns":
        server = None
        url = "http://drip-test.invalid:8080"  # .invalid never resolves (RFC 2606)
    else:
        server = MisbehavingServer(phase).__enter__()
        url = server.url
    try:
        drip = sendgrid_drip(tmp_path, database_url, clock, url, sendgrid_timeout=0.5)
        join_many(drip, 3)
        report = drip.dispatcher().run_once()
        assert report.retried == 3 and report.unknown == 0
        rows = [r for r in drip.store.deliveries() if r.step_key == "week-1"]
        assert {r.state for r in rows} == {"scheduled"}
        assert all("could not be reached" in (r.last_error or "") for r in rows)
        drip.close()
    finally:
        if server is not None:
            server.__exit__(None, None, None)


@pytest.mark.parametrize("phase", ["reset-after-body", "silent-after-body"])
def test_a_request_that_went_out_without_an_answer_is_unknown(
    tmp_path: Path, database_url: str, clock: FixedClock, phase: str
) -> None:
    with MisbehavingServer(phase) as server:
        drip = sendgrid_drip(tmp_path, database_url, clock, server.url, sendgrid_timeout=0.5)
        join_many(drip, 3)
        report = drip.dispatcher().run_once()
        assert report.unknown == 3 and report.retried == 0
        assert server.requests_read == 1
        assert {r.state for r in drip.store.deliveries() if r.step_key == "week-1"} == {
            "unknown"}
        drip.close()


def test_a_reset_while_the_body_is_being_written_is_not_sent() -> None:
    transport = PooledTransport()
    with MisbehavingServer("reset-while-writing") as server:
        with pytest.raises(RequestNotSent):
            # larger than any socket buffers between us, so the body is still being
            # written when the server resets
            transport.request("POST", server.url + "/v3/mail/send", headers={},
                              body=b"x" * 32_000_000, timeout=5)
        assert server.requests_read == 0
    transport.close()


@pytest.mark.parametrize(("phase", "error"), [
    ("connect-timeout", RequestNotSent), ("tls-handshake", RequestNotSent),
    ("reset-after-body", NoAnswer), ("silent-after-body", NoAnswer)])
def test_the_transport_names_the_phase(phase: str, error: type[Exception]) -> None:
    transport = PooledTransport()
    with MisbehavingServer(phase) as server, pytest.raises(error):
        transport.request("POST", server.url + "/v3/mail/send", headers={}, body=b"{}",
                          timeout=0.5)
    transport.close()

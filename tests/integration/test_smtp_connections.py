"""The SMTP provider against a real aiosmtpd sink on loopback: several connections kept
from batch to batch, pipelining, and the verdict of each email when the server refuses a
recipient, drops the line mid-DATA, never answers, or closes an idle connection."""

from __future__ import annotations

import email.policy
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from drip.errors import SendingHalted
from drip.message import Content, Message, html_placeholders, recipient_values
from drip.providers.base import SendResult
from drip.providers.smtp import SMTPProvider
from tests.support.smtp_sink import SmtpSink, free_port

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CONTENT = Content(key="basic:week-1:main", subject="Week 1 for %%first_name%%", preheader="",
                  html=html_placeholders('<p>Hi %%first_name%%</p><a href="%%unsubscribe_url%%">'
                                         "Unsubscribe</a>\n"),
                  text="Hi %%first_name%%\nUnsubscribe: %%unsubscribe_url%%\n", content_hash="h")


def batch(addresses: list[str], start: int = 1) -> list[Message]:
    return [Message(delivery_id=start + i, enrollment_id=start + i, sequence_key="basic",
                    step_key="week-1", variant="main", to_email=address,
                    to_name=f"Runner {start + i}", from_email="coach@example.com",
                    from_name="Dayna", content=CONTENT,
                    values=recipient_values({
                        "first_name": "Runner", "email": address,
                        "unsubscribe_url": f"https://coach.example.com/u/{start + i}"}))
            for i, address in enumerate(addresses)]


def provider(port: int, connections: int = 4, timeout: float = 10.0, user: str = "",
             password: str = "") -> SMTPProvider:
    return SMTPProvider(host="127.0.0.1", port=port, tls="none", connections=connections,
                        timeout=timeout, user=user, password=password, now=lambda: NOW)


@pytest.fixture(params=[False, True], ids=["no-pipelining", "pipelining"])
def pipelining(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def sink(pipelining: bool) -> Iterator[SmtpSink]:
    server = SmtpSink(refuse={"bounce@example.com"}, drop={"drop@example.com"},
                      stall={"stall@example.com"}, pipelining=pipelining).start()
    try:
        yield server
    finally:
        server.stop()


def verdicts(results: list[SendResult]) -> dict[int, str]:
    return {r.delivery_id: r.verdict for r in results}


@pytest.mark.parametrize("connections", [1, 4])
def test_a_batch_goes_over_the_connections_and_each_email_is_judged(
        sink: SmtpSink, connections: int) -> None:
    addresses = [f"runner{n}@example.com" for n in range(40)]
    addresses[5] = "bounce@example.com"
    smtp = provider(sink.port, connections)
    results = smtp.send_batch(batch(addresses))
    assert [r.delivery_id for r in results] == list(range(1, 41))  # in the batch's order
    assert verdicts(results)[6] == "permanent" and "550" in (results[5].reason or "")
    assert sum(r.verdict == "accepted" for r in results) == 39
    received = {str(m["To"]): m for m in sink.messages}
    assert len(received) == 39 and "Runner 6 <bounce@example.com>" not in received
    for result, address in zip(results, addresses, strict=True):
        if result.verdict != "accepted":
            continue
        message = received[f"Runner {result.delivery_id} <{address}>"]
        assert message["Message-ID"] == result.message_id
        assert message["List-Unsubscribe"] == f"<https://coach.example.com/u/{result.delivery_id}>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        body = message.get_body(("plain",))
        assert body is not None and "Hi Runner" in body.get_content()
    assert 1 <= len(sink.sessions) <= connections
    # the next batch reuses the same connections
    assert all(r.verdict == "accepted" for r in smtp.send_batch(batch(
        [f"again{n}@example.com" for n in range(20)], start=100)))
    assert len(sink.sessions) <= connections
    smtp.close()


@pytest.mark.parametrize("connections", [1, 3])
def test_a_line_dropped_mid_data_leaves_that_email_unknown_and_the_rest_go(
        sink: SmtpSink, connections: int) -> None:
    addresses = [f"runner{n}@example.com" for n in range(12)]
    addresses[3] = "drop@example.com"
    smtp = provider(sink.port, connections)
    results = verdicts(smtp.send_batch(batch(addresses)))
    assert sink.dropped == 1
    assert results.pop(4) == "unknown"  # its content arrived; the answer never did
    assert set(results.values()) == {"accepted"}
    assert len(sink.messages) == 11
    smtp.close()


def test_an_email_never_answered_is_unknown(sink: SmtpSink) -> None:
    smtp = provider(sink.port, connections=2, timeout=1.0)
    results = verdicts(smtp.send_batch(batch(["a@example.com", "stall@example.com",
                                              "b@example.com", "c@example.com"])))
    assert results == {1: "accepted", 2: "unknown", 3: "accepted", 4: "accepted"}
    smtp.close()


def test_an_idle_connection_the_server_closed_is_replaced_without_an_unknown(
        pipelining: bool) -> None:
    first = SmtpSink(pipelining=pipelining).start()
    smtp = provider(first.port, connections=2)
    try:
        assert set(verdicts(smtp.send_batch(batch(["a@example.com", "b@example.com"])))
                   .values()) == {"accepted"}
    finally:
        first.stop()  # the server closes its connections, as a relay closes idle ones
    second = SmtpSink(pipelining=pipelining).start(port=first.port)
    try:
        results = smtp.send_batch(batch(["c@example.com", "d@example.com", "e@example.com"],
                                        start=10))
        assert set(verdicts(results).values()) == {"accepted"}, results
        assert len(second.raw) == 3
        smtp.close()
    finally:
        second.stop()


def test_no_server_leaves_every_email_to_be_tried_again() -> None:
    smtp = provider(free_port(), connections=4, timeout=2.0)
    results = smtp.send_batch(batch(["a@example.com", "b@example.com", "c@example.com"]))
    assert set(verdicts(results).values()) == {"transient"}
    assert all("Cannot connect" in (r.reason or "") for r in results)


def test_a_refused_login_halts_sending() -> None:
    sink = SmtpSink().start(login=("coach", "s3cret"))
    try:
        with pytest.raises(SendingHalted, match="refused the login"):
            provider(sink.port, user="coach", password="wrong").send_batch(
                batch(["a@example.com", "b@example.com"]))
        smtp = provider(sink.port, user="coach", password="s3cret")
        assert set(verdicts(smtp.send_batch(batch(["a@example.com"]))).values()) == {"accepted"}
        smtp.close()
    finally:
        sink.stop()
    assert email.policy  # the sink parses with the default policy


def test_four_connections_carry_a_slow_relay_four_times_as_fast() -> None:
    sink = SmtpSink(latency=0.05, pipelining=True).start()
    try:
        timings = []
        for connections in (1, 4):
            smtp = provider(sink.port, connections)
            smtp.send_batch(batch(["warm@example.com"] * connections))  # connect first
            started = time.perf_counter()
            results = smtp.send_batch(batch([f"r{n}@example.com" for n in range(16)]))
            timings.append(time.perf_counter() - started)
            assert set(verdicts(results).values()) == {"accepted"}
            smtp.close()
        assert timings[1] < timings[0] / 2, timings  # 16 x 50 ms in one line vs four
    finally:
        sink.stop()

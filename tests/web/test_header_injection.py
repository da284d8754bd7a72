"""No name can add a header: an RFC 2047 encoded word hiding CR LF ("Ana\\r\\nBcc: v@evil.test")
from the form, JSON, a purchase, Stripe, an import or the CLI reaches a real SMTP server
(aiosmtpd on loopback) as one To: header and nothing else."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from drip.clock import FixedClock
from drip.errors import InvalidInput
from drip.message import Content, Message, to_mime
from drip.runtime import Drip
from tests.integration.test_smtp_delivery import Sink
from tests.support.cli import Cli, cli_env
from tests.web.conftest import purchase_headers, serving, stripe_headers, web_settings

#: "Ana\r\nBcc: v@evil.test", as the issue's reproduction sends it.
INJECTED = "=?utf-8?b?QW5hDQpCY2M6IHZAZXZpbC50ZXN0?="


@pytest.fixture
def smtp_web(tmp_path: Path, database_url: str, clock: FixedClock,
             sendgrid_key: ec.EllipticCurvePrivateKey,
             smtp_sink: tuple[Sink, int]) -> Iterator[Drip]:
    settings = web_settings(tmp_path, database_url, sendgrid_key, backend="smtp",
                            smtp_host="127.0.0.1", smtp_port=smtp_sink[1], smtp_tls="none")
    instance = Drip.from_settings(settings, clock)
    try:
        yield instance
    finally:
        instance.close()


def assert_one_recipient(sink: Sink, address: str) -> None:
    (message,) = [m for m in sink.messages if address in str(m["To"])]
    head = message.as_string().split("\n\n", 1)[0]
    assert "Bcc" not in message and not re.search(r"(?im)^bcc:", head), head
    assert [a.addr_spec for a in message["To"].addresses] == [address]
    assert "\n" not in str(message["To"]) and "=?" not in str(message["To"])


@pytest.mark.parametrize("as_json", [False, True])
def test_an_encoded_name_on_the_form_adds_no_header(smtp_web: Drip, smtp_sink: tuple[Sink, int],
                                                    as_json: bool) -> None:
    fields = {"sequence": "pht-7-week", "email": "inj2@example.com", "name": INJECTED,
              "timezone": "UTC"}
    with serving(smtp_web) as url:
        answer = (httpx.post(f"{url}/subscribe", json=fields) if as_json
                  else httpx.post(f"{url}/subscribe", data=fields))
    assert answer.status_code in (200, 202), answer.text
    assert_one_recipient(smtp_sink[0], "inj2@example.com")


@pytest.mark.parametrize("source", ["shop", "stripe"])
def test_an_encoded_name_in_a_purchase_adds_no_header(smtp_web: Drip,
                                                      smtp_sink: tuple[Sink, int],
                                                      source: str) -> None:
    if source == "shop":
        body = json.dumps({"order_id": "I-1", "email": "buyer@example.com", "name": INJECTED,
                           "product": "pht-7-week"}).encode()
        path, headers = "/hooks/purchase", purchase_headers(smtp_web, body)
    else:
        body = json.dumps({"id": "evt_1", "type": "checkout.session.completed", "data": {
            "object": {"id": "cs_1", "payment_status": "paid",
                       "metadata": {"product": "pht-7-week"},
                       "customer_details": {"email": "buyer@example.com",
                                            "name": INJECTED}}}}).encode()
        path, headers = "/hooks/stripe", stripe_headers(smtp_web, body)
    with serving(smtp_web) as url:
        answer = httpx.post(url + path, content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    smtp_web.clock.advance(days=1)  # type: ignore[attr-defined]
    smtp_web.dispatcher().run_once(last=True)
    assert_one_recipient(smtp_sink[0], "buyer@example.com")


def test_an_encoded_name_from_an_import_or_the_cli_adds_no_header(
        tmp_path: Path, database_url: str, smtp_sink: tuple[Sink, int]) -> None:
    cli = Cli(cli_env(tmp_path, database_url, DRIP_BACKEND="smtp", DRIP_SMTP_HOST="127.0.0.1",
                      DRIP_SMTP_PORT=str(smtp_sink[1]), DRIP_SMTP_TLS="none"))
    csv = tmp_path / "people.csv"
    csv.write_text(f"email,name,timezone\nimported@example.com,{INJECTED},UTC\n")
    cli("import", str(csv), "--sequence", "basic")
    cli("enroll", "typed@example.com", "--sequence", "basic", "--name", INJECTED)
    # Dispatch when the emails are due, not at a fixed offset from the wall clock: enrolled
    # late in the evening, a fixed day later falls past the send window and sends nothing.
    engine = create_engine(database_url, poolclass=NullPool)
    with engine.connect() as connection:
        due = connection.execute(text(
            "SELECT max(due_at) FROM deliveries WHERE state = 'scheduled'")).scalar_one()
    engine.dispose()
    due = due if isinstance(due, datetime) else datetime.fromisoformat(str(due))
    due = due if due.tzinfo else due.replace(tzinfo=UTC)
    cli("dispatch", "--now", (due + timedelta(minutes=1)).isoformat())
    for address in ("imported@example.com", "typed@example.com"):
        assert_one_recipient(smtp_sink[0], address)


def test_a_stored_name_or_subject_hiding_a_line_break_is_refused_when_written() -> None:
    """The last guard, whatever the source (a name stored before names were cleaned, a
    subject with the name in it): every header drip writes refuses encoded line breaks."""
    content = Content(key="k", subject="Week 1, %%first_name%%", preheader="", html="<p>x</p>",
                      text="x", content_hash="")
    message = Message(delivery_id=7, enrollment_id=1, sequence_key="s", step_key="w1",
                      variant="main", to_email="ana@example.com", to_name="Ana",
                      from_email="coach@example.com", from_name="Dayna", content=content,
                      values={"first_name": "Ana"})
    to_mime(message, sent_at=datetime(2026, 3, 2, tzinfo=UTC))
    for change in ({"to_name": INJECTED}, {"from_name": INJECTED},
                   {"values": {"first_name": INJECTED}}):
        bad = Message(**{**message.__dict__, **change})
        with pytest.raises(InvalidInput, match="line break"):
            to_mime(bad, sent_at=datetime(2026, 3, 2, tzinfo=UTC))


def test_sendgrid_fails_only_the_email_whose_stored_name_hides_a_line_break(
        tmp_path: Path, database_url: str, clock: FixedClock) -> None:
    """A name stored before names were cleaned: SendGrid builds the headers from drip's
    JSON, so drip checks them as to_mime does, and fails that email alone."""
    from sqlalchemy import update

    from drip.models import Subscriber
    from drip.subscriptions import enroll
    from tests.integration.test_sendgrid_delivery import sendgrid_drip
    from tests.support.sendgrid_standin import SendGridStandIn

    with SendGridStandIn() as standin:
        drip = sendgrid_drip(tmp_path, database_url, clock, standin.url)
        try:
            for address in ("ok@example.com", "old@example.com"):
                enroll(drip.store, drip.library, email=address, sequence_key="basic",
                       now=clock.now(), name="Ana")
            with drip.store.engine.begin() as conn:
                conn.execute(update(Subscriber).where(Subscriber.email == "old@example.com")
                             .values(name=INJECTED))
            report = drip.dispatcher().run_once()
            assert [s.email for s in report.sent] == ["ok@example.com"]
            assert standin.accepted_emails() == ["ok@example.com"]
            (failed,) = [r for r in drip.store.deliveries() if r.state == "failed"]
            assert failed.email == "old@example.com" and "line break" in (failed.last_error or "")
        finally:
            drip.close()

"""The attacks of issue 17, each through real HTTP on loopback (uvicorn in this process):
every one is refused with a 4xx, or answered as a harmless request is, and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from drip.clock import FixedClock
from drip.runtime import Drip
from tests.integration.test_smtp_delivery import Sink
from tests.support.fingerprint import fingerprint
from tests.web.conftest import free_port, purchase_headers, serving, web_settings

ORDER = {"order_id": "H-1", "email": "buyer@example.com", "name": "Ana",
         "product": "pht-7-week", "timezone": "Europe/London"}


@pytest.fixture
def http(live_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_url, timeout=10) as client:
        yield client


@pytest.mark.parametrize("path,header", [
    ("/hooks/purchase", "X-Drip-Timestamp"),
    ("/hooks/stripe", "Stripe-Signature"),
    ("/hooks/sendgrid", "X-Twilio-Email-Event-Webhook-Timestamp"),
])
@pytest.mark.parametrize("digit", [b"\xb9", b"\xb2", b"\xb3"])
def test_superscript_timestamps_are_401(web_drip: Drip, http: httpx.Client, path: str,
                                        header: str, digit: bytes) -> None:
    before = fingerprint(web_drip.store.engine)
    value = b"t=" + digit + b",v1=00" if header == "Stripe-Signature" else digit
    answer = http.post(path, content=b"{}", headers=[
        (b"Content-Type", b"application/json"), (header.encode(), value),
        (b"X-Twilio-Email-Event-Webhook-Signature", b"AAAA"),
        (b"X-Drip-Signature", b"sha256=00")])
    assert answer.status_code == 401, answer.text
    assert "timestamp" in answer.json()["error"]
    assert fingerprint(web_drip.store.engine) == before


SURROGATE = "\udcff"


def raw_json(data: object) -> bytes:
    return json.dumps(data).encode()  # ensure_ascii: a surrogate goes as the escape \udcff


@pytest.mark.parametrize("field", ["email", "timezone", "sequence", "name"])
def test_a_lone_surrogate_in_subscribe_json_is_400(web_drip: Drip, http: httpx.Client,
                                                   field: str) -> None:
    before = fingerprint(web_drip.store.engine)
    data = {"email": "ana@example.com", "name": "Ana", "timezone": "UTC",
            "sequence": "pht-7-week", field: SURROGATE}
    answer = http.post("/subscribe", content=raw_json(data),
                       headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert "surrogate" in answer.json()["error"]
    assert fingerprint(web_drip.store.engine) == before


def test_utf8_encoded_surrogates_are_400_too(web_drip: Drip, http: httpx.Client) -> None:
    body = b'{"email": "\xed\xb3\xbf@example.com", "sequence": "pht-7-week"}'
    answer = http.post("/subscribe", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text


@pytest.mark.parametrize("field", list(ORDER))
def test_a_signed_purchase_with_a_surrogate_is_400(web_drip: Drip, http: httpx.Client,
                                                   field: str) -> None:
    before = fingerprint(web_drip.store.engine)
    body = raw_json({**ORDER, field: ORDER[field] + SURROGATE})
    answer = http.post("/hooks/purchase", content=body, headers=purchase_headers(web_drip, body))
    assert answer.status_code == 400, answer.text
    assert fingerprint(web_drip.store.engine) == before


def test_a_stripe_event_whose_type_is_a_surrogate_is_400(web_drip: Drip,
                                                         http: httpx.Client) -> None:
    from tests.web.conftest import stripe_headers

    body = raw_json({"id": "evt_1", "type": SURROGATE, "data": {"object": {}}})
    answer = http.post("/hooks/stripe", content=body, headers=stripe_headers(web_drip, body))
    assert answer.status_code == 400, answer.text


SECURITY = ("content-security-policy", "referrer-policy", "x-frame-options",
            "x-content-type-options", "cache-control")


@pytest.mark.parametrize("table,as_json", [("purchases", True), ("events", False)])
def test_the_500_page_carries_the_security_headers(web_drip: Drip, http: httpx.Client,
                                                   table: str, as_json: bool) -> None:
    """Something drip did not expect (here: a table is gone) is a short 500, JSON on a hook
    and a page elsewhere, without a traceback, and with every security header."""
    from sqlalchemy import text

    body = raw_json(ORDER)
    with web_drip.store.engine.begin() as conn:
        conn.execute(text(f"ALTER TABLE {table} RENAME TO {table}_away"))
    try:
        if as_json:
            answer = http.post("/hooks/purchase", content=body,
                               headers=purchase_headers(web_drip, body))
        else:
            answer = http.post("/subscribe", data={"email": "a@example.com",
                                                   "sequence": "pht-7-week", "timezone": "UTC"})
    finally:
        with web_drip.store.engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE {table}_away RENAME TO {table}"))
    assert answer.status_code == 500
    assert "Traceback" not in answer.text and table not in answer.text
    assert "Something went wrong on our side" in answer.text
    assert answer.headers["content-type"].startswith(
        "application/json" if as_json else "text/html")
    for name in SECURITY:
        assert name in answer.headers, name


def test_a_suppressed_non_ascii_address_answers_as_any_other(web_drip: Drip,
                                                              http: httpx.Client) -> None:
    """The outbox could not write ñandúx@ (SMTPUTF8), so a suppressed ñandú@ got 200 and
    ñandúx@ 503. Now the validator refuses both alike, before anything is written."""
    from sqlalchemy import insert

    from drip.models import Subscriber

    with web_drip.store.engine.begin() as conn:  # suppressed before addresses were ASCII
        conn.execute(insert(Subscriber).values(
            email="ñandú@example.com", created_at=web_drip.clock.now(),
            suppressed_at=web_drip.clock.now(), suppressed_reason="bounced"))
    before = fingerprint(web_drip.store.engine)
    answers = [http.post("/subscribe", json={"email": address, "sequence": "pht-7-week",
                                             "timezone": "UTC"})
               for address in ("ñandú@example.com", "ñandúx@example.com")]
    assert [a.status_code for a in answers] == [400, 400]
    assert answers[0].text.replace("ñandú@", "ñandúx@") == answers[1].text
    assert "ASCII" in answers[0].json()["error"]
    assert fingerprint(web_drip.store.engine) == before  # no optin_requested row either


def test_subscribe_answers_alike_when_the_provider_is_down_and_retries_from_the_queue(
        tmp_path: Path, database_url: str, clock: FixedClock,
        sendgrid_key: ec.EllipticCurvePrivateKey) -> None:
    """New, known, unsubscribed and suppressed addresses get the same answer while the SMTP
    server is down; once it is up, the scheduler's tick sends the queued confirmations
    (never to the suppressed address)."""
    from aiosmtpd.controller import Controller

    from drip.lifecycle import suppress, unsubscribe_email
    from drip.subscriptions import enroll
    from drip.ticker import Ticker

    port = free_port()  # nothing listens there yet: every send is refused
    drip = Drip.from_settings(web_settings(tmp_path, database_url, sendgrid_key,
                                           backend="smtp", smtp_host="127.0.0.1",
                                           smtp_port=port, smtp_tls="none"), clock)
    now = clock.now()
    for address in ("known@example.com", "left@example.com", "gone@example.com"):
        enroll(drip.store, drip.library, email=address, sequence_key="pht-7-week", now=now)
    unsubscribe_email(drip.store, "left@example.com", now, source="test")
    suppress(drip.store, "gone@example.com", now, "bounced")
    addresses = ("new@example.com", "known@example.com", "left@example.com",
                 "gone@example.com")
    with serving(drip) as url:
        answers = [httpx.post(f"{url}/subscribe", json={"email": a, "sequence": "pht-7-week",
                                                        "timezone": "UTC"})
                   for a in addresses]
        pages = [httpx.post(f"{url}/subscribe", data={"email": a, "sequence": "pht-7-week",
                                                      "timezone": "UTC"})
                 for a in addresses]
    assert {(a.status_code, a.content) for a in answers} == {
        (202, answers[0].content)}, [a.text for a in answers]
    # each page names the address typed into it (so a typo shows), and nothing else differs
    assert len({(p.status_code, p.content.replace(a.encode(), b"ADDRESS"))
                for p, a in zip(pages, addresses, strict=True)}) == 1
    assert {p.status_code for p in pages} == {200}
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        ticker = Ticker(drip)
        ticker.confirmations()
        ticker.provider.close()
    finally:
        controller.stop()
        drip.close()
    received = sorted(str(m["To"]) for m in sink.messages)
    assert received == sorted(2 * ["new@example.com", "known@example.com",
                                   "left@example.com"])
    assert all("/confirm/" in m.get_body(("plain",)).get_content()  # type: ignore[union-attr]
               for m in sink.messages)


def test_confirm_links_carry_no_address(web_drip: Drip, http: httpx.Client) -> None:
    import base64
    import email
    import re

    answer = http.post("/subscribe", data={"email": "expiry@example.com",
                                           "sequence": "pht-7-week", "timezone": "UTC"})
    assert answer.status_code == 200
    (eml,) = web_drip.settings.outbox_dir.glob("*.eml")
    text = email.message_from_bytes(eml.read_bytes()).as_string()
    (token,) = set(re.findall(r"/confirm/([\w.-]+)", text))
    payload = token.split(".")[0]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    assert b"expiry" not in decoded and b"@" not in decoded
    assert http.get(f"/confirm/{token}").status_code == 200
    # a link sent before this change still works, and only for its own address
    old = web_drip.links.signer.make("confirm", int(json.loads(decoded)[0]),
                                     "expiry@example.com")
    assert http.get(f"/confirm/{old}").status_code == 200
    forged = web_drip.links.signer.make("confirm", int(json.loads(decoded)[0]),
                                        "other@example.com")
    assert http.get(f"/confirm/{forged}").status_code == 404


def test_a_pause_link_acts_once_and_not_after_a_later_email(web_drip: Drip,
                                                            http: httpx.Client) -> None:
    """Three POSTs of one pause link moved the next email 7, 14 and 21 days; now 7 once.
    The link in an email a later one superseded no longer acts either."""
    import email
    import email.policy
    import re

    from drip.subscriptions import enroll

    enroll(web_drip.store, web_drip.library, email="pause@example.com",
           sequence_key="pht-7-week", now=web_drip.clock.now(), timezone="UTC")
    web_drip.dispatcher().run_once()

    def pause_path(step: str) -> str:
        """The pause link of the newest email sent for `step` (its reminder counts)."""
        eml = sorted(web_drip.settings.outbox_dir.glob(f"*{step}*.eml"))[-1]
        message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        (path,) = set(re.findall(r"https://drip\.test(/p/[\w.-]+)", text))
        return path

    def next_due() -> object:
        (row,) = [r for r in web_drip.store.deliveries(email="pause@example.com")
                  if r.state == "scheduled"]
        return row.due_at

    planned = next_due()
    link = pause_path("week-1")
    assert http.post(link).status_code == 200
    paused = next_due()
    assert paused - planned == timedelta(days=7)  # type: ignore[operator]
    before = fingerprint(web_drip.store.engine)
    for _ in range(2):
        again = http.post(link)  # said plainly, with the new date; nothing moves
        assert again.status_code == 200 and "This email is already paused" in again.text
    assert fingerprint(web_drip.store.engine) == before and next_due() == paused
    web_drip.clock.advance(days=15)  # type: ignore[attr-defined]
    web_drip.dispatcher().run_once()  # week 1's reminder goes: week 1's link is superseded
    before = fingerprint(web_drip.store.engine)
    stale = http.post(link)
    assert stale.status_code == 409 and "earlier email" in stale.text
    assert fingerprint(web_drip.store.engine) == before
    assert http.post(pause_path("week-1")).status_code == 200  # the latest one still works


def test_racing_identical_sendgrid_batches_count_each_event_once(
        web_drip: Drip, http: httpx.Client, sendgrid_key: ec.EllipticCurvePrivateKey) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tests.web.conftest import sendgrid_event, sendgrid_headers

    at = web_drip.clock.now().timestamp()
    body = json.dumps([sendgrid_event("open", f"r{n}@example.com", at=at, event_id=f"ev-{n}")
                       for n in range(51)]).encode()
    headers = sendgrid_headers(web_drip, sendgrid_key, body)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: http.post("/hooks/sendgrid", content=body,
                                                    headers=headers), range(8)))
    assert [a.status_code for a in answers] == [200] * 8
    assert sum(a.json()["new"] for a in answers) == 51
    assert fingerprint(web_drip.store.engine)["events"][0] == 51

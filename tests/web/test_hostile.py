"""The attacks of issue 17, each through real HTTP on loopback (uvicorn in this process):
every one is refused with a 4xx, or answered as a harmless request is, and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from drip.runtime import Drip
from tests.support.fingerprint import fingerprint
from tests.web.conftest import purchase_headers

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
                                                   "sequence": "pht-7-week"})
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

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

"""The web app over a real database (SQLite and PostgreSQL), driven through Starlette's
TestClient (httpx, in process), with real secrets and a real P-256 key made here."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.testclient import TestClient

from drip.clock import FixedClock
from drip.runtime import Drip
from drip.settings import Settings
from drip.signatures import sign_purchase, sign_stripe
from drip.web import create_app
from tests.conftest import make_settings
from tests.integration.test_smtp_delivery import Sink
from tests.support import loopback
from tests.support.loopback import free_port

WEBHOOK_SECRET = "shop-secret-for-tests"
STRIPE_SECRET = "whsec_test_secret"


@pytest.fixture(scope="session")
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_key_text(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def web_settings(tmp_path: Path, database_url: str, sendgrid_key: ec.EllipticCurvePrivateKey,
                 **overrides: Any) -> Settings:
    return make_settings(tmp_path, database_url, webhook_secret=WEBHOOK_SECRET,
                         stripe_webhook_secret=STRIPE_SECRET,
                         sendgrid_webhook_public_key=public_key_text(sendgrid_key),
                         subscribe_limit=1000, from_name="Dayna", **overrides)


@pytest.fixture
def web_drip(tmp_path: Path, database_url: str, clock: FixedClock,
             sendgrid_key: ec.EllipticCurvePrivateKey) -> Iterator[Drip]:
    settings = web_settings(tmp_path, database_url, sendgrid_key)
    instance = Drip.from_settings(settings, clock)
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture
def client(web_drip: Drip) -> Iterator[TestClient]:
    with TestClient(create_app(web_drip), base_url="https://drip.test") as test_client:
        yield test_client


def stamp(drip: Drip) -> int:
    return int(drip.clock.now().timestamp())


def purchase_headers(drip: Drip, body: bytes, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    at = stamp(drip)
    return {"X-Drip-Timestamp": str(at), "X-Drip-Signature": sign_purchase(secret, at, body),
            "Content-Type": "application/json"}


def stripe_headers(drip: Drip, body: bytes) -> dict[str, str]:
    return {"Stripe-Signature": sign_stripe(STRIPE_SECRET, stamp(drip), body),
            "Content-Type": "application/json"}


def sendgrid_headers(drip: Drip, key: ec.EllipticCurvePrivateKey, body: bytes,
                     at: int | None = None) -> dict[str, str]:
    text = str(stamp(drip) if at is None else at)
    signature = key.sign(text.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {"X-Twilio-Email-Event-Webhook-Timestamp": text,
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "Content-Type": "application/json"}


def sendgrid_event(event: str, email: str, *, delivery_id: int | None = None,
                   at: float | None = None, event_id: str | None = None,
                   **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"email": email, "event": event,
                            "timestamp": int(at if at is not None else time.time()),
                            "sg_event_id": event_id or f"{event}-{email}-{delivery_id}",
                            "sg_message_id": "msg.filter0001"}
    if delivery_id is not None:
        item.update({"delivery_id": str(delivery_id), "enrollment_id": "1",
                     "step_key": "week-1"})
    item.update(extra)
    return item


def body_of(data: Any) -> bytes:
    return json.dumps(data).encode()


@pytest.fixture
def smtp_sink() -> Iterator[tuple[Sink, int]]:
    """A real SMTP server on loopback (aiosmtpd) that keeps what it receives."""
    from aiosmtpd.controller import Controller

    handler = Sink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@contextmanager
def serving(drip: Drip) -> Iterator[str]:
    """The app over `drip` under a real uvicorn server on loopback, in a thread."""
    with loopback.serving(create_app(drip)) as url:
        yield url


@pytest.fixture
def live_url(web_drip: Drip) -> Iterator[str]:
    """The app under a real uvicorn server on loopback, in a thread of this process."""
    with serving(web_drip) as url:
        yield url

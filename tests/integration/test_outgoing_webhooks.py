"""Outgoing webhooks to a receiver on loopback that fails, times out and then succeeds:
every event arrives at least once, in order per subscriber, under a stable webhook-id,
signed as Standard Webhooks specify (checked against the spec's published test vector)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from drip import lifecycle
from drip.clock import FixedClock
from drip.runtime import Drip
from drip.subscriptions import enroll
from drip.webhooks import deliver_due, sign, verify
from tests.conftest import make_settings

SECRET = "whsec_" + base64.b64encode(b"drip-outgoing-webhook-test-key!!").decode()


def test_signatures_match_the_standard_webhooks_test_vector() -> None:
    # from the standard-webhooks/standard-webhooks spec and its reference libraries
    vector = sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                  1614265330, b'{"test": 2432232314}')
    assert vector == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def reference_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """The spec's algorithm, written out here independently of drip's."""
    key = base64.b64decode(secret.split("_", 1)[1])
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class Receiver:
    """Answers 500 to the first post, stalls past the sender's timeout on the second,
    and accepts every post after that; keeps what it was sent."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.accepted: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                post = {"id": self.headers["webhook-id"],
                        "timestamp": self.headers["webhook-timestamp"],
                        "signature": self.headers["webhook-signature"], "body": body}
                receiver.posts.append(post)
                if len(receiver.posts) == 1:
                    self.send_response(500)
                    self.end_headers()
                    return
                if len(receiver.posts) == 2:
                    time.sleep(1.0)
                receiver.accepted.append(post)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    try:
        yield found
    finally:
        found.server.shutdown()
        found.server.server_close()


@pytest.fixture
def hooked(tmp_path: Path, database_url: str, clock: FixedClock,
           receiver: Receiver) -> Iterator[Drip]:
    drip = Drip.from_settings(make_settings(tmp_path, database_url,
                                            webhook_urls=receiver.url,
                                            webhook_signing_secret=SECRET), clock)
    try:
        yield drip
    finally:
        drip.close()


def test_every_event_arrives_at_least_once_in_order_signed(hooked: Drip, clock: FixedClock,
                                                           receiver: Receiver) -> None:
    drip = hooked
    for address in ("ana@example.com", "ben@example.com"):
        enroll(drip.store, drip.library, email=address, sequence_key="pht-7-week",
               now=clock.now(), source="purchase")
    lifecycle.unsubscribe_email(drip.store, "ana@example.com", clock.now(), source="web")

    def deliver() -> None:
        deliver_due(drip.store, [receiver.url], SECRET, clock.now(), timeout=0.3)

    deliver()  # ana's enrolled: 500; ben's enrolled: timed out; ana's unsubscribed waits
    assert [json.loads(p["body"])["type"] for p in receiver.posts] == ["enrolled",
                                                                       "enrolled"]
    deliver()  # nothing is due before its backoff
    assert len(receiver.posts) == 2
    clock.advance(seconds=5)
    deliver()
    clock.advance(seconds=5)
    deliver()

    events = [(json.loads(p["body"])["data"]["email"], json.loads(p["body"])["type"], p["id"])
              for p in receiver.accepted]
    firsts: dict[str, str] = {}
    for email, kind, msg_id in events:
        firsts.setdefault(f"{email} {kind}", msg_id)
    assert set(firsts) == {"ana@example.com enrolled", "ben@example.com enrolled",
                           "ana@example.com unsubscribed"}
    ana = [kind for email, kind, _ in events if email == "ana@example.com"]
    assert ana.index("enrolled") < ana.index("unsubscribed")
    # the failed post and its retry carry the same id, so the receiver can deduplicate
    assert receiver.posts[0]["id"] == firsts["ana@example.com enrolled"]
    for post in receiver.posts:
        assert post["signature"] == reference_signature(SECRET, post["id"], post["timestamp"],
                                                        post["body"])
        verify(SECRET, post["body"], post["id"], post["timestamp"], post["signature"],
               clock.now().timestamp())
    log = {(r.event, r.subscriber_id): r for r in drip.store.webhook_log()}
    assert all(r.state == "delivered" for r in log.values())
    assert max(r.attempts for r in log.values()) == 2


def test_a_receiver_that_keeps_failing_is_given_up_after_a_day(
        tmp_path: Path, database_url: str, clock: FixedClock) -> None:
    drip = Drip.from_settings(make_settings(tmp_path, database_url,
                                            webhook_urls="http://127.0.0.1:9/nothing-here",
                                            webhook_signing_secret=SECRET), clock)
    try:
        enroll(drip.store, drip.library, email="cy@example.com", sequence_key="pht-7-week",
               now=clock.now(), source="purchase")
        attempts = 0
        for _ in range(12):
            report = deliver_due(drip.store, drip.settings.webhook_targets, SECRET,
                                 clock.now(), timeout=0.3)
            attempts += report.retrying + report.failed
            clock.advance(hours=3)
        [message] = drip.store.webhook_log()
        assert message.state == "failed" and "nothing-here" in (message.last_error or "")
        assert message.attempts == attempts and 6 <= attempts <= 10
        assert message.next_attempt_at - message.created_at <= timedelta(days=1)
    finally:
        drip.close()


def test_without_receivers_nothing_is_queued(drip: Drip, clock: FixedClock) -> None:
    enroll(drip.store, drip.library, email="dee@example.com", sequence_key="pht-7-week",
           now=clock.now(), source="purchase")
    assert drip.store.webhook_log() == []

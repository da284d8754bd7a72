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
from tests.support.webhook_receiver import WebhookReceiver
from tests.support.webhook_receiver import reference_signature as library_signature

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


# --- every event, queued with its change, to the endpoints that want it ------------------------


@pytest.fixture
def collector() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as found:
        yield found


def test_each_change_is_posted_once_in_order_to_the_endpoints_that_want_it(
        basic_drip: Drip, clock: FixedClock, collector: WebhookReceiver) -> None:
    from drip import checkpoints
    from drip.planner import PASSED
    from drip.webhooks.endpoints import EVENTS, add_endpoint, remove_endpoint

    drip, store = basic_drip, basic_drip.store
    everything = add_endpoint(store, collector.base + "/all", [], clock.now())
    journey = add_endpoint(store, collector.base + "/journey",
                           ["email.sent,graduated", "checkpoint.answered"], clock.now())
    assert everything.events == () and journey.events == (
        "email.sent", "checkpoint.answered", "graduated")
    assert {r.url for r in store.webhook_endpoints()} == {everything.url, journey.url}

    def deliver() -> None:
        deliver_due(store, [], "", clock.now(), timeout=2)

    joined = enroll(store, drip.library, email="eve@example.com", sequence_key="basic",
                    now=clock.now(), source="purchase")
    enroll(store, drip.library, email="eve@example.com", sequence_key="basic",
           now=clock.now(), source="purchase")  # already in: no second `enrolled`
    dispatcher = drip.dispatcher()
    dispatcher.run_once()  # week 1
    [week_one] = [r for r in store.deliveries(email="eve@example.com") if r.state == "sent"]
    checkpoints.answer(store, drip.library, week_one.id, PASSED, clock.now())
    lifecycle.pause_subscriber(store, "eve@example.com", clock.now())
    lifecycle.resume_subscriber(store, drip.library, "eve@example.com", clock.now())
    for _ in range(3 * 7 * 4):  # weeks 2 and 3, then nothing is left: graduated
        clock.advance(hours=6)
        dispatcher.run_once()
    store.record_purchase(source="shop", order_id="A-1", subscriber_id=joined.subscriber_id,
                          product="strength-plan", now=clock.now())
    store.record_purchase(source="shop", order_id="A-1", subscriber_id=joined.subscriber_id,
                          product="strength-plan", now=clock.now())  # the same order again
    enroll(store, drip.library, email="fay@example.com", sequence_key="basic",
           now=clock.now(), source="purchase")
    enroll(store, drip.library, email="gus@example.com", sequence_key="basic",
           now=clock.now(), source="purchase")
    lifecycle.suppress(store, "fay@example.com", clock.now(), "bounce")
    lifecycle.suppress(store, "fay@example.com", clock.now(), "bounce")
    lifecycle.suppress_many(store, {"gus@example.com": "spamreport"}, clock.now())
    lifecycle.unsubscribe_email(store, "eve@example.com", clock.now(), source="web")
    lifecycle.unsubscribe_email(store, "eve@example.com", clock.now(), source="web")
    deliver()

    everything_got = collector.events("/all")
    eve = [(kind, data.get("step")) for _, kind, data in everything_got
           if data["email"] == "eve@example.com"]
    assert eve == [("enrolled", None), ("email.sent", "week-1"),
                   ("checkpoint.answered", "week-1"), ("paused", None),
                   ("email.sent", "week-2"), ("email.sent", "week-3"), ("graduated", None),
                   ("purchased", None), ("unsubscribed", None)]
    others = [(data["email"], kind, data.get("reason")) for _, kind, data in everything_got
              if data["email"] != "eve@example.com"]
    # suppressed once each (a second suppression changes nothing), by hand and in bulk
    assert [o for o in others if o[1] == "suppressed"] == [
        ("fay@example.com", "suppressed", "bounce"), ("gus@example.com", "suppressed",
                                                      "spamreport")]
    assert {kind for _, kind, _ in everything_got} == set(EVENTS)
    assert len({msg_id for msg_id, _, _ in everything_got}) == len(everything_got)
    # the journey endpoint got only what it asked for, the same messages under the same ids
    wanted = [e for e in everything_got if e[1] in journey.events]
    assert collector.events("/journey") == wanted
    # each endpoint's posts are signed with its own secret (the spec's algorithm)
    for path, headers, body in collector.posts:
        secret = everything.secret if path == "/all" else journey.secret
        assert headers["webhook-signature"] == library_signature(
            secret, headers["webhook-id"], headers["webhook-timestamp"], body)
    # an email's message id names its delivery: settling it again queues nothing new
    sent_ids = [m for m, kind, d in everything_got if kind == "email.sent"
                and d["email"] == "eve@example.com"]
    assert sent_ids[0] == f"msg_sent_{week_one.id}"
    assert all(r.state == "delivered" for r in store.webhook_log())
    # removed, an endpoint gets nothing more; with no receiver left nothing is queued
    remove_endpoint(store, everything.url)
    remove_endpoint(store, journey.url)
    queued = len(store.webhook_log(1000))
    enroll(store, drip.library, email="hal@example.com", sequence_key="basic",
           now=clock.now(), source="purchase")
    assert len(store.webhook_log(1000)) == queued


def test_an_event_is_queued_only_where_someone_wants_it(basic_drip: Drip, clock: FixedClock,
                                                        collector: WebhookReceiver) -> None:
    from drip.errors import Conflict, InvalidInput
    from drip.webhooks.endpoints import add_endpoint

    store = basic_drip.store
    add_endpoint(store, collector.base + "/leavers", ["unsubscribed"], clock.now())
    with pytest.raises(Conflict):
        add_endpoint(store, collector.base + "/leavers", [], clock.now())
    with pytest.raises(InvalidInput):
        add_endpoint(store, collector.base + "/x", ["email.opened"], clock.now())
    with pytest.raises(InvalidInput):
        add_endpoint(store, "ftp://example.com/x", [], clock.now())
    enroll(store, basic_drip.library, email="ida@example.com", sequence_key="basic",
           now=clock.now(), source="purchase")
    basic_drip.dispatcher().run_once()
    assert store.webhook_log() == []  # nobody wants enrolled or email.sent
    lifecycle.unsubscribe_email(store, "ida@example.com", clock.now(), source="web")
    assert [r.event for r in store.webhook_log()] == ["unsubscribed"]


def test_an_event_commits_with_its_change_or_not_at_all(basic_drip: Drip, clock: FixedClock,
                                                        collector: WebhookReceiver) -> None:
    """`email.sent` is written in the transaction that records the send and plans the next
    email: when planning fails, neither the send nor its event is there."""
    from collections.abc import Sequence

    from drip.store import Outcome, PlannedDelivery, WentOut
    from drip.webhooks.endpoints import add_endpoint

    store = basic_drip.store
    add_endpoint(store, collector.base + "/all", [], clock.now())
    enroll(store, basic_drip.library, email="jo@example.com", sequence_key="basic",
           now=clock.now(), source="purchase")
    now = clock.now()
    [claimed] = store.claim_due(now, 10, "test-worker", now + timedelta(minutes=5))

    def planner_breaks(went_out: Sequence[WentOut]) -> tuple[list[PlannedDelivery], list[int]]:
        raise RuntimeError("the planner failed mid-transaction")

    with pytest.raises(RuntimeError):
        store.record_outcomes([Outcome(claimed.id, "sent", provider="outbox")], now,
                              next_steps=planner_breaks)
    assert [r.state for r in store.deliveries(email="jo@example.com")] == ["claimed"]
    assert [r.event for r in store.webhook_log()] == ["enrolled"]

    def nothing_next(went_out: Sequence[WentOut]) -> tuple[list[PlannedDelivery], list[int]]:
        return [], []

    store.record_outcomes([Outcome(claimed.id, "sent", provider="outbox")], now,
                          next_steps=nothing_next)
    assert [r.state for r in store.deliveries(email="jo@example.com")] == ["sent"]
    assert [r.event for r in store.webhook_log()] == ["email.sent", "enrolled"]

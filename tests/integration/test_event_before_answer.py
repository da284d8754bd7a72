"""SendGrid's `delivered` event can come before drip has the answer to its request (the
answer is late, or never comes): the email went out, so it is `sent`, not `unknown`, and
announced once (found by the chaos test, tests/acceptance/test_chaos.py)."""

from __future__ import annotations

from datetime import timedelta

from drip import events
from drip.clock import FixedClock
from drip.providers.sendgrid import parse_events
from drip.runtime import Drip
from drip.store import Outcome, Sending
from drip.subscriptions import enroll
from drip.webhooks.endpoints import add_endpoint


def test_an_event_before_a_timed_out_answer_makes_the_email_sent(
        basic_drip: Drip, clock: FixedClock) -> None:
    store = basic_drip.store
    add_endpoint(store, "http://127.0.0.1:9/crm", ["email.sent"], clock.now())
    for address in ("kim@example.com", "lee@example.com"):
        enroll(store, basic_drip.library, email=address, sequence_key="basic",
               now=clock.now(), source="purchase")
    now = clock.now()
    claimed = store.claim_due(now, 10, "worker-1", now + timedelta(minutes=5))
    store.mark_sending([Sending(c.id, c.step_key, c.variant, None, "0" * 64) for c in claimed],
                       "worker-1", now, now + timedelta(minutes=5), batch_key="b1")
    kim, lee = sorted(claimed, key=lambda c: c.email)
    # kim's `delivered` arrives while the worker still waits for SendGrid's answer...
    events.ingest(store, parse_events([{
        "event": "delivered", "email": kim.email, "timestamp": int(now.timestamp()),
        "sg_event_id": "ev-1", "delivery_id": str(kim.id), "batch_key": "b1"}]), now)
    # ... which never comes: the worker records both as unknown
    store.record_outcomes([Outcome(c.id, "unknown", provider="sendgrid", error="timed out",
                                   batch_key="b1") for c in claimed], now)
    states = {r.email: r.state for r in store.deliveries() if r.seq_no == 1}
    assert states == {kim.email: "sent", lee.email: "unknown"}
    assert [(r.event, r.payload["data"]["email"]) for r in store.webhook_log()] == [
        ("email.sent", kim.email)]
    # lee's event comes after: unknown becomes sent, and is announced then, once
    events.ingest(store, parse_events([{
        "event": "delivered", "email": lee.email, "timestamp": int(now.timestamp()),
        "sg_event_id": "ev-2", "delivery_id": str(lee.id)}]), now)
    assert {r.state for r in store.deliveries() if r.seq_no == 1} == {"sent"}
    assert sorted(r.payload["data"]["email"] for r in store.webhook_log()) == [
        kim.email, lee.email]

"""Purchase, Stripe and SendGrid webhooks: signed requests act, anything else changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.testclient import TestClient

from drip.runtime import Drip
from drip.subscriptions import enroll
from tests.web.conftest import (
    body_of,
    purchase_headers,
    sendgrid_event,
    sendgrid_headers,
    stamp,
    stripe_headers,
)

ORDER = {"order_id": "A-1001", "email": "Bo@Example.com", "name": "Bo",
         "product": "pht-7-week", "timezone": "Europe/London"}


def counts(drip: Drip) -> tuple[int, int, list[str]]:
    purchases = drip.store.purchases_since(drip.clock.now().replace(year=2000))
    return len(drip.store.deliveries()), len(purchases), sorted(p.product for p in purchases)


def post_order(client: TestClient, drip: Drip, order: dict[str, Any]) -> Any:
    body = body_of(order)
    return client.post("/hooks/purchase", content=body, headers=purchase_headers(drip, body))


def test_purchase_enrolls_at_once_and_is_idempotent(web_drip: Drip, client: TestClient) -> None:
    answer = post_order(client, web_drip, ORDER)
    assert answer.status_code == 200
    assert answer.json() == {"recorded": True, "enrolled_in": "pht-7-week", "note": ""}
    (row,) = web_drip.store.deliveries(email="bo@example.com")
    assert (row.step_key, row.state, row.timezone) == ("week-1", "scheduled", "Europe/London")
    again = post_order(client, web_drip, ORDER)
    assert again.status_code == 200 and again.json()["recorded"] is False
    assert counts(web_drip) == (1, 1, ["pht-7-week"])


def test_conversion_purchase_is_recorded_and_respected(web_drip: Drip,
                                                       client: TestClient) -> None:
    enroll(web_drip.store, web_drip.library, email="bo@example.com", sequence_key="pht-7-week",
           now=web_drip.clock.now(), timezone="UTC")
    order = {**ORDER, "order_id": "B-1", "product": "12-week-program"}
    answer = post_order(client, web_drip, order)
    assert answer.json() == {"recorded": True, "enrolled_in": None, "note": ""}
    subscriber = web_drip.store.subscriber_id("bo@example.com")
    assert "12-week-program" in web_drip.store.ownership([subscriber])[subscriber]
    assert "customer" in web_drip.store.ownership([subscriber])[subscriber]
    stranger = post_order(client, web_drip, {**order, "order_id": "B-2",
                                             "email": "new@example.com"})
    assert stranger.json()["recorded"] is True
    assert web_drip.store.deliveries(email="new@example.com") == []  # a buyer, not enrolled


@pytest.mark.parametrize("change", ["body", "signature", "timestamp", "stale", "secret",
                                    "missing"])
def test_bad_purchase_signatures_are_401_and_change_nothing(web_drip: Drip, client: TestClient,
                                                            change: str) -> None:
    body = body_of(ORDER)
    headers = purchase_headers(web_drip, body)
    if change == "body":
        body = body.replace(b"A-1001", b"A-1002")
    elif change == "signature":
        headers["X-Drip-Signature"] = headers["X-Drip-Signature"][:-1] + (
            "0" if not headers["X-Drip-Signature"].endswith("0") else "1")
    elif change == "timestamp":
        headers["X-Drip-Timestamp"] = str(int(headers["X-Drip-Timestamp"]) + 1)
    elif change == "stale":
        headers = purchase_headers(web_drip, body)
        web_drip.clock.advance(minutes=6)  # type: ignore[attr-defined]
    elif change == "secret":
        headers = purchase_headers(web_drip, body, secret="guess")
    else:
        headers = {"Content-Type": "application/json"}
    answer = client.post("/hooks/purchase", content=body, headers=headers)
    assert answer.status_code == 401 and "error" in answer.json()
    assert counts(web_drip) == (0, 0, [])


@pytest.mark.parametrize("body,status", [
    (b"{not json", 400), (b"[1, 2]", 400), (b'{"order_id": "x"}', 400),
    (json.dumps({**ORDER, "email": "not-an-address"}).encode(), 400),
    (json.dumps({**ORDER, "timezone": "Mars/Base"}).encode(), 400),
    (json.dumps({**ORDER, "product": "unknown-thing"}).encode(), 400),
    (json.dumps({**ORDER, "order_id": ["x"]}).encode(), 400),
])
def test_malformed_orders_are_400(web_drip: Drip, client: TestClient, body: bytes,
                                  status: int) -> None:
    answer = client.post("/hooks/purchase", content=body, headers=purchase_headers(web_drip, body))
    assert answer.status_code == status
    assert "Traceback" not in answer.text
    assert counts(web_drip) == (0, 0, [])


def test_purchase_body_limit_and_missing_secret(web_drip: Drip, client: TestClient) -> None:
    big = b'{"x": "' + b"a" * 100_000 + b'"}'
    assert client.post("/hooks/purchase", content=big,
                       headers=purchase_headers(web_drip, big)).status_code == 413
    assert client.get("/hooks/purchase").status_code == 405


def stripe_event(session: dict[str, Any], kind: str = "checkout.session.completed") -> bytes:
    return body_of({"id": "evt_1", "type": kind, "data": {"object": session}})


SESSION = {"id": "cs_test_1", "object": "checkout.session",
           "customer_details": {"email": "cy@example.com", "name": "Cy"},
           "metadata": {"product": "pht-7-week", "timezone": "America/New_York"}}


def test_stripe_checkout_enrolls_once(web_drip: Drip, client: TestClient) -> None:
    body = stripe_event(SESSION)
    for expected in (True, False):
        answer = client.post("/hooks/stripe", content=body,
                             headers=stripe_headers(web_drip, body))
        assert answer.status_code == 200 and answer.json()["recorded"] is expected
    (row,) = web_drip.store.deliveries(email="cy@example.com")
    assert row.timezone == "America/New_York"
    other = stripe_event(SESSION, kind="payment_intent.succeeded")
    ignored = client.post("/hooks/stripe", content=other, headers=stripe_headers(web_drip, other))
    assert ignored.json() == {"ignored": "payment_intent.succeeded"}


def test_stripe_enrolls_only_once_the_payment_succeeded(web_drip: Drip,
                                                        client: TestClient) -> None:
    # A delayed payment method (SEPA, ACH, Boleto) completes the Checkout Session unpaid;
    # the money may never come. Stripe says to fulfil on payment_status paid (or
    # no_payment_required), and on checkout.session.async_payment_succeeded later.
    unpaid = stripe_event({**SESSION, "payment_status": "unpaid"})
    answer = client.post("/hooks/stripe", content=unpaid, headers=stripe_headers(web_drip, unpaid))
    assert answer.status_code == 200 and "ignored" in answer.json()
    assert counts(web_drip) == (0, 0, [])
    failed = stripe_event({**SESSION, "payment_status": "unpaid"},
                          kind="checkout.session.async_payment_failed")
    assert "ignored" in client.post("/hooks/stripe", content=failed,
                                    headers=stripe_headers(web_drip, failed)).json()
    assert counts(web_drip) == (0, 0, [])
    paid = stripe_event({**SESSION, "payment_status": "paid"},
                        kind="checkout.session.async_payment_succeeded")
    answer = client.post("/hooks/stripe", content=paid, headers=stripe_headers(web_drip, paid))
    assert answer.status_code == 200 and answer.json()["recorded"] is True
    assert counts(web_drip) == (1, 1, ["pht-7-week"])


def test_stripe_bad_signature_and_bad_session(web_drip: Drip, client: TestClient) -> None:
    body = stripe_event(SESSION)
    headers = stripe_headers(web_drip, body)
    tampered = body.replace(b"cy@example.com", b"cz@example.com")
    assert client.post("/hooks/stripe", content=tampered, headers=headers).status_code == 401
    no_product = stripe_event({**SESSION, "metadata": {}})
    assert client.post("/hooks/stripe", content=no_product,
                       headers=stripe_headers(web_drip, no_product)).status_code == 400
    assert counts(web_drip) == (0, 0, [])


# --- SendGrid -------------------------------------------------------------------------------


def sent_week_one(drip: Drip, email: str = "dee@example.com") -> int:
    enroll(drip.store, drip.library, email=email, sequence_key="pht-7-week",
           now=drip.clock.now(), timezone="UTC")
    drip.dispatcher().run_once()
    (row,) = [r for r in drip.store.deliveries(email=email)
              if (r.step_key, r.variant) == ("week-1", "main")]
    return row.id


def post_events(client: TestClient, drip: Drip, key: ec.EllipticCurvePrivateKey,
                events: list[dict[str, Any]]) -> Any:
    body = body_of(events)
    return client.post("/hooks/sendgrid", content=body,
                       headers=sendgrid_headers(drip, key, body))


def test_events_are_stored_once_and_acted_on(web_drip: Drip, client: TestClient,
                                             sendgrid_key: ec.EllipticCurvePrivateKey) -> None:
    delivery = sent_week_one(web_drip)
    at = stamp(web_drip)
    events = [sendgrid_event("processed", "dee@example.com", delivery_id=delivery, at=at),
              sendgrid_event("delivered", "dee@example.com", delivery_id=delivery, at=at),
              sendgrid_event("open", "dee@example.com", delivery_id=delivery, at=at),
              sendgrid_event("click", "dee@example.com", delivery_id=delivery, at=at,
                             url="https://www.example.com/x")]
    answer = post_events(client, web_drip, sendgrid_key, events)
    assert answer.status_code == 200 and answer.json() == {"received": 4, "new": 4}
    kinds = [k for k, _, d in web_drip.store.events_of(delivery_id=delivery)]
    assert kinds == ["processed", "delivered", "opened", "clicked"]
    again = post_events(client, web_drip, sendgrid_key, events)  # SendGrid retried
    assert again.json() == {"received": 4, "new": 0}
    assert len(web_drip.store.events_of(delivery_id=delivery)) == 4
    assert web_drip.store.subscriber_by_email("dee@example.com").state == "active"


def test_delivered_resolves_an_unknown_delivery_as_sent(
        web_drip: Drip, client: TestClient, sendgrid_key: ec.EllipticCurvePrivateKey) -> None:
    delivery = sent_week_one(web_drip)
    with web_drip.store.engine.begin() as conn:  # what a lost provider answer leaves behind
        from sqlalchemy import text

        conn.execute(text("UPDATE deliveries SET state = 'unknown', sent_at = NULL "
                          "WHERE id = :d"), {"d": delivery})
    post_events(client, web_drip, sendgrid_key,
                [sendgrid_event("delivered", "dee@example.com", delivery_id=delivery,
                                at=stamp(web_drip))])
    (row,) = [r for r in web_drip.store.deliveries(email="dee@example.com") if r.id == delivery]
    assert row.state == "sent" and row.sent_at is not None


@pytest.mark.parametrize("event,extra,suppressed", [
    ("bounce", {"type": "bounce", "reason": "550 5.1.1 no such user"}, True),
    ("bounce", {"type": "blocked", "reason": "421 try later"}, False),
    ("dropped", {"reason": "Bounced Address"}, True),
    ("dropped", {"reason": "Invalid"}, True),
    ("dropped", {"reason": "Spam Content (if spam checker app enabled)"}, False),
    ("spamreport", {}, True),
    ("deferred", {"response": "try again"}, False),
])
def test_bounces_drops_and_complaints_suppress(web_drip: Drip, client: TestClient,
                                               sendgrid_key: ec.EllipticCurvePrivateKey,
                                               event: str, extra: dict[str, Any],
                                               suppressed: bool) -> None:
    delivery = sent_week_one(web_drip)
    post_events(client, web_drip, sendgrid_key,
                [sendgrid_event(event, "dee@example.com", delivery_id=delivery,
                                at=stamp(web_drip), **extra)])
    state = web_drip.store.subscriber_by_email("dee@example.com").state
    assert state == ("suppressed" if suppressed else "active")
    # the one pending delivery after week 1: its day-5 checkpoint reminder
    pending = [r.state for r in web_drip.store.deliveries(email="dee@example.com")
               if r.id != delivery]
    assert pending == (["held"] if suppressed else ["scheduled"])


@pytest.mark.parametrize("event", ["unsubscribe", "group_unsubscribe"])
def test_provider_unsubscribes_unsubscribe(web_drip: Drip, client: TestClient,
                                           sendgrid_key: ec.EllipticCurvePrivateKey,
                                           event: str) -> None:
    delivery = sent_week_one(web_drip)
    post_events(client, web_drip, sendgrid_key,
                [sendgrid_event(event, "dee@example.com", delivery_id=delivery,
                                at=stamp(web_drip), asm_group_id=1)])
    assert web_drip.store.subscriber_by_email("dee@example.com").state == "unsubscribed"
    web_drip.clock.advance(days=30)  # type: ignore[attr-defined]
    assert web_drip.dispatcher().run_once().sent == []


def test_events_for_unknown_deliveries_and_people_are_kept(
        web_drip: Drip, client: TestClient, sendgrid_key: ec.EllipticCurvePrivateKey) -> None:
    events = [sendgrid_event("delivered", "who@example.com", delivery_id=987654,
                             at=stamp(web_drip)),
              sendgrid_event("bounce", "who@example.com", at=stamp(web_drip), type="bounce"),
              sendgrid_event("open", "not an address", at=stamp(web_drip))]
    answer = post_events(client, web_drip, sendgrid_key, events)
    assert answer.status_code == 200 and answer.json()["new"] == 3
    assert [d for _, _, d in web_drip.store.events_of(email="who@example.com")] == [None, None]


def test_sendgrid_refuses_forged_stale_and_malformed(
        web_drip: Drip, client: TestClient, sendgrid_key: ec.EllipticCurvePrivateKey) -> None:
    delivery = sent_week_one(web_drip)
    events = [sendgrid_event("spamreport", "dee@example.com", delivery_id=delivery,
                             at=stamp(web_drip))]
    body = body_of(events)
    good = sendgrid_headers(web_drip, sendgrid_key, body)
    one_byte = bytearray(body)
    one_byte[10] ^= 0x01
    other_key = ec.generate_private_key(ec.SECP256R1())
    refused = [
        (bytes(one_byte), good),
        (body, sendgrid_headers(web_drip, other_key, body)),
        (body, sendgrid_headers(web_drip, sendgrid_key, body, at=stamp(web_drip) - 600)),
        (body, {"Content-Type": "application/json"}),
    ]
    for content, headers in refused:
        assert client.post("/hooks/sendgrid", content=content, headers=headers).status_code == 401
    for content in (b"{oops", b'{"event": "open"}', b'[{"event": "open"}]', b"[1]"):
        answer = client.post("/hooks/sendgrid", content=content,
                             headers=sendgrid_headers(web_drip, sendgrid_key, content))
        assert answer.status_code == 400
    assert web_drip.store.events_of(email="dee@example.com") == []
    assert web_drip.store.subscriber_by_email("dee@example.com").state == "active"


def test_sendgrid_body_limit(tmp_path: Any, database_url: str, clock: Any,
                             sendgrid_key: ec.EllipticCurvePrivateKey) -> None:
    from drip.web import create_app
    from tests.conftest import make_settings
    from tests.web.conftest import public_key_text

    settings = make_settings(tmp_path, database_url, events_max_bytes=2048,
                             sendgrid_webhook_public_key=public_key_text(sendgrid_key))
    small = Drip.from_settings(settings, clock)
    try:
        with TestClient(create_app(small)) as test_client:
            body = body_of([sendgrid_event("open", f"p{i}@example.com", at=stamp(small))
                            for i in range(50)])
            answer = test_client.post("/hooks/sendgrid", content=body,
                                      headers=sendgrid_headers(small, sendgrid_key, body))
            assert answer.status_code == 413
    finally:
        small.close()


def test_webhooks_without_configured_secrets_answer_503(tmp_path: Any, database_url: str,
                                                        clock: Any) -> None:
    from drip.web import create_app
    from tests.conftest import make_settings

    bare = Drip.from_settings(make_settings(tmp_path, database_url), clock)
    try:
        with TestClient(create_app(bare)) as test_client:
            for path in ("/hooks/purchase", "/hooks/stripe", "/hooks/sendgrid"):
                answer = test_client.post(path, content=b"[]")
                assert answer.status_code == 503, path
    finally:
        bare.close()


def test_a_failure_answers_5xx_and_the_retry_loses_nothing(
        web_drip: Drip, sendgrid_key: ec.EllipticCurvePrivateKey) -> None:
    from sqlalchemy import text

    from drip.web import create_app

    delivery = sent_week_one(web_drip)
    events = [sendgrid_event("delivered", "dee@example.com", delivery_id=delivery,
                             at=stamp(web_drip)),
              sendgrid_event("spamreport", "dee@example.com", delivery_id=delivery,
                             at=stamp(web_drip))]
    with TestClient(create_app(web_drip), raise_server_exceptions=False) as test_client:
        with web_drip.store.engine.begin() as conn:  # the database breaks mid-burst
            conn.execute(text("ALTER TABLE events RENAME TO events_away"))
        failed = post_events(test_client, web_drip, sendgrid_key, events)
        assert failed.status_code == 500
        assert "Traceback" not in failed.text and "events_away" not in failed.text
        with web_drip.store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE events_away RENAME TO events"))
        retried = post_events(test_client, web_drip, sendgrid_key, events)  # SendGrid retries
        assert retried.status_code == 200 and retried.json()["new"] == 2
    assert [k for k, _, _ in web_drip.store.events_of(delivery_id=delivery)] == [
        "delivered", "complained"]
    assert web_drip.store.subscriber_by_email("dee@example.com").state == "suppressed"

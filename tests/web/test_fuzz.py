"""Generated input against the webhooks and forms (hypothesis): never a 500, never a traceback.

Webhook bodies are signed correctly, so the fuzzing reaches the parsing and the core
rather than stopping at the signature check.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from drip.runtime import Drip
from tests.web.conftest import purchase_headers, sendgrid_headers, stripe_headers

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=12)
texts = st.one_of(st.text(max_size=60), st.sampled_from(
    ["ana@example.com", "pht-7-week", "12-week-program", "Europe/London", "", "UTC",
     "a@b", "x\x00y@example.com", "\u202e@example.com"]))
maybe = st.one_of(texts, json_values)
orders = st.fixed_dictionaries({}, optional={
    "order_id": maybe, "email": maybe, "name": maybe, "product": maybe, "timezone": maybe})
events = st.lists(st.fixed_dictionaries({}, optional={
    "event": st.sampled_from(["processed", "delivered", "bounce", "dropped", "spamreport",
                              "unsubscribe", "group_unsubscribe", "open", "click", "deferred",
                              "weird"]) | maybe,
    "email": texts | json_values, "timestamp": st.integers() | st.floats() | maybe,
    "sg_event_id": texts | json_values, "delivery_id": st.integers().map(str) | maybe,
    "type": st.sampled_from(["bounce", "blocked"]) | maybe, "reason": maybe,
}), max_size=8)
bodies = st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode()))


def no_server_error(answer: Any) -> None:
    assert answer.status_code < 500, (answer.status_code, answer.text[:300])
    assert "Traceback" not in answer.text


@FUZZ
@given(order=orders | json_values)
def test_purchase_hook_never_fails(web_drip: Drip, client: TestClient, order: Any) -> None:
    body = json.dumps(order).encode()
    no_server_error(client.post("/hooks/purchase", content=body,
                                headers=purchase_headers(web_drip, body)))


@FUZZ
@given(session=st.fixed_dictionaries({}, optional={
    "id": maybe, "customer_details": st.fixed_dictionaries({}, optional={
        "email": maybe, "name": maybe}) | maybe,
    "metadata": st.fixed_dictionaries({}, optional={"product": maybe, "timezone": maybe})
    | maybe, "client_reference_id": maybe, "customer_email": maybe}),
    kind=st.sampled_from(["checkout.session.completed", "other"]) | maybe)
def test_stripe_hook_never_fails(web_drip: Drip, client: TestClient, session: Any,
                                 kind: Any) -> None:
    body = json.dumps({"id": "evt", "type": kind, "data": {"object": session}}).encode()
    no_server_error(client.post("/hooks/stripe", content=body,
                                headers=stripe_headers(web_drip, body)))


@FUZZ
@given(payload=events | json_values)
def test_sendgrid_hook_never_fails(web_drip: Drip, client: TestClient,
                                   sendgrid_key: ec.EllipticCurvePrivateKey,
                                   payload: Any) -> None:
    body = json.dumps(payload).encode()
    no_server_error(client.post("/hooks/sendgrid", content=body,
                                headers=sendgrid_headers(web_drip, sendgrid_key, body)))


@FUZZ
@given(body=bodies, path=st.sampled_from(["/hooks/purchase", "/hooks/stripe",
                                          "/hooks/sendgrid", "/subscribe"]),
       content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded",
                                     "multipart/form-data; boundary=x", "text/plain"]))
def test_raw_bodies_never_fail(web_drip: Drip, client: TestClient,
                               sendgrid_key: ec.EllipticCurvePrivateKey, body: bytes,
                               path: str, content_type: str) -> None:
    headers = {**purchase_headers(web_drip, body), **stripe_headers(web_drip, body),
               **sendgrid_headers(web_drip, sendgrid_key, body), "Content-Type": content_type}
    no_server_error(client.post(path, content=body, headers=headers))


@FUZZ
@given(form=st.dictionaries(st.sampled_from(["email", "name", "timezone", "sequence", "x"]),
                            texts, max_size=5), as_json=st.booleans())
def test_subscribe_never_fails(client: TestClient, form: dict[str, str],
                               as_json: bool) -> None:
    answer = (client.post("/subscribe", json=form) if as_json
              else client.post("/subscribe", data=form))
    no_server_error(answer)


@FUZZ
@given(token=st.text(max_size=80), form=st.dictionaries(
    st.sampled_from(["scope", "answer", "List-Unsubscribe"]), texts, max_size=3),
    prefix=st.sampled_from(["/u/", "/p/", "/c/", "/confirm/"]))
def test_token_pages_never_fail(client: TestClient, token: str, form: dict[str, str],
                                prefix: str) -> None:
    from urllib.parse import quote

    path = prefix + quote(token, safe="")
    no_server_error(client.get(path))
    no_server_error(client.post(path, data=form))


valid_orders = st.fixed_dictionaries({
    "order_id": st.text(min_size=1, max_size=40), "email": st.sampled_from(
        ["ana@example.com", "ÁNA@example.com", "ana+x@example.com"]),
    "name": st.text(max_size=40), "product": st.sampled_from(["pht-7-week", "running-workshop"]),
    "timezone": st.sampled_from(["UTC", "Europe/London", ""])})


@FUZZ
@given(order=valid_orders)
def test_nearly_valid_orders_never_fail(web_drip: Drip, client: TestClient,
                                        order: dict[str, str]) -> None:
    body = json.dumps(order).encode()
    no_server_error(client.post("/hooks/purchase", content=body,
                                headers=purchase_headers(web_drip, body)))


@FUZZ
@given(name=st.text(max_size=40), reason=st.text(max_size=40), event_id=st.text(max_size=40))
def test_nearly_valid_events_never_fail(web_drip: Drip, client: TestClient,
                                        sendgrid_key: ec.EllipticCurvePrivateKey, name: str,
                                        reason: str, event_id: str) -> None:
    at = int(web_drip.clock.now().timestamp())
    payload = [{"event": "bounce", "email": f"{name}@example.com", "timestamp": at,
                "reason": reason, "sg_event_id": event_id, "type": "bounce"},
               {"event": "dropped", "email": "ana@example.com", "timestamp": at,
                "reason": reason, "sg_event_id": event_id + "x", "delivery_id": "1"}]
    body = json.dumps(payload).encode()
    no_server_error(client.post("/hooks/sendgrid", content=body,
                                headers=sendgrid_headers(web_drip, sendgrid_key, body)))

"""Every route under generated requests (hypothesis, in process through Starlette's test
client): methods, headers, content types and bodies made of every unicode category,
surrogates, control characters, RFC 2047 words, and huge and empty values.

Whatever arrives: no 500; a refusal is a 4xx whose body reads as UTF-8 text; and a
refused request changes nothing (row counts and a hash of every table are the same).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from drip.runtime import Drip
from drip.subscriptions import enroll
from tests.support.fingerprint import fingerprint
from tests.web.conftest import purchase_headers, stripe_headers

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
ENCODED_WORDS = ["=?utf-8?b?QW5hDQpCY2M6IHZAZXZpbC50ZXN0?=", "=?utf-8?q?a=0D=0Ab?=",
                 "=?bogus?x?y?=", "=?utf-8?b?!!!?="]
#: What broke drip before (surrogates, encoded line breaks, superscript digits), drawn often.
HOSTILE = ["\udcff", "\ud800x", "ana\r\nBcc: v@evil.test", "\x00", "²", "ñandú@example.com",
           *ENCODED_WORDS]
nasty_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8", categories=["Cc", "Cf", "Zl", "Zp", "Co", "Mn"]),
            max_size=20),
    st.sampled_from(["ana@example.com", "pht-7-week", "Europe/London", "", " ", "x" * 5000,
                     "¹³"]),
)
#: Header values go over HTTP as latin-1 without CR, LF or NUL; superscripts included.
header_text = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
            max_size=40),
    st.sampled_from(["²", "¹", "³", "t=¹,v1=00", "t=1772452800,v1=00", "sha256=00", "AAAA",
                     "1772452800", "", "127.0.0.1", "10.0.0.1, 1.2.3.4"]))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | nasty_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nasty_text, inner, max_size=5),
    max_leaves=10)
fields = st.dictionaries(st.sampled_from(["email", "name", "timezone", "sequence", "scope",
                                          "answer", "List-Unsubscribe", "x"]),
                         nasty_text, max_size=5)
orders = st.fixed_dictionaries({}, optional={
    k: nasty_text for k in ("order_id", "email", "name", "product", "timezone")})
stripe_events = st.fixed_dictionaries({"type": st.sampled_from(
    ["checkout.session.completed", "other"]) | nasty_text, "data": st.fixed_dictionaries(
        {"object": st.fixed_dictionaries({}, optional={
            "id": nasty_text, "payment_status": st.just("paid"),
            "metadata": st.fixed_dictionaries({}, optional={"product": nasty_text,
                                                            "timezone": nasty_text}),
            "customer_details": st.fixed_dictionaries({}, optional={
                "email": nasty_text, "name": nasty_text})})})})
bodies = st.one_of(
    orders.map(lambda v: json.dumps(v).encode()),
    stripe_events.map(lambda v: json.dumps(v).encode()),
    st.just(b""), st.binary(max_size=300), st.just(b"x" * (70 * 1024)),
    json_values.map(lambda v: json.dumps(v).encode()),  # surrogates go as \\udcff escapes
    fields.map(lambda f: json.dumps(f).encode()),
    fields.map(lambda f: "&".join(f"{quote(k)}={quote(v, errors='surrogatepass')}"
                                  for k, v in f.items()).encode()),
)
content_types = st.sampled_from([
    None, "application/json", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x", "multipart/form-data", "text/plain",
    "application/json; charset=utf-16", "application/x-www-form-urlencoded; charset=ü"])
methods = st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"])
extra_headers = st.dictionaries(st.sampled_from([
    "X-Drip-Timestamp", "X-Drip-Signature", "Stripe-Signature", "User-Agent",
    "X-Twilio-Email-Event-Webhook-Timestamp", "X-Twilio-Email-Event-Webhook-Signature",
    "Accept", "X-Forwarded-For", "Cookie", "Accept-Language"]), header_text, max_size=4)


def paths(drip: Drip) -> list[str]:
    """Every route, with links that are valid as well as ones that are not."""
    outcome = enroll(drip.store, drip.library, email="fuzz@example.com",
                     sequence_key="pht-7-week", now=drip.clock.now(), name="Fuzz")
    links, signer = drip.links, drip.links.signer
    base = links.base_url
    good = [links.unsubscribe(outcome.subscriber_id, outcome.enrollment_id),
            links.pause(outcome.enrollment_id), links.checkpoint(1, "passed"),
            f"{base}/confirm/{signer.make('confirm', 1)}"]
    return ["/health", "/subscribe", "/subscribe?sequence=pht-7-week", "/subscribe?sequence=%ED",
            "/hooks/purchase", "/hooks/stripe", "/hooks/sendgrid", "/u/x", "/p/", "/c/..%2F",
            "/confirm/%ED%B3%BF", "/nowhere", "/subscribe/",
            *[url.removeprefix(base) for url in good]]


def check(drip: Drip, client: TestClient, method: str, path: str, headers: dict[str, str],
          body: bytes) -> None:
    """One request: no 500, a readable 4xx, and nothing changed by a refusal."""
    before = fingerprint(drip.store.engine)
    raw = [(k.encode(), str(v).encode("latin-1")) for k, v in headers.items()]  # as HTTP sends
    answer = client.request(method, path, content=body, headers=raw)
    assert answer.status_code < 500, (method, path, answer.status_code, answer.text[:300])
    assert "Traceback" not in answer.text
    if answer.status_code >= 400:
        assert 400 <= answer.status_code < 500
        text = answer.content.decode("utf-8")  # readable: it never fails to decode
        assert method == "HEAD" or text.strip(), (method, path, answer.status_code)
        assert fingerprint(drip.store.engine) == before, (method, path, answer.text)


def known_paths(drip: Drip) -> list[str]:
    routes: list[str] | None = getattr(drip, "_fuzz_paths", None)
    if routes is None:
        routes = paths(drip)
        drip._fuzz_paths = routes  # type: ignore[attr-defined]
    return routes


@FUZZ
@given(data=st.data(), method=methods, body=bodies, content_type=content_types,
       headers=extra_headers, signed=st.booleans(), tail=nasty_text)
def test_every_route_answers_hostile_input_without_a_500_or_a_change(
        web_drip: Drip, client: TestClient, data: st.DataObject, method: str, body: bytes,
        content_type: str | None, headers: dict[str, str], signed: bool, tail: str) -> None:
    path = data.draw(st.sampled_from([
        *known_paths(web_drip), "/u/" + quote(tail, errors="surrogatepass"),
        "/c/" + quote(tail, safe="", errors="surrogatepass")]))
    sent: dict[str, Any] = dict(headers)
    if signed:  # reach the parsers behind the signature checks
        sent.update({**purchase_headers(web_drip, body), **stripe_headers(web_drip, body)})
    if content_type is not None:
        sent["Content-Type"] = content_type
    else:
        sent.pop("Content-Type", None)
    check(web_drip, client, method, path, sent, body)


@FUZZ
@example(path="/hooks/purchase", body=json.dumps({
    "order_id": "F-1", "email": "ana@example.com", "product": "pht-7-week",
    "name": "\udcff"}).encode(), forged={})
@example(path="/hooks/stripe", body=json.dumps({"type": "\udcff"}).encode(), forged={})
@example(path="/hooks/purchase", body=b"{}", forged={"X-Drip-Timestamp": "\u00b2"})
@example(path="/hooks/stripe", body=b"{}", forged={"Stripe-Signature": "t=\u00b9,v1=00"})
@given(path=st.sampled_from(["/hooks/purchase", "/hooks/stripe"]),
       body=st.one_of(orders, stripe_events).map(lambda v: json.dumps(v).encode()),
       forged=st.dictionaries(st.sampled_from(["X-Drip-Timestamp", "Stripe-Signature"]),
                              header_text, max_size=1))
def test_signed_webhooks_refuse_what_they_cannot_read(web_drip: Drip, client: TestClient,
                                                      path: str, body: bytes,
                                                      forged: dict[str, str]) -> None:
    headers = {**purchase_headers(web_drip, body), **stripe_headers(web_drip, body), **forged}
    check(web_drip, client, "POST", path, headers, body)


@FUZZ
@example(form={"sequence": "pht-7-week", "email": "\udcff"}, as_json=True)
@example(form={"sequence": "\udcff", "email": "ana@example.com"}, as_json=True)
@example(form={"sequence": "pht-7-week", "email": "ana@example.com", "timezone": "\udcff"},
         as_json=True)
@given(form=st.fixed_dictionaries({"sequence": st.just("pht-7-week") | nasty_text,
                                   "email": st.just("ana@example.com") | nasty_text},
                                  optional={"name": nasty_text, "timezone": nasty_text}),
       as_json=st.booleans())
def test_the_opt_in_refuses_what_it_cannot_read(web_drip: Drip, client: TestClient,
                                                form: dict[str, str], as_json: bool) -> None:
    if as_json:
        body, kind = json.dumps(form).encode(), "application/json"
    else:
        body = "&".join(f"{quote(k)}={quote(v, errors='surrogatepass')}"
                        for k, v in form.items()).encode()
        kind = "application/x-www-form-urlencoded"
    check(web_drip, client, "POST", "/subscribe", {"Content-Type": kind}, body)

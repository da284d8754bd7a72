"""Shopify, Lemon Squeezy and Gumroad against `drip serve`'s app on loopback: each shop's
own signature scheme, a forged request, a replay, a product drip does not sell, a refund."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from drip.clock import FixedClock
from drip.runtime import Drip
from drip.web import create_app
from tests.conftest import make_settings
from tests.support.loopback import serving

SHOPIFY_SECRET = "shpss_test_secret"
LEMON_SECRET = "lemon-signing-secret"
GUMROAD_SECRET = "gumroad-path-secret-0123456789"


@pytest.fixture
def shop_drip(tmp_path: Path, database_url: str, clock: FixedClock) -> Iterator[Drip]:
    settings = make_settings(tmp_path, database_url, shopify_webhook_secret=SHOPIFY_SECRET,
                             lemonsqueezy_webhook_secret=LEMON_SECRET,
                             gumroad_secret=GUMROAD_SECRET)
    drip = Drip.from_settings(settings, clock)
    try:
        yield drip
    finally:
        drip.close()


@pytest.fixture
def web(shop_drip: Drip) -> Iterator[httpx.Client]:
    with serving(create_app(shop_drip)) as url, httpx.Client(base_url=url, timeout=10) as c:
        yield c


def shopify_headers(body: bytes, topic: str, secret: str = SHOPIFY_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {"X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
            "X-Shopify-Topic": topic, "X-Shopify-Webhook-Id": f"wh-{topic}",
            "Content-Type": "application/json"}


def lemon_headers(body: bytes, secret: str = LEMON_SECRET) -> dict[str, str]:
    return {"X-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
            "Content-Type": "application/json"}


SHOPIFY_ORDER = {
    "id": 820982911946154508, "email": "jo@example.com", "financial_status": "paid",
    "customer": {"first_name": "Jo", "last_name": "Reyes", "email": "jo@example.com"},
    "note_attributes": [{"name": "timezone", "value": "America/Chicago"}],
    "line_items": [{"id": 1, "sku": "pht-7-week", "title": "7-week PHT program"},
                   {"id": 2, "sku": "TSHIRT-M", "title": "Running shirt"}],
}


def purchases(drip: Drip, email: str) -> list[dict[str, Any]]:
    from drip.operations import timeline

    return [p.__dict__ for p in timeline(drip.store, email).purchases]


def test_shopify_order_paid_enrolls_once_and_a_forgery_changes_nothing(
        web: httpx.Client, shop_drip: Drip) -> None:
    body = json.dumps(SHOPIFY_ORDER).encode()
    forged = web.post("/hooks/shopify", content=body,
                      headers=shopify_headers(body, "orders/paid", "not-the-secret"))
    assert forged.status_code == 401
    assert forged.json() == {"error": "The X-Shopify-Hmac-Sha256 signature does not match "
                                      "the body."}
    altered = body.replace(b"jo@example.com", b"eve@example.com")
    assert web.post("/hooks/shopify", content=altered,
                    headers=shopify_headers(body, "orders/paid")).status_code == 401
    assert shop_drip.store.export_subscribers() == []

    answer = web.post("/hooks/shopify", content=body, headers=shopify_headers(body,
                                                                          "orders/paid"))
    assert answer.status_code == 200
    assert answer.json()["orders"] == [{"order_id": "820982911946154508:pht-7-week",
                                        "product": "pht-7-week", "recorded": True,
                                        "enrolled_in": "pht-7-week", "note": ""}]
    [jo] = shop_drip.store.export_subscribers()
    assert (jo["name"], jo["timezone"], jo["sequences"]) == ("Jo Reyes", "America/Chicago",
                                                            ["pht-7-week"])
    replay = web.post("/hooks/shopify", content=body, headers=shopify_headers(body,
                                                                          "orders/paid"))
    assert replay.status_code == 200 and replay.json()["orders"][0]["recorded"] is False
    assert len(purchases(shop_drip, "jo@example.com")) == 1


def test_shopify_order_of_nothing_drip_sells_is_ignored(web: httpx.Client,
                                                        shop_drip: Drip) -> None:
    body = json.dumps({**SHOPIFY_ORDER, "line_items": [{"sku": "TSHIRT-M"}]}).encode()
    answer = web.post("/hooks/shopify", content=body, headers=shopify_headers(body,
                                                                          "orders/paid"))
    assert answer.status_code == 200
    assert answer.json() == {"ignored": "no line item's SKU is a product in the catalog "
                                        "(TSHIRT-M)"}
    assert shop_drip.store.export_subscribers() == []
    bad = b'{"id": 1, "line_items": "not a list"}'
    assert web.post("/hooks/shopify", content=bad,
                    headers=shopify_headers(bad, "orders/paid")).status_code == 400
    broken = b'{"id": '
    assert web.post("/hooks/shopify", content=broken,
                    headers=shopify_headers(broken, "orders/paid")).status_code == 400


def test_a_shopify_refund_stops_that_products_nudges_and_never_unsubscribes(
        web: httpx.Client, shop_drip: Drip) -> None:
    order = {**SHOPIFY_ORDER, "line_items": [{"sku": "pht-7-week"},
                                             {"sku": "12-week-program"}]}
    body = json.dumps(order).encode()
    assert web.post("/hooks/shopify", content=body,
                    headers=shopify_headers(body, "orders/paid")).status_code == 200
    refund = json.dumps({"id": 509562969, "order_id": SHOPIFY_ORDER["id"],
                         "refund_line_items": [{"line_item": {"sku": "12-week-program"}}]
                         }).encode()
    answer = web.post("/hooks/shopify", content=refund,
                      headers=shopify_headers(refund, "refunds/create"))
    assert answer.status_code == 200
    assert answer.json()["refunds"] == [{"order_id": "820982911946154508", "recorded": True,
                                         "products": ["12-week-program"], "note": ""}]
    again = web.post("/hooks/shopify", content=refund,
                     headers=shopify_headers(refund, "refunds/create"))
    assert again.json()["refunds"][0]["recorded"] is False
    [jo] = shop_drip.store.export_subscribers()
    assert jo["state"] == "active" and jo["unsubscribed_at"] is None
    subscriber = shop_drip.store.subscriber_by_email("jo@example.com")
    assert "12-week-program" in shop_drip.store.ownership([subscriber.id])[subscriber.id]
    other = web.post("/hooks/shopify", content=b"{}",
                     headers=shopify_headers(b"{}", "customers/create"))
    assert other.json() == {"ignored": "customers/create"}


def lemon_event(event: str, status: str = "paid", product: str = "pht-7-week",
                order_id: str = "1") -> bytes:
    return json.dumps({
        "meta": {"event_name": event, "custom_data": {"product": product,
                                                      "timezone": "Europe/Berlin"}},
        "data": {"type": "orders", "id": order_id, "attributes": {
            "user_name": "Uwe Kranz", "user_email": "uwe@example.com", "status": status,
            "refunded": event == "order_refunded",
            "refunded_at": "2026-03-03T10:00:00.000000Z" if event == "order_refunded"
            else None,
            "first_order_item": {"product_id": 7, "product_name": "PHT program"}}},
    }).encode()


def test_lemon_squeezy_order_created_refund_forgery_and_unknown_product(
        web: httpx.Client, shop_drip: Drip) -> None:
    body = lemon_event("order_created")
    forged = web.post("/hooks/lemonsqueezy", content=body,
                      headers=lemon_headers(body, "wrong"))
    assert forged.status_code == 401 and shop_drip.store.export_subscribers() == []
    unsigned = web.post("/hooks/lemonsqueezy", content=body,
                        headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    answer = web.post("/hooks/lemonsqueezy", content=body, headers=lemon_headers(body))
    assert answer.status_code == 200 and answer.json()["orders"][0]["recorded"] is True
    [uwe] = shop_drip.store.export_subscribers()
    assert (uwe["name"], uwe["timezone"]) == ("Uwe Kranz", "Europe/Berlin")
    replay = web.post("/hooks/lemonsqueezy", content=body, headers=lemon_headers(body))
    assert replay.json()["orders"][0]["recorded"] is False

    pending = lemon_event("order_created", status="pending", order_id="2")
    assert web.post("/hooks/lemonsqueezy", content=pending,
                    headers=lemon_headers(pending)).json() == {"ignored": "order status pending"}
    unknown = lemon_event("order_created", product="yoga-mat", order_id="3")
    assert "yoga-mat" in web.post("/hooks/lemonsqueezy", content=unknown,
                                  headers=lemon_headers(unknown)).json()["ignored"]
    assert len(purchases(shop_drip, "uwe@example.com")) == 1

    refund = lemon_event("order_refunded")
    done = web.post("/hooks/lemonsqueezy", content=refund, headers=lemon_headers(refund))
    assert done.json()["refunds"][0] == {"order_id": "1", "recorded": True,
                                         "products": ["pht-7-week"], "note": ""}
    assert shop_drip.store.export_subscribers()[0]["state"] == "active"


def test_gumroad_needs_the_secret_in_its_path(web: httpx.Client, shop_drip: Drip) -> None:
    sale = urlencode({"sale_id": "FO8TXN-dp5jhA==", "email": "ida@example.com",
                      "full_name": "Ida Berg", "permalink": "pht-7-week",
                      "product_permalink": "https://coach.gumroad.com/l/pht-7-week",
                      "refunded": "false", "test": "false"}).encode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    wrong = web.post("/hooks/gumroad/guessed-secret-0123456789", content=sale, headers=form)
    assert wrong.status_code == 401 and shop_drip.store.export_subscribers() == []
    assert web.post("/hooks/gumroad", content=sale, headers=form).status_code == 404
    answer = web.post(f"/hooks/gumroad/{GUMROAD_SECRET}", content=sale, headers=form)
    assert answer.status_code == 200
    assert answer.json()["orders"][0]["enrolled_in"] == "pht-7-week"
    replay = web.post(f"/hooks/gumroad/{GUMROAD_SECRET}", content=sale, headers=form)
    assert replay.json()["orders"][0]["recorded"] is False
    other = urlencode({"sale_id": "X2", "email": "ida@example.com",
                       "permalink": "knitting-course"}).encode()
    assert "knitting-course" in web.post(f"/hooks/gumroad/{GUMROAD_SECRET}", content=other,
                                         headers=form).json()["ignored"]
    assert web.post(f"/hooks/gumroad/{GUMROAD_SECRET}", content=b"email=x",
                    headers=form).status_code == 400
    refunded = sale.replace(b"refunded=false", b"refunded=true")
    done = web.post(f"/hooks/gumroad/{GUMROAD_SECRET}", content=refunded, headers=form)
    assert done.json()["refunds"][0]["products"] == ["pht-7-week"]
    assert shop_drip.store.export_subscribers()[0]["state"] == "active"


def test_a_shop_whose_secret_is_not_set_answers_503(tmp_path: Path, database_url: str,
                                                    clock: FixedClock) -> None:
    drip = Drip.from_settings(make_settings(tmp_path, database_url, gumroad_secret="short"),
                              clock)
    try:
        with serving(create_app(drip)) as url, httpx.Client(base_url=url) as web:
            body = json.dumps(SHOPIFY_ORDER).encode()
            assert web.post("/hooks/shopify", content=body,
                            headers=shopify_headers(body, "orders/paid")).status_code == 503
            assert web.post("/hooks/gumroad/short", content=b"sale_id=1").status_code == 503
            big = b"{" + b" " * 70_000 + b"}"
            assert web.post("/hooks/lemonsqueezy", content=big).status_code == 413
        assert drip.store.export_subscribers() == []
    finally:
        drip.close()

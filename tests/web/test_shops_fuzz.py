"""The shop webhooks under generated input (hypothesis), signed correctly so the fuzzing
reaches the parsing and the core: never a 500, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from drip.runtime import Drip
from drip.web import create_app
from tests.web.test_fuzz import FUZZ, bodies, json_values, maybe, no_server_error
from tests.web.test_shops import (  # noqa: F401  (shop_drip: the fixture)
    GUMROAD_SECRET,
    lemon_headers,
    shop_drip,
    shopify_headers,
)

line_items = st.lists(st.fixed_dictionaries({}, optional={
    "sku": st.sampled_from(["pht-7-week", "12-week-program", "TSHIRT"]) | maybe}), max_size=3)
shopify_bodies = st.fixed_dictionaries({}, optional={
    "id": maybe, "order_id": maybe, "email": maybe, "customer": json_values | st.fixed_dictionaries(
        {}, optional={"first_name": maybe, "email": maybe}),
    "line_items": line_items | maybe, "refund_line_items": st.lists(st.fixed_dictionaries(
        {}, optional={"line_item": json_values | st.fixed_dictionaries({}, optional={
            "sku": maybe})}), max_size=3) | maybe,
    "note_attributes": json_values,
}) | json_values


@pytest.fixture
def shop_client(shop_drip: Drip) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(create_app(shop_drip), base_url="https://drip.test") as client:
        yield client


@FUZZ
@given(data=shopify_bodies, topic=st.sampled_from(["orders/paid", "refunds/create", "x"]))
def test_shopify_hook_never_fails(shop_client: TestClient, data: Any, topic: str) -> None:
    body = json.dumps(data).encode()
    no_server_error(shop_client.post("/hooks/shopify", content=body,
                                     headers=shopify_headers(body, topic)))


@FUZZ
@given(data=st.fixed_dictionaries({}, optional={
    "meta": json_values | st.fixed_dictionaries({}, optional={
        "event_name": st.sampled_from(["order_created", "order_refunded"]) | maybe,
        "custom_data": json_values | st.fixed_dictionaries({}, optional={
            "product": maybe, "timezone": maybe})}),
    "data": json_values | st.fixed_dictionaries({}, optional={
        "id": maybe, "attributes": json_values | st.fixed_dictionaries({}, optional={
            "status": st.just("paid") | maybe, "user_email": maybe, "user_name": maybe,
            "refunded_at": maybe})})}) | json_values)
def test_lemonsqueezy_hook_never_fails(shop_client: TestClient, data: Any) -> None:
    body = json.dumps(data).encode()
    no_server_error(shop_client.post("/hooks/lemonsqueezy", content=body,
                                     headers=lemon_headers(body)))


@FUZZ
@given(form=st.dictionaries(st.sampled_from(["sale_id", "email", "full_name", "permalink",
                                             "product_permalink", "refunded",
                                             "url_params[timezone]", "resource_name"]),
                            st.text(max_size=40)), raw=bodies)
def test_gumroad_hook_never_fails(shop_client: TestClient, form: dict[str, str],
                                  raw: bytes) -> None:
    for body in (urlencode(form).encode(), raw):
        no_server_error(shop_client.post(f"/hooks/gumroad/{GUMROAD_SECRET}", content=body))

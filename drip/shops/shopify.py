"""Shopify: `orders/paid` and `refunds/create`, signed with X-Shopify-Hmac-Sha256 (base64
HMAC-SHA256 of the raw body). A line item's SKU is the catalog product key; each catalog
line item is recorded as `ORDER_ID:SKU`."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from drip.catalog import Catalog
from drip.errors import BadSignature, InvalidInput
from drip.purchases import Refund, order_from, parse_json
from drip.settings import Settings
from drip.shops.base import Shop, ShopNews, hmac_sha256, known_products, same


class Shopify(Shop):
    name = "shopify"
    path = "/hooks/shopify"
    secret_variable = "DRIP_SHOPIFY_WEBHOOK_SECRET"

    def secret(self, settings: Settings) -> str:
        return settings.shopify_webhook_secret

    def verify(self, secret: str, body: bytes, headers: Mapping[str, str],
               path: Mapping[str, Any]) -> None:
        expected = base64.b64encode(hmac_sha256(secret, body)).decode()
        if not same(headers.get("x-shopify-hmac-sha256"), expected):
            raise BadSignature("The X-Shopify-Hmac-Sha256 signature does not match the body.")

    def parse(self, body: bytes, headers: Mapping[str, str], catalog: Catalog) -> ShopNews:
        topic = (headers.get("x-shopify-topic") or "").strip()
        event_id = (headers.get("x-shopify-webhook-id") or "").strip()
        data = parse_json(body)
        if not isinstance(data, dict):
            raise InvalidInput("The Shopify webhook must be a JSON object.")
        if topic == "orders/paid":
            return self._order(data, catalog, event_id)
        if topic == "refunds/create":
            order_id = _id(data.get("order_id"), "order_id")
            skus = [_sku(item.get("line_item")) for item in _list(data, "refund_line_items")]
            return ShopNews(refunds=(Refund(self.name, _id(data.get("id"), "id"), order_id,
                                            tuple(s for s in skus if s)),), event_id=event_id)
        return ShopNews(ignored=topic[:100] or "no X-Shopify-Topic")

    def _order(self, data: dict[str, Any], catalog: Catalog, event_id: str) -> ShopNews:
        order_id = _id(data.get("id"), "id")
        known = known_products(catalog, [s for s in (_sku(i) for i in _list(data, "line_items"))
                                         if s])
        if not known.products:
            return ShopNews(ignored="no line item's SKU is a product in the catalog"
                            + (f" ({', '.join(known.unknown)[:200]})" if known.unknown else ""))
        found = data.get("customer")
        customer: dict[str, Any] = found if isinstance(found, dict) else {}
        email = data.get("email") or data.get("contact_email") or customer.get("email")
        name = " ".join(str(customer.get(k) or "") for k in ("first_name", "last_name"))
        notes = {str(n.get("name")): n.get("value") for n in _list(data, "note_attributes")}
        orders = tuple(order_from(self.name, {
            "order_id": f"{order_id}:{product}", "email": email, "product": product,
            "name": name.strip(), "timezone": notes.get("timezone") or ""})
            for product in dict.fromkeys(known.products))
        return ShopNews(orders=orders, event_id=event_id)


def _id(value: Any, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
        raise InvalidInput(f"The Shopify webhook has no '{name}'.")
    return str(value).strip()[:100]


def _list(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    value = data.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput(f"The Shopify webhook's '{name}' must be a list.")
    return [item for item in value if isinstance(item, dict)]


def _sku(item: Any) -> str:
    sku = item.get("sku") if isinstance(item, dict) else None
    return sku.strip()[:100] if isinstance(sku, str) else ""

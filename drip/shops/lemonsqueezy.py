"""Lemon Squeezy: `order_created` (paid) and `order_refunded`, signed with X-Signature (hex
HMAC-SHA256 of the raw body). The product key comes from the checkout's custom data
(`checkout[custom][product]=KEY`), as does an optional `timezone`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drip.catalog import Catalog
from drip.errors import BadSignature, InvalidInput
from drip.purchases import Refund, order_from, parse_json
from drip.settings import Settings
from drip.shops.base import Shop, ShopNews, hmac_sha256, known_products, same


class LemonSqueezy(Shop):
    name = "lemonsqueezy"
    path = "/hooks/lemonsqueezy"
    secret_variable = "DRIP_LEMONSQUEEZY_WEBHOOK_SECRET"

    def secret(self, settings: Settings) -> str:
        return settings.lemonsqueezy_webhook_secret

    def verify(self, secret: str, body: bytes, headers: Mapping[str, str],
               path: Mapping[str, Any]) -> None:
        if not same(headers.get("x-signature"), hmac_sha256(secret, body).hex()):
            raise BadSignature("The X-Signature does not match the body.")

    def parse(self, body: bytes, headers: Mapping[str, str], catalog: Catalog) -> ShopNews:
        data = parse_json(body)
        meta = _object(data, "meta")
        order = _object(data, "data")
        attributes = _object(order, "attributes")
        event = str(meta.get("event_name") or headers.get("x-event-name") or "")[:100]
        order_id = order.get("id")
        if event not in ("order_created", "order_refunded"):
            return ShopNews(ignored=event or "no event_name")
        if isinstance(order_id, bool) or not isinstance(order_id, int | str) \
                or not str(order_id).strip():
            raise InvalidInput("The Lemon Squeezy event has no data.id order.")
        order_id = str(order_id).strip()[:100]
        if event == "order_refunded":
            refund_id = f"{order_id}@{str(attributes.get('refunded_at') or '')[:40]}"
            return ShopNews(refunds=(Refund(self.name, refund_id, order_id),))
        if attributes.get("status") != "paid":
            return ShopNews(ignored=f"order status {str(attributes.get('status'))[:40]}")
        given = meta.get("custom_data")
        custom: dict[str, Any] = given if isinstance(given, dict) else {}
        product = custom.get("product")
        if not isinstance(product, str) or not known_products(catalog, [product]).products:
            return ShopNews(ignored="the checkout's custom data names no product in the "
                                    f"catalog ({str(product)[:100]})")
        return ShopNews(orders=(order_from(self.name, {
            "order_id": order_id, "email": attributes.get("user_email"), "product": product,
            "name": attributes.get("user_name") or "",
            "timezone": custom.get("timezone") or ""}),))


def _object(data: Any, name: str) -> dict[str, Any]:
    value = data.get(name) if isinstance(data, dict) else None
    if not isinstance(value, dict):
        raise InvalidInput(f"The Lemon Squeezy event has no '{name}' object.")
    return value

"""The one pipeline every shop goes through: verify the raw body, parse it, record it.

A shop module fills in only what differs: where its secret is, how it signs, and how its
payload names the order, the buyer and the product.
"""

from __future__ import annotations

import hashlib
import hmac
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from drip.catalog import Catalog
from drip.errors import BadSignature, ConfigError
from drip.purchases import Order, Refund, record_order, record_refund
from drip.sequence import Library
from drip.settings import Settings
from drip.store import Store


@dataclass(frozen=True)
class ShopNews:
    """What one webhook says: orders paid, refunds made, or why it is ignored."""

    orders: tuple[Order, ...] = ()
    refunds: tuple[Refund, ...] = ()
    ignored: str = ""  # a reason, for events drip does not act on
    event_id: str = ""  # the shop's id for this delivery, kept with the purchase


class Shop(ABC):
    """One shop: its name (the purchases' source), its secret, its signature, its payload."""

    name: str
    path: str  # the route drip serve answers it on
    secret_variable: str  # the DRIP_* variable holding the secret

    @abstractmethod
    def secret(self, settings: Settings) -> str: ...

    @abstractmethod
    def verify(self, secret: str, body: bytes, headers: Mapping[str, str],
               path: Mapping[str, Any]) -> None:
        """Raise BadSignature unless the request is signed with `secret`."""

    @abstractmethod
    def parse(self, body: bytes, headers: Mapping[str, str], catalog: Catalog) -> ShopNews:
        """The orders and refunds in a verified body; InvalidInput if it cannot be read."""


def hmac_sha256(secret: str, body: bytes) -> bytes:
    return hmac.new(secret.encode(), body, hashlib.sha256).digest()


def same(given: str | None, expected: str) -> bool:
    """Compare a header's value with what it should be, in constant time."""
    return hmac.compare_digest((given or "").strip().encode(), expected.encode())


def receive(shop: Shop, settings: Settings, store: Store, library: Library, catalog: Catalog,
            body: bytes, headers: Mapping[str, str], path: Mapping[str, Any],
            now: datetime) -> dict[str, Any]:
    """Verify, parse and record one webhook; the JSON answer. Nothing is written unless
    the signature holds and the whole body is read."""
    secret = shop.secret(settings)
    if not secret:
        raise ConfigError(f"{shop.secret_variable} is not set, so {shop.name} webhooks "
                          "cannot be verified.")
    shop.verify(secret, body, headers, path)
    news = shop.parse(body, headers, catalog)
    if news.ignored:
        return {"ignored": news.ignored}
    payload = {"event_id": news.event_id[:200]} if news.event_id else None
    answer: dict[str, Any] = {"orders": [], "refunds": []}
    for order in news.orders:
        outcome = record_order(store, library, catalog, order, now, payload=payload)
        answer["orders"].append({"order_id": order.order_id, "product": order.product,
                                 "recorded": outcome.recorded,
                                 "enrolled_in": outcome.enrolled_in, "note": outcome.note})
    for refund in news.refunds:
        done = record_refund(store, refund, now)
        answer["refunds"].append({"order_id": refund.order_id, "recorded": done.recorded,
                                  "products": list(done.products), "note": done.note})
    return answer


@dataclass(frozen=True)
class Known:
    """The catalog products named in an order, and the names that are not in the catalog."""

    products: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def known_products(catalog: Catalog, keys: list[str]) -> Known:
    found = Known()
    ours = {p.key for p in catalog.products}
    for key in keys:
        (found.products if key in ours else found.unknown).append(key)
    return found


__all__ = ["BadSignature", "Shop", "ShopNews", "receive"]

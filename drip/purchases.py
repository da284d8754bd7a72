"""A purchase from a shop or Stripe: record the order once and enroll the buyer at once.

Buying is the relationship, so no double opt-in is needed. The catalog says which
sequence a product starts and which tags it sets; a product without a sequence is a
conversion, recorded so that the nudge rules stop offering it. A refund is recorded
too, and the buyer is never offered that product again; it never unsubscribes anyone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from drip.addresses import clean_name, normalise_email, validate_timezone
from drip.catalog import Catalog
from drip.errors import Conflict, InvalidInput
from drip.sequence import Library
from drip.store import ConsentRecord, Store
from drip.subscriptions import enroll

MAX_FIELD = 200
#: The Checkout Session events that can mean "paid" (Stripe's fulfilment guide).
STRIPE_PAID_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")


@dataclass(frozen=True)
class Order:
    source: str  # "shop" (POST /hooks/purchase), "stripe", or a drip.shops module's name
    order_id: str
    email: str
    product: str
    name: str = ""
    timezone: str = "UTC"


@dataclass(frozen=True)
class PurchaseOutcome:
    recorded: bool  # False: this order was seen before, and nothing changed
    subscriber_id: int | None
    enrolled_in: str | None = None
    note: str = ""


def record_order(store: Store, library: Library, catalog: Catalog, order: Order,
                 now: datetime, payload: dict[str, Any] | None = None) -> PurchaseOutcome:
    """Record the order (idempotent on its id) and start the product's sequence, if any."""
    product = catalog.product(order.product)
    address = normalise_email(order.email)
    zone_name = validate_timezone(order.timezone or "UTC")
    if store.purchase_recorded(order.source, order.order_id):
        return PurchaseOutcome(False, None, note="This order was already recorded.")
    enrolled_in, note = None, ""
    subscriber_id: int | None = None
    if product.sequence is not None:
        try:
            outcome = enroll(store, library, email=address, sequence_key=product.sequence,
                             now=now, name=order.name, timezone=zone_name, source="purchase",
                             consent=ConsentRecord(source="purchase", confirmed_at=now,
                                                   details={"order_id": order.order_id,
                                                            "order_source": order.source}))
            subscriber_id, enrolled_in = outcome.subscriber_id, product.sequence
        except Conflict as exc:  # a suppressed address still bought: record, do not email
            note = exc.message
    if subscriber_id is None:
        subscriber_id = store.buyer(email=address, name=clean_name(order.name),
                                    timezone=zone_name, now=now)
    created = store.record_purchase(source=order.source, order_id=order.order_id,
                                    subscriber_id=subscriber_id, product=product.key, now=now,
                                    tags=product.tags, payload=payload)
    return PurchaseOutcome(created, subscriber_id, enrolled_in, note)


@dataclass(frozen=True)
class Refund:
    """Money given back for (part of) an order recorded earlier."""

    source: str
    refund_id: str
    order_id: str
    products: tuple[str, ...] = ()  # the products refunded; empty: the whole order


@dataclass(frozen=True)
class RefundOutcome:
    recorded: bool  # False: seen before, or no such order was recorded
    products: tuple[str, ...] = ()
    note: str = ""


def record_refund(store: Store, refund: Refund, now: datetime) -> RefundOutcome:
    """Record a refund once per product refunded. The buyer keeps the program they are
    in and is never unsubscribed: they asked for their money back, not for silence. They
    are not offered that product again (drip.nudges reads refunds as owned)."""
    bought = store.order_purchases(refund.source, refund.order_id)
    if not bought:
        return RefundOutcome(False, note="No order with this id was recorded, so there is "
                                         "nothing to refund.")
    chosen = [(sid, product) for sid, product in bought
              if not refund.products or product in refund.products]
    recorded = tuple(product for sid, product in chosen if store.record_refund(
        source=refund.source, refund_id=refund.refund_id, order_id=refund.order_id,
        subscriber_id=sid, product=product, now=now))
    return RefundOutcome(bool(recorded), recorded,
                         "" if recorded else "This refund was already recorded.")


def order_from(source: str, data: dict[str, Any]) -> Order:
    """An order from a shop's fields ({order_id, email, product, name?, timezone?}),
    each checked as the generic webhook's are."""
    order = shop_order(data)
    return Order(source=source, order_id=order.order_id, email=order.email,
                 product=order.product, name=order.name, timezone=order.timezone)


def _text(data: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise InvalidInput(f"The order has no '{name}'; send it as a string.")
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or len(value) > MAX_FIELD or "\x00" in value:
        raise InvalidInput(f"The order's '{name}' must be text of at most {MAX_FIELD} "
                           "characters.")
    return value.strip()


def shop_order(data: Any) -> Order:
    """The generic order: {order_id, email, name, product, timezone?}."""
    if not isinstance(data, dict):
        raise InvalidInput("The order must be a JSON object.")
    return Order(source="shop", order_id=_text(data, "order_id"), email=_text(data, "email"),
                 product=_text(data, "product"), name=_text(data, "name", required=False),
                 timezone=_text(data, "timezone", required=False) or "UTC")


def stripe_order(data: Any) -> Order | None:
    """A Stripe event as an order; None for event types drip does not act on, and for a
    session still unpaid (a delayed payment method: its async_payment_succeeded follows).

    The product comes from the Checkout Session's (or Payment Link's) metadata
    `product`, falling back to `client_reference_id`; the buyer from customer_details.
    """
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise InvalidInput("The Stripe event must be a JSON object with a type.")
    if data["type"] not in STRIPE_PAID_EVENTS:
        return None
    session = (data.get("data") or {}).get("object") if isinstance(data.get("data"), dict) \
        else None
    if not isinstance(session, dict):
        raise InvalidInput("The Stripe event has no data.object session.")
    if session.get("payment_status") == "unpaid":
        return None
    metadata = _object(session.get("metadata"))
    details = _object(session.get("customer_details"))
    email = details.get("email") or session.get("customer_email")
    product = metadata.get("product") or session.get("client_reference_id")
    merged = {"order_id": session.get("id"), "email": email, "product": product,
              "name": details.get("name") or "", "timezone": metadata.get("timezone") or ""}
    return order_from("stripe", merged)


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_json(body: bytes) -> Any:
    """JSON from a request body (UTF-8, as RFC 8259 asks), or InvalidInput (a 400).

    A lone surrogate ("\\udcff") is valid JSON but no text: it cannot be stored, logged
    or echoed back as UTF-8, so it is refused here, before anything reads it.
    """
    try:
        text = body.decode()  # strict: json.loads(bytes) would let encoded surrogates pass
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidInput("The body is not valid JSON in UTF-8.") from None
    if "\\u" in text:  # only an escape can still make a surrogate
        try:
            json.dumps(data, ensure_ascii=False).encode()
        except (UnicodeEncodeError, RecursionError):
            raise InvalidInput("The body holds a lone surrogate (\\ud800-\\udfff), "
                               "which is not text; send UTF-8 text.") from None
    return data

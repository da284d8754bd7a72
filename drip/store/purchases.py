"""Queries for purchases and tags: what a subscriber has bought or booked."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select

from drip.models import Event, Purchase, Subscriber, Tag
from drip.store._base import Announcement, StoreBase


class PurchaseQueries(StoreBase):
    """Recording purchases (idempotent on the order) and tags."""

    def record_purchase(self, *, source: str, order_id: str, subscriber_id: int, product: str,
                        now: datetime, tags: Iterable[str] = (),
                        payload: dict[str, Any] | None = None) -> bool:
        """Record an order once; True if it is new. The same order again changes nothing."""
        statement = self._insert(Purchase).values(
            source=source, order_id=order_id, subscriber_id=subscriber_id, product=product,
            purchased_at=now, payload=payload,
        ).on_conflict_do_nothing(index_elements=["source", "order_id"]).returning(Purchase.id)
        with self._session() as s, s.begin():
            # RETURNING, not rowcount: psycopg reports -1 for this statement
            created = s.execute(statement).first() is not None
            wanted = set(tags)
            if created and wanted:
                have = set(s.scalars(select(Tag.tag).where(Tag.subscriber_id == subscriber_id)))
                for tag in sorted(wanted - have):
                    s.add(Tag(subscriber_id=subscriber_id, tag=tag, created_at=now))
            if created:
                email = s.scalar(select(Subscriber.email).where(Subscriber.id == subscriber_id))
                self._announce(s, [Announcement("purchased", subscriber_id, {
                    "email": email, "product": product, "order_id": order_id,
                    "source": source})], now)
            return created

    def purchase_recorded(self, source: str, order_id: str) -> bool:
        with self._session() as s:
            return s.scalar(select(Purchase.id).where(Purchase.source == source,
                                                      Purchase.order_id == order_id)) is not None

    def buyer(self, *, email: str, name: str, timezone: str, now: datetime) -> int:
        """The subscriber id of a buyer, creating the subscriber if they are new."""
        statement = self._insert(Subscriber).values(
            email=email, name=name, timezone=timezone, created_at=now,
        ).on_conflict_do_nothing(index_elements=["email"])
        with self._session() as s, s.begin():
            s.execute(statement)
            return int(s.scalars(select(Subscriber.id).where(Subscriber.email == email)).one())

    def order_purchases(self, source: str, order_id: str) -> list[tuple[int, str]]:
        """(subscriber id, product) of each purchase recorded for an order: the order id
        itself, or one line of it (`ORDER:PRODUCT`, as a shop with several line items
        records them)."""
        with self._session() as s:
            rows = s.execute(select(Purchase.subscriber_id, Purchase.product).where(
                Purchase.source == source,
                or_(Purchase.order_id == order_id,
                    Purchase.order_id.startswith(f"{order_id}:", autoescape=True)))
                .order_by(Purchase.id)).all()
        return [(int(r[0]), str(r[1])) for r in rows]

    def record_refund(self, *, source: str, refund_id: str, order_id: str,
                      subscriber_id: int, product: str, now: datetime) -> bool:
        """Record a refund of one product once (a `refunded` event); True if it is new."""
        statement = self._insert(Event).values(
            provider_event_id=f"{source}:refund:{refund_id}:{product}"[:200], kind="refunded",
            subscriber_id=subscriber_id, occurred_at=now, received_at=now, detail=product,
            payload={"source": source, "order_id": order_id, "refund_id": refund_id},
        ).on_conflict_do_nothing(index_elements=["provider_event_id"]).returning(Event.id)
        with self._session() as s, s.begin():
            return s.execute(statement).first() is not None

"""Queries for purchases and tags: what a subscriber has bought or booked."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select

from drip.models import Purchase, Tag
from drip.store._base import StoreBase


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
            # RETURNING, not rowcount: an ORM insert reports rowcount -1 on psycopg
            created = s.execute(statement).first() is not None
            wanted = set(tags)
            if created and wanted:
                have = set(s.scalars(select(Tag.tag).where(Tag.subscriber_id == subscriber_id)))
                for tag in sorted(wanted - have):
                    s.add(Tag(subscriber_id=subscriber_id, tag=tag, created_at=now))
            return created

"""Queries behind the coach's weekly digest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from drip.clock import as_utc
from drip.models import Enrollment, Event, Purchase, Subscriber
from drip.store._base import StoreBase


@dataclass(frozen=True)
class EnrollmentRow:
    enrollment_id: int
    subscriber_id: int
    email: str
    name: str
    state: str
    enrolled_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class PurchaseRow:
    subscriber_id: int
    product: str
    purchased_at: datetime


class DigestQueries(StoreBase):
    """Who is where in each sequence, and what they bought."""

    def enrollments_of(self, sequence_key: str) -> list[EnrollmentRow]:
        with self._session() as s:
            rows = s.execute(
                select(Enrollment.id, Enrollment.subscriber_id, Subscriber.email,
                       Subscriber.name, Enrollment.state, Enrollment.enrolled_at,
                       Enrollment.finished_at)
                .join(Subscriber, Subscriber.id == Enrollment.subscriber_id)
                .where(Enrollment.sequence_key == sequence_key)
                .order_by(Subscriber.email)
            ).all()
        return [EnrollmentRow(r[0], r[1], r[2], r[3], r[4], as_utc(r[5]),
                              as_utc(r[6]) if r[6] else None) for r in rows]

    def purchases_since(self, since: datetime) -> list[PurchaseRow]:
        with self._session() as s:
            rows = s.execute(
                select(Purchase.subscriber_id, Purchase.product, Purchase.purchased_at)
                .where(Purchase.purchased_at >= since)
            ).all()
        return [PurchaseRow(r[0], r[1], as_utc(r[2])) for r in rows]

    def record_event(self, kind: str, now: datetime, detail: str,
                     subscriber_id: int | None = None, email: str | None = None) -> None:
        """Note something drip did that is not a delivery (a digest sent, say)."""
        with self._session() as s, s.begin():
            s.add(Event(kind=kind, subscriber_id=subscriber_id, email=email, occurred_at=now,
                        received_at=now, detail=detail))

"""Read-only queries for operators, reports and the demo."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    func,
    select,
)

from drip.clock import as_utc
from drip.models import (
    Delivery,
    Enrollment,
    Subscriber,
)
from drip.store._base import (
    DELIVERIES,
    DeliveryRow,
    StoreBase,
)


class ReportQueries(StoreBase):
    """Listings and counts."""

    def deliveries(self, *, email: str | None = None, states: Sequence[str] = (),
                   limit: int | None = None) -> list[DeliveryRow]:
        t = DELIVERIES
        query = (
            select(t.c.id, Subscriber.email, Subscriber.name, Subscriber.timezone,
                   t.c.sequence_key, t.c.seq_no, t.c.step_key, t.c.variant, t.c.nudge,
                   t.c.state, t.c.due_at, t.c.sent_at, t.c.attempts, t.c.last_error,
                   t.c.provider_message_id)
            .join(Subscriber, Subscriber.id == t.c.subscriber_id)
            .order_by(Subscriber.email, t.c.seq_no)
        )
        if email:
            query = query.where(Subscriber.email == email)
        if states:
            query = query.where(t.c.state.in_(list(states)))
        if limit:
            query = query.limit(limit)
        with self._session() as s:
            rows = s.execute(query).all()
        return [
            DeliveryRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
                        as_utc(r[10]), as_utc(r[11]) if r[11] else None, r[12], r[13], r[14])
            for r in rows
        ]

    def count_deliveries(self, states: Sequence[str] = ()) -> int:
        query = select(func.count()).select_from(Delivery)
        if states:
            query = query.where(Delivery.state.in_(list(states)))
        with self._session() as s:
            return int(s.scalar(query) or 0)

    def enrolled_sequence_keys(self) -> list[str]:
        """Every sequence anyone was ever enrolled in, including ones whose file is gone."""
        with self._session() as s:
            return sorted(s.scalars(select(Enrollment.sequence_key).distinct()))

    def next_due_at(self) -> datetime | None:
        """When the earliest scheduled email falls due (the demo's clock jumps to it)."""
        with self._session() as s:
            due = s.scalar(select(func.min(Delivery.due_at))
                           .where(Delivery.state == "scheduled"))
        return as_utc(due) if due is not None else None

"""Queries for checkpoint answers: a subscriber's one click on "passed" or "not yet"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select

from drip.errors import NotFound
from drip.models import CheckpointAnswer, Delivery, Subscriber
from drip.store._base import StoreBase


@dataclass(frozen=True)
class AnsweredDelivery:
    """A delivery whose checkpoint can be answered, and where its answer stands."""

    delivery_id: int
    enrollment_id: int
    sequence_key: str
    step_key: str
    variant: str
    state: str
    email: str
    name: str
    answer: str | None
    superseded: bool  # the next email of the enrollment has gone out


class CheckpointQueries(StoreBase):
    """Reading and writing checkpoint answers."""

    def answered_delivery(self, delivery_id: int) -> AnsweredDelivery:
        with self._session() as s:
            row = s.execute(
                select(Delivery.id, Delivery.enrollment_id, Delivery.sequence_key,
                       Delivery.step_key, Delivery.variant, Delivery.state, Subscriber.email,
                       Subscriber.name, CheckpointAnswer.answer, Delivery.seq_no)
                .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                .outerjoin(CheckpointAnswer, CheckpointAnswer.delivery_id == Delivery.id)
                .where(Delivery.id == delivery_id)
            ).first()
            if row is None:
                raise NotFound("That checkpoint does not exist.")
            superseded = s.scalar(
                select(func.count()).select_from(Delivery).where(and_(
                    Delivery.enrollment_id == row[1], Delivery.seq_no > row[9],
                    Delivery.state.in_(("sending", "sent", "unknown")),
                ))
            )
        return AnsweredDelivery(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7],
                                row[8], bool(superseded))

    def save_answer(self, delivery: AnsweredDelivery, answer: str, now: datetime) -> None:
        """Insert or replace the answer to one delivery's checkpoint."""
        statement = self._insert(CheckpointAnswer).values(
            delivery_id=delivery.delivery_id, enrollment_id=delivery.enrollment_id,
            step_key=delivery.step_key, answer=answer, answered_at=now)
        statement = statement.on_conflict_do_update(
            index_elements=["delivery_id"],
            set_={"answer": statement.excluded.answer,
                  "answered_at": statement.excluded.answered_at},
        )
        with self._session() as s, s.begin():
            s.execute(statement)

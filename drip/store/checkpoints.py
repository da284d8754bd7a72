"""Queries for checkpoint answers: a subscriber's one click on "passed" or "not yet"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select, update

from drip.clock import as_utc
from drip.errors import NotFound
from drip.models import CheckpointAnswer, Delivery, Enrollment, Subscriber
from drip.store._base import Announcement, StoreBase

#: The variant of a checkpoint reminder: it asks again, so it never settles the question.
_REMINDER_VARIANT = "checkpoint-reminder"


@dataclass(frozen=True)
class PendingEmail:
    """The enrollment's next email, as planned (its step and variant are provisional)."""

    delivery_id: int
    state: str
    step_key: str
    variant: str
    due_at: datetime
    window_end_at: datetime | None


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
    superseded: bool  # a later weekly email of the enrollment has gone out
    seq_no: int = 0
    subscriber_id: int = 0
    timezone: str = "UTC"
    went_out_at: datetime | None = None
    unsubscribed: bool = False
    suppressed: bool = False
    enrollment_state: str = "active"
    pending: PendingEmail | None = None


@dataclass(frozen=True)
class ReminderMove:
    """Where the enrollment's pending checkpoint reminder goes once the question is answered."""

    delivery_id: int
    due_at: datetime
    window_end_at: datetime | None
    step_key: str
    variant: str


class CheckpointQueries(StoreBase):
    """Reading and writing checkpoint answers."""

    def answered_delivery(self, delivery_id: int) -> AnsweredDelivery:
        with self._session() as s:
            row = s.execute(
                select(Delivery.id, Delivery.enrollment_id, Delivery.sequence_key,
                       Delivery.step_key, Delivery.variant, Delivery.state, Subscriber.email,
                       Subscriber.name, CheckpointAnswer.answer, Delivery.seq_no,
                       Delivery.subscriber_id, Subscriber.timezone,
                       func.coalesce(Delivery.sent_at, Delivery.sending_at),
                       Subscriber.unsubscribed_at, Subscriber.suppressed_at, Enrollment.state)
                .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                .join(Enrollment, Enrollment.id == Delivery.enrollment_id)
                .outerjoin(CheckpointAnswer, CheckpointAnswer.delivery_id == Delivery.id)
                .where(Delivery.id == delivery_id)
            ).first()
            if row is None:
                raise NotFound("That checkpoint does not exist.")
            later = and_(Delivery.enrollment_id == row[1], Delivery.seq_no > row[9])
            superseded = s.scalar(
                select(func.count()).select_from(Delivery).where(
                    later, Delivery.state.in_(("sending", "sent", "unknown")),
                    # a reminder asks this same question again: it settles nothing
                    Delivery.variant != _REMINDER_VARIANT)
            )
            pending = s.execute(
                select(Delivery.id, Delivery.state, Delivery.step_key, Delivery.variant,
                       Delivery.due_at, Delivery.window_end_at)
                .where(later, Delivery.state.in_(("scheduled", "claimed", "held")))
                .order_by(Delivery.seq_no).limit(1)
            ).first()
        return AnsweredDelivery(
            row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8],
            bool(superseded), seq_no=row[9], subscriber_id=row[10], timezone=row[11],
            went_out_at=as_utc(row[12]) if row[12] is not None else None,
            unsubscribed=row[13] is not None, suppressed=row[14] is not None,
            enrollment_state=row[15],
            pending=PendingEmail(pending[0], pending[1], pending[2], pending[3],
                                 as_utc(pending[4]),
                                 as_utc(pending[5]) if pending[5] is not None else None)
            if pending is not None else None,
        )

    def save_answer(self, delivery: AnsweredDelivery, answer: str, now: datetime,
                    move: ReminderMove | None = None) -> None:
        """Insert or replace the answer to one delivery's checkpoint; with `move`, in the same
        transaction, the pending reminder that no longer needs to ask becomes the weekly
        email at its slot (only while it is still scheduled: a reminder already going out
        stays as it is)."""
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
            self._announce(s, [Announcement("checkpoint.answered", delivery.subscriber_id, {
                "email": delivery.email, "delivery_id": delivery.delivery_id,
                "enrollment_id": delivery.enrollment_id, "sequence": delivery.sequence_key,
                "step": delivery.step_key, "answer": answer})], now)
            if move is not None:
                s.execute(
                    update(Delivery)
                    .where(Delivery.id == move.delivery_id, Delivery.state == "scheduled",
                           Delivery.variant == _REMINDER_VARIANT)
                    .values(due_at=move.due_at, window_end_at=move.window_end_at,
                            step_key=move.step_key, variant=move.variant)
                )

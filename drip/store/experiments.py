"""Queries for split tests and the nudge holdout: the variant each delivery carried, the
counts per variant, and the leaders sent to everyone after (`winner: auto`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import case, distinct, exists, false, func, or_, select
from sqlalchemy.orm import Session

from drip.clock import as_utc
from drip.models import (
    CheckpointAnswer,
    Click,
    Delivery,
    DeliveryTest,
    Enrollment,
    Purchase,
    SplitLeader,
)
from drip.store._base import StoreBase


class SplitSent(NamedTuple):
    """The split-test variant of an email marked `sending` (drip.experiments.assignment)."""

    delivery_id: int
    enrollment_id: int
    sequence_key: str
    test_name: str
    variant: str


@dataclass(frozen=True)
class VariantCount:
    """One variant's enrollments that got the tested email, and how many did the metric."""

    variant: str
    sent: int
    count: int


@dataclass(frozen=True)
class LeaderRow:
    sequence_key: str
    test_name: str
    variant: str
    decided_at: datetime
    detail: str | None


@dataclass(frozen=True)
class EnrollmentBought:
    """An enrollment that got at least one email, and whether its subscriber bought one of
    the offered products after enrolling."""

    enrollment_id: int
    bought: bool


def record_splits(session: Session, insert: Callable[[Any], Any],
                 tests: Sequence[SplitSent]) -> None:
    """Record the variants of emails being marked `sending`, in the claim's transaction
    (drip.store.deliveries.DueBatch.send). A retried email records what it carries now
    (the leader, if one was sent to everyone since its first attempt)."""
    if not tests:
        return
    statement = insert(DeliveryTest).values([t._asdict() for t in tests])
    session.execute(statement.on_conflict_do_update(
        index_elements=["delivery_id"], set_={"variant": statement.excluded.variant}))


class ExperimentQueries(StoreBase):
    """Counting split tests and the holdout; the leaders of `winner: auto` tests."""

    def split_counts(self, sequence_key: str, test_name: str, metric: str) -> list[VariantCount]:
        """Per variant: enrollments whose tested email went out, and how many of them
        answered its checkpoint, clicked a link in it (scanners aside), or bought
        something after it went out."""
        if metric == "checkpoint_answered":
            did: Any = exists().where(CheckpointAnswer.delivery_id == DeliveryTest.delivery_id)
        elif metric == "clicked":
            did = exists().where(Click.delivery_id == DeliveryTest.delivery_id,
                                 Click.scanner.is_(None))
        else:
            did = exists().where(Purchase.subscriber_id == Delivery.subscriber_id,
                                 Purchase.purchased_at >= Delivery.sent_at)
        query = (
            select(DeliveryTest.variant, func.count(distinct(DeliveryTest.enrollment_id)),
                   func.count(distinct(case((did, DeliveryTest.enrollment_id)))))
            .join(Delivery, Delivery.id == DeliveryTest.delivery_id)
            .where(DeliveryTest.sequence_key == sequence_key,
                   DeliveryTest.test_name == test_name, Delivery.state == "sent")
            .group_by(DeliveryTest.variant)
        )
        with self._session() as s:
            return [VariantCount(v, int(n), int(c)) for v, n, c in s.execute(query)]

    def split_leaders(self) -> list[LeaderRow]:
        """Every leader sent to everyone after, oldest first."""
        with self._session() as s:
            return [LeaderRow(r.sequence_key, r.test_name, r.variant, as_utc(r.decided_at),
                              r.detail)
                    for r in s.scalars(select(SplitLeader).order_by(SplitLeader.decided_at))]

    def record_leader(self, sequence_key: str, test_name: str, variant: str, now: datetime,
                      detail: str) -> bool:
        """Send `variant` to everyone after; True if it is new. A test's first leader stays."""
        statement = self._insert(SplitLeader).values(
            sequence_key=sequence_key, test_name=test_name, variant=variant, decided_at=now,
            detail=detail,
        ).on_conflict_do_nothing(index_elements=["sequence_key", "test_name"]).returning(
            SplitLeader.variant)
        with self._session() as s, s.begin():
            return s.execute(statement).first() is not None

    def holdout_purchases(self, sequence_key: str,
                          products: Sequence[str]) -> list[EnrollmentBought]:
        """Each enrollment in the sequence that got an email, and whether its subscriber
        bought one of `products` after enrolling (drip.experiments.report splits them by
        the holdout)."""
        if products:
            bought: Any = exists().where(
                Purchase.subscriber_id == Enrollment.subscriber_id,
                Purchase.purchased_at >= Enrollment.enrolled_at,
                or_(*(Purchase.product == p for p in products)))
        else:
            bought = false()
        got = exists().where(Delivery.enrollment_id == Enrollment.id, Delivery.state == "sent")
        query = select(Enrollment.id, case((bought, True), else_=False)).where(
            Enrollment.sequence_key == sequence_key, got)
        with self._session() as s:
            return [EnrollmentBought(int(i), bool(b)) for i, b in s.execute(query)]

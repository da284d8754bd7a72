"""Queries behind the operator's commands: status, sends, one person's timeline, steering."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    and_,
    case,
    exists,
    func,
    or_,
    select,
)

from drip.clock import as_utc
from drip.models import (
    Enrollment,
    Heartbeat,
    Subscriber,
)
from drip.store._base import DELIVERIES, StoreBase

#: The states `drip status` lists, in the order a delivery moves through them.
STATUS_STATES = ("scheduled", "claimed", "sending", "sent", "failed", "unknown", "held",
                 "cancelled")
SUBSCRIBER_STATES = ("active", "paused", "unsubscribed", "suppressed")


def _utc(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


@dataclass(frozen=True)
class StateCount:
    """How many deliveries are in a state now, and how many got there in each window."""

    state: str
    total: int
    last_hour: int
    last_day: int
    last_week: int


@dataclass(frozen=True)
class HeartbeatRow:
    worker: str
    beat_at: datetime
    started_at: datetime
    detail: str | None


@dataclass(frozen=True)
class Overview:
    """Everything `drip status` counts, read in one transaction."""

    states: list[StateCount]
    due_now: int
    due_next_day: int
    due_next_week: int
    oldest_due_at: datetime | None
    subscribers: dict[str, int]
    heartbeats: list[HeartbeatRow]


@dataclass(frozen=True)
class SendRow:
    """One delivery as an operator sees it."""

    id: int
    email: str
    timezone: str
    sequence_key: str
    seq_no: int
    step_key: str
    variant: str
    nudge: str | None
    state: str
    due_at: datetime
    sent_at: datetime | None
    finished_at: datetime | None
    attempts: int
    provider: str | None
    provider_message_id: str | None
    last_error: str | None

    @property
    def at(self) -> datetime:
        """When this delivery last did something: sent, finished, or (still) due."""
        return self.sent_at or self.finished_at or self.due_at


@dataclass(frozen=True)
class SendFilter:
    states: tuple[str, ...] = ()
    sequence_key: str | None = None
    step_key: str | None = None
    email: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = 50


class OperationQueries(StoreBase):
    """Read and steer the delivery ledger for an operator."""

    def overview(self, now: datetime) -> Overview:
        t = DELIVERIES
        moment = case(
            (t.c.state == "sent", t.c.sent_at),
            (t.c.state.in_(("failed", "unknown", "cancelled")), t.c.finished_at),
            (t.c.state == "sending", t.c.sending_at),
            else_=t.c.due_at,
        )

        def within(delta: timedelta) -> Any:
            return func.sum(case((and_(moment >= now - delta, moment <= now), 1), else_=0))

        pending = or_(t.c.state == "scheduled", t.c.state == "claimed")
        subscriber_state = case(
            (Subscriber.suppressed_at.is_not(None), "suppressed"),
            (Subscriber.unsubscribed_at.is_not(None), "unsubscribed"),
            (and_(
                exists().where(Enrollment.subscriber_id == Subscriber.id,
                               Enrollment.state == "paused"),
                ~exists().where(Enrollment.subscriber_id == Subscriber.id,
                                Enrollment.state == "active"),
            ), "paused"),
            else_="active",
        ).label("state")
        people = select(subscriber_state).subquery()
        with self._session() as s:
            counted = s.execute(
                select(t.c.state, func.count(), within(timedelta(hours=1)),
                       within(timedelta(days=1)), within(timedelta(days=7)))
                .group_by(t.c.state)
            ).all()
            due = s.execute(select(
                func.sum(case((t.c.due_at <= now, 1), else_=0)),
                func.sum(case((and_(t.c.due_at > now, t.c.due_at <= now + timedelta(days=1)),
                               1), else_=0)),
                func.sum(case((and_(t.c.due_at > now, t.c.due_at <= now + timedelta(days=7)),
                               1), else_=0)),
            ).where(t.c.state == "scheduled")).one()
            oldest = s.scalar(select(func.min(t.c.due_at)).where(pending, t.c.due_at <= now))
            people_counts = dict(s.execute(
                select(people.c.state, func.count()).group_by(people.c.state)
            ).tuples().all())
            beats = s.execute(
                select(Heartbeat.worker, Heartbeat.beat_at, Heartbeat.started_at,
                       Heartbeat.detail).order_by(Heartbeat.beat_at.desc()).limit(5)
            ).all()
        by_state = {r[0]: StateCount(r[0], int(r[1]), int(r[2] or 0), int(r[3] or 0),
                                     int(r[4] or 0)) for r in counted}
        states = [by_state.get(name, StateCount(name, 0, 0, 0, 0)) for name in STATUS_STATES]
        states += [row for name, row in sorted(by_state.items()) if name not in STATUS_STATES]
        return Overview(
            states=states,
            due_now=int(due[0] or 0), due_next_day=int(due[1] or 0),
            due_next_week=int(due[2] or 0),
            oldest_due_at=_utc(oldest),
            subscribers={name: int(people_counts.get(name, 0)) for name in SUBSCRIBER_STATES},
            heartbeats=[HeartbeatRow(b[0], as_utc(b[1]), as_utc(b[2]), b[3]) for b in beats],
        )

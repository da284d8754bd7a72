"""The store: every query drip makes, as named methods. Nothing else talks to the database.

Each public method is one transaction. Methods take and return plain values and
frozen dataclasses, never ORM objects, so the core stays free of I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import (
    Engine,
    Table,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from drip.clock import as_utc
from drip.errors import Conflict, NotFound
from drip.models import (
    Consent,
    Delivery,
    Enrollment,
    Heartbeat,
    Lease,
    Pause,
    Subscriber,
)

DELIVERIES = cast(Table, Delivery.__table__)

#: Delivery states. scheduled -> claimed -> sending -> sent | failed | unknown;
#: scheduled/claimed -> cancelled when the subscriber may no longer receive it.
DeliveryState = Literal["scheduled", "claimed", "sending", "sent", "failed", "unknown", "cancelled"]
FINAL_STATES = ("sent", "failed", "unknown", "cancelled")


@dataclass(frozen=True)
class PlannedDelivery:
    """The next email of an enrollment, as the planner decided it."""

    enrollment_id: int
    subscriber_id: int
    sequence_key: str
    seq_no: int
    step_key: str
    due_at: datetime
    window_end_at: datetime | None
    variant: str = "main"
    nudge: str | None = None


@dataclass(frozen=True)
class ConsentRecord:
    source: str
    text_version: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    confirmed_at: datetime | None = None
    details: dict[str, Any] | None = None


@dataclass(frozen=True)
class EnrollOutcome:
    created: bool
    subscriber_id: int
    enrollment_id: int
    state: str


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery this worker holds, with what it needs to render and address it."""

    id: int
    enrollment_id: int
    subscriber_id: int
    sequence_key: str
    seq_no: int
    step_key: str
    variant: str
    nudge: str | None
    due_at: datetime
    attempts: int
    email: str
    name: str
    timezone: str
    enrolled_at: datetime
    enrollment_state: str
    unsubscribed: bool
    suppressed: bool


@dataclass(frozen=True)
class Outcome:
    """What became of one claimed delivery, to be written back in one transaction."""

    delivery_id: int
    state: DeliveryState
    provider: str | None = None
    message_id: str | None = None
    error: str | None = None
    retry_at: datetime | None = None
    content_hash: str | None = None
    variant: str | None = None
    nudge: str | None = None


@dataclass(frozen=True)
class WentOut:
    """A delivery that went out (or may have), whose enrollment should move on."""

    delivery_id: int
    enrollment_id: int
    subscriber_id: int
    sequence_key: str
    seq_no: int
    step_key: str
    variant: str
    timezone: str
    went_out_at: datetime


@dataclass(frozen=True)
class MissedWindow:
    delivery_id: int
    sequence_key: str
    timezone: str


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    email: str
    name: str
    timezone: str
    sequence_key: str
    seq_no: int
    step_key: str
    variant: str
    nudge: str | None
    state: str
    due_at: datetime
    sent_at: datetime | None
    attempts: int
    last_error: str | None
    provider_message_id: str | None


class Store:
    """All of drip's queries. Construct it with an Engine; share it within a process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _session(self) -> Session:
        return self._sessions()

    def _insert(self, model: Any) -> Any:
        """An INSERT that can say ON CONFLICT, in this database's dialect."""
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(model)

    # --- subscribers and enrollments ---------------------------------------------------

    def enroll(
        self,
        *,
        email: str,
        name: str,
        timezone: str,
        sequence_key: str,
        source: str,
        now: datetime,
        first_step: str,
        first_due_at: datetime,
        first_window_end_at: datetime | None,
        consent: ConsentRecord | None,
    ) -> EnrollOutcome:
        """Create the subscriber if new, and enroll them with their first delivery planned.

        Enrolling someone already in the sequence changes nothing.
        """
        for attempt in range(2):
            try:
                return self._enroll_once(
                    email, name, timezone, sequence_key, source, now, first_step,
                    first_due_at, first_window_end_at, consent,
                )
            except IntegrityError:
                if attempt:  # a concurrent enrollment won twice in a row: report, don't loop
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _enroll_once(
        self, email: str, name: str, timezone: str, sequence_key: str, source: str,
        now: datetime, first_step: str, first_due_at: datetime,
        first_window_end_at: datetime | None, consent: ConsentRecord | None,
    ) -> EnrollOutcome:
        with self._session() as s, s.begin():
            subscriber = s.scalars(select(Subscriber).where(Subscriber.email == email)).first()
            if subscriber is None:
                subscriber = Subscriber(email=email, name=name, timezone=timezone, created_at=now)
                s.add(subscriber)
                s.flush()
            else:
                if subscriber.suppressed_at is not None:
                    raise Conflict(
                        f"{email} is suppressed ({subscriber.suppressed_reason or 'no reason'}); "
                        "run `drip unsuppress` first if that was a mistake."
                    )
                if subscriber.unsubscribed_at is not None:
                    if source == "manual":
                        raise Conflict(
                            f"{email} unsubscribed on {subscriber.unsubscribed_at:%Y-%m-%d}; "
                            "they must opt in or buy again before drip emails them."
                        )
                    subscriber.unsubscribed_at = None  # a fresh opt-in or purchase
                if name and not subscriber.name:
                    subscriber.name = name
            existing = s.scalars(
                select(Enrollment)
                .where(Enrollment.subscriber_id == subscriber.id,
                       Enrollment.sequence_key == sequence_key)
                .order_by(Enrollment.cycle.desc())
            ).first()
            if consent is not None:
                s.add(Consent(
                    subscriber_id=subscriber.id, sequence_key=sequence_key,
                    source=consent.source, text_version=consent.text_version, ip=consent.ip,
                    user_agent=consent.user_agent, created_at=now,
                    confirmed_at=consent.confirmed_at, details=consent.details,
                ))
            if existing is not None:
                return EnrollOutcome(False, subscriber.id, existing.id, existing.state)
            enrollment = Enrollment(
                subscriber_id=subscriber.id, sequence_key=sequence_key, cycle=1,
                state="active", source=source, enrolled_at=now,
            )
            s.add(enrollment)
            s.flush()
            s.add(Delivery(
                enrollment_id=enrollment.id, subscriber_id=subscriber.id,
                sequence_key=sequence_key, seq_no=1, step_key=first_step, variant="main",
                state="scheduled", due_at=first_due_at, window_end_at=first_window_end_at,
                attempts=0, created_at=now,
            ))
            return EnrollOutcome(True, subscriber.id, enrollment.id, "active")

    def subscriber_id(self, email: str) -> int:
        with self._session() as s:
            found = s.scalar(select(Subscriber.id).where(Subscriber.email == email))
        if found is None:
            raise NotFound(f"No subscriber has the address {email}.")
        return found

    # --- dispatch ------------------------------------------------------------------------

    def paused_scopes(self) -> set[str]:
        with self._session() as s:
            return set(s.scalars(select(Pause.scope)))

    def expire_leases(self, now: datetime) -> list[WentOut]:
        """Return expired claims to the queue; mark expired in-flight sends unknown.

        A claim that expired was never handed to the provider, so it is safe to send
        again. A send whose lease expired may have reached the provider, so it is never
        re-sent on its own: it becomes unknown, and its enrollment moves on.
        """
        with self._session() as s, s.begin():
            s.execute(
                update(Delivery)
                .where(Delivery.state == "claimed", Delivery.lease_until < now)
                .values(state="scheduled", claimed_by=None, lease_until=None)
            )
            rows = s.execute(
                update(Delivery)
                .where(Delivery.state == "sending", Delivery.lease_until < now)
                .values(
                    state="unknown", lease_until=None, finished_at=now,
                    last_error="The worker stopped after handing this email to the provider "
                    "and before recording the answer, so it may or may not have gone out.",
                )
                .returning(Delivery.id)
            ).scalars().all()
            return self._went_out(s, list(rows), now)

    def missed_windows(self, now: datetime, limit: int) -> list[MissedWindow]:
        """Scheduled deliveries whose send window closed before they could go out."""
        with self._session() as s:
            rows = s.execute(
                select(Delivery.id, Delivery.sequence_key, Subscriber.timezone)
                .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                .where(Delivery.state == "scheduled", Delivery.window_end_at <= now)
                .limit(limit)
            ).all()
        return [MissedWindow(r[0], r[1], r[2]) for r in rows]

    def move_due(self, moves: Sequence[tuple[int, datetime, datetime | None]]) -> None:
        if not moves:
            return
        with self._session() as s, s.begin():
            s.connection().execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.id == bindparam("b_id"),
                       DELIVERIES.c.state == "scheduled")
                .values(due_at=bindparam("b_due"), window_end_at=bindparam("b_end")),
                [{"b_id": i, "b_due": d, "b_end": e} for i, d, e in moves],
            )

    def claim_due(
        self,
        now: datetime,
        limit: int,
        worker: str,
        lease_until: datetime,
        skip_sequences: Iterable[str] = (),
    ) -> list[ClaimedDelivery]:
        """Claim up to `limit` due deliveries for this worker, in one statement.

        On PostgreSQL the rows are picked FOR UPDATE SKIP LOCKED, so concurrent
        workers never claim the same row; SQLite has a single writer at a time.
        """
        t = DELIVERIES
        conditions = [
            t.c.state == "scheduled",
            t.c.due_at <= now,
            or_(t.c.window_end_at.is_(None), t.c.window_end_at > now),
        ]
        skipped = list(skip_sequences)
        if skipped:
            conditions.append(t.c.sequence_key.not_in(skipped))
        due = (
            select(t.c.id)
            .where(*conditions)
            .order_by(t.c.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte("due")
        )
        claim = (
            update(t)
            .where(t.c.id == due.c.id)
            .values(state="claimed", claimed_by=worker, lease_until=lease_until)
            .returning(t.c.id)
        )
        with self._session() as s, s.begin():
            ids = list(s.execute(claim).scalars())
            if not ids:
                return []
            rows = s.execute(
                select(
                    t.c.id, t.c.enrollment_id, t.c.subscriber_id, t.c.sequence_key, t.c.seq_no,
                    t.c.step_key, t.c.variant, t.c.nudge, t.c.due_at, t.c.attempts,
                    Subscriber.email, Subscriber.name, Subscriber.timezone,
                    Enrollment.enrolled_at, Enrollment.state,
                    Subscriber.unsubscribed_at, Subscriber.suppressed_at,
                )
                .join(Subscriber, Subscriber.id == t.c.subscriber_id)
                .join(Enrollment, Enrollment.id == t.c.enrollment_id)
                .where(t.c.id.in_(ids))
                .order_by(t.c.due_at, t.c.id)
            ).all()
        return [
            ClaimedDelivery(
                id=r[0], enrollment_id=r[1], subscriber_id=r[2], sequence_key=r[3], seq_no=r[4],
                step_key=r[5], variant=r[6], nudge=r[7], due_at=as_utc(r[8]), attempts=r[9],
                email=r[10], name=r[11], timezone=r[12], enrolled_at=as_utc(r[13]),
                enrollment_state=r[14], unsubscribed=r[15] is not None,
                suppressed=r[16] is not None,
            )
            for r in rows
        ]

    def mark_sending(self, ids: Sequence[int], worker: str, now: datetime,
                     lease_until: datetime) -> None:
        """Commit that these emails are about to be handed to the provider."""
        if not ids:
            return
        with self._session() as s, s.begin():
            s.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids), Delivery.state == "claimed",
                       Delivery.claimed_by == worker)
                .values(state="sending", sending_at=now, lease_until=lease_until,
                        attempts=Delivery.attempts + 1)
            )

    def release(self, ids: Sequence[int], worker: str) -> int:
        """Give back claims that were never handed to the provider."""
        if not ids:
            return 0
        with self._session() as s, s.begin():
            result = s.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids), Delivery.claimed_by == worker,
                       Delivery.state.in_(("claimed", "sending")))
                .values(state="scheduled", claimed_by=None, lease_until=None)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def record_outcomes(self, outcomes: Sequence[Outcome], now: datetime) -> list[WentOut]:
        """Write back what happened to each delivery; return those whose enrollment moves on."""
        if not outcomes:
            return []
        t = DELIVERIES
        rows: list[dict[str, Any]] = []
        for o in outcomes:
            final = o.state in FINAL_STATES
            rows.append({
                "b_id": o.delivery_id,
                "b_state": o.state,
                "b_provider": o.provider,
                "b_message_id": o.message_id,
                "b_error": o.error,
                "b_due": o.retry_at,
                "b_hash": o.content_hash,
                "b_sent": now if o.state == "sent" else None,
                "b_finished": now if final else None,
            })
        with self._session() as s, s.begin():
            conn = s.connection()
            conn.execute(
                update(t)
                .where(t.c.id == bindparam("b_id"),
                       t.c.state.in_(("claimed", "sending", "unknown")))
                .values(
                    state=bindparam("b_state"),
                    provider=func.coalesce(bindparam("b_provider"), t.c.provider),
                    provider_message_id=func.coalesce(bindparam("b_message_id"),
                                                      t.c.provider_message_id),
                    last_error=bindparam("b_error"),
                    due_at=func.coalesce(bindparam("b_due"), t.c.due_at),
                    content_hash=func.coalesce(bindparam("b_hash"), t.c.content_hash),
                    sent_at=func.coalesce(bindparam("b_sent"), t.c.sent_at),
                    finished_at=bindparam("b_finished"),
                    claimed_by=None,
                    lease_until=None,
                ),
                rows,
            )
            decided = [o for o in outcomes if o.variant is not None or o.nudge is not None]
            if decided:
                conn.execute(
                    update(t).where(t.c.id == bindparam("b_id"))
                    .values(variant=bindparam("b_variant"), nudge=bindparam("b_nudge")),
                    [{"b_id": o.delivery_id, "b_variant": o.variant or "main",
                      "b_nudge": o.nudge} for o in decided],
                )
            moved_on = [o.delivery_id for o in outcomes if o.state in ("sent", "unknown")]
            return self._went_out(s, moved_on, now)

    def _went_out(self, s: Session, ids: list[int], now: datetime) -> list[WentOut]:
        if not ids:
            return []
        t = DELIVERIES
        rows = s.execute(
            select(t.c.id, t.c.enrollment_id, t.c.subscriber_id, t.c.sequence_key, t.c.seq_no,
                   t.c.step_key, t.c.variant, Subscriber.timezone,
                   func.coalesce(t.c.sent_at, t.c.sending_at, t.c.due_at))
            .join(Subscriber, Subscriber.id == t.c.subscriber_id)
            .where(t.c.id.in_(ids))
        ).all()
        return [WentOut(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], as_utc(r[8]))
                for r in rows]

    def plan(self, planned: Sequence[PlannedDelivery], finished: Sequence[int],
             now: datetime) -> int:
        """Insert next deliveries (a second plan of the same occurrence is ignored) and
        mark enrollments with nothing left to send as completed. Returns rows inserted."""
        inserted = 0
        with self._session() as s, s.begin():
            if planned:
                statement = self._insert(Delivery).on_conflict_do_nothing(
                    index_elements=["enrollment_id", "seq_no"]
                )
                result = s.connection().execute(statement, [
                    {"enrollment_id": p.enrollment_id, "subscriber_id": p.subscriber_id,
                     "sequence_key": p.sequence_key, "seq_no": p.seq_no,
                     "step_key": p.step_key, "variant": p.variant, "nudge": p.nudge,
                     "state": "scheduled", "due_at": p.due_at,
                     "window_end_at": p.window_end_at, "attempts": 0, "created_at": now}
                    for p in planned
                ])
                inserted = max(int(result.rowcount), 0)
            if finished:
                s.execute(
                    update(Enrollment)
                    .where(Enrollment.id.in_(finished), Enrollment.state == "active")
                    .values(state="completed", finished_at=now)
                )
        return inserted

    # --- liveness and leases -------------------------------------------------------------

    def beat(self, worker: str, now: datetime, started_at: datetime, detail: str) -> None:
        statement = self._insert(Heartbeat).values(
            worker=worker, beat_at=now, started_at=started_at, detail=detail
        )
        statement = statement.on_conflict_do_update(
            index_elements=["worker"],
            set_={"beat_at": statement.excluded.beat_at, "detail": statement.excluded.detail},
        )
        with self._session() as s, s.begin():
            s.execute(statement)

    def acquire_lease(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Take or renew a named lease; True if `holder` now holds it."""
        statement = self._insert(Lease).values(name=name, holder=holder, expires_at=now + ttl)
        statement = statement.on_conflict_do_update(
            index_elements=["name"],
            set_={"holder": statement.excluded.holder,
                  "expires_at": statement.excluded.expires_at},
            where=or_(Lease.expires_at < now, Lease.holder == holder),
        )
        with self._session() as s, s.begin():
            s.execute(statement)
            current = s.scalar(select(Lease.holder).where(Lease.name == name))
        return current == holder

    def release_lease(self, name: str, holder: str) -> None:
        with self._session() as s, s.begin():
            s.execute(
                delete(Lease).where(and_(Lease.name == name, Lease.holder == holder))
            )

    def lease_holder(self, name: str, now: datetime) -> str | None:
        with self._session() as s:
            row = s.execute(
                select(Lease.holder, Lease.expires_at).where(Lease.name == name)
            ).first()
        if row is None or as_utc(row[1]) < now:
            return None
        return str(row[0])

    # --- reading -------------------------------------------------------------------------

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

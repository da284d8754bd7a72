"""Queries that change whether someone may be emailed: unsubscribe, suppress, pause, resume."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, or_, select, update

from drip.clock import as_utc
from drip.errors import NotFound
from drip.models import Delivery, Enrollment, Event, Pause, Subscriber
from drip.store._base import DELIVERIES, Announcement, StoreBase, rowcount

PENDING = ("scheduled", "claimed")


@dataclass(frozen=True)
class SubscriberRow:
    id: int
    email: str
    name: str
    timezone: str
    created_at: datetime
    unsubscribed_at: datetime | None
    suppressed_at: datetime | None
    suppressed_reason: str | None
    offers_opt_out_at: datetime | None

    @property
    def state(self) -> str:
        if self.suppressed_at:
            return "suppressed"
        if self.unsubscribed_at:
            return "unsubscribed"
        return "active"


@dataclass(frozen=True)
class PendingDelivery:
    """A delivery waiting to go out (or held), with what is needed to move it in time."""

    delivery_id: int
    enrollment_id: int
    sequence_key: str
    timezone: str
    due_at: datetime
    window_end_at: datetime | None
    held_since: datetime | None


def _maybe_utc(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


def _subscriber_row(row: Subscriber) -> SubscriberRow:
    utc = _maybe_utc
    return SubscriberRow(row.id, row.email, row.name, row.timezone, as_utc(row.created_at),
                         utc(row.unsubscribed_at), utc(row.suppressed_at),
                         row.suppressed_reason, utc(row.offers_opt_out_at))


class LifecycleQueries(StoreBase):
    """Stopping, holding and releasing a subscriber's email."""

    def subscriber_by_email(self, email: str) -> SubscriberRow:
        with self._session() as s:
            row = s.scalars(select(Subscriber).where(Subscriber.email == email)).first()
            if row is None:
                raise NotFound(f"No subscriber has the address {email}.")
            return _subscriber_row(row)

    def subscriber_by_id(self, subscriber_id: int) -> SubscriberRow:
        with self._session() as s:
            row = s.get(Subscriber, subscriber_id)
            if row is None:
                raise NotFound(f"No subscriber has the id {subscriber_id}.")
            return _subscriber_row(row)

    def set_unsubscribed(self, subscriber_id: int, now: datetime, source: str) -> tuple[bool, int]:
        """Unsubscribe from everything: stop enrollments, cancel every pending delivery.

        Returns (was already unsubscribed, deliveries cancelled).
        """
        with self._session() as s, s.begin():
            subscriber = s.get(Subscriber, subscriber_id, with_for_update=True)
            if subscriber is None:
                raise NotFound(f"No subscriber has the id {subscriber_id}.")
            already = subscriber.unsubscribed_at is not None
            if not already:
                subscriber.unsubscribed_at = now
            s.execute(
                update(Enrollment)
                .where(Enrollment.subscriber_id == subscriber_id,
                       Enrollment.state.in_(("active", "paused", "suppressed")))
                .values(state="unsubscribed", finished_at=now,
                        stop_reason=f"unsubscribed ({source})")
            )
            cancelled = _cancel_pending(s, Delivery.subscriber_id == subscriber_id, now,
                                        f"The subscriber unsubscribed ({source}).")
            if not already:
                s.add(Event(kind="unsubscribed", subscriber_id=subscriber_id,
                            email=subscriber.email, occurred_at=now, received_at=now,
                            detail=source))
                self._announce(s, [Announcement("unsubscribed", subscriber_id, {
                    "email": subscriber.email, "source": source})], now)
            return already, int(cancelled)

    def leave_enrollment(self, subscriber_id: int, enrollment_id: int, now: datetime,
                         source: str) -> tuple[bool, int]:
        """Stop one enrollment of a subscriber (they left that program only) and cancel its
        pending email; the subscriber stays subscribed. Returns (changed, cancelled)."""
        with self._session() as s, s.begin():
            enrollment = s.get(Enrollment, enrollment_id, with_for_update=True)
            if enrollment is None or enrollment.subscriber_id != subscriber_id:
                raise NotFound(f"No enrollment {enrollment_id} of subscriber {subscriber_id}.")
            if enrollment.state not in ("active", "paused", "suppressed"):
                return False, 0
            enrollment.state = "unsubscribed"
            enrollment.finished_at = now
            enrollment.stop_reason = f"left this program ({source})"
            cancelled = _cancel_pending(s, Delivery.enrollment_id == enrollment_id, now,
                                        f"The subscriber left this program ({source}).")
            s.add(Event(kind="left_program", subscriber_id=subscriber_id, occurred_at=now,
                        received_at=now, detail=f"{enrollment.sequence_key} ({source})"))
            return True, int(cancelled)

    def set_offers_opt_out(self, subscriber_id: int, now: datetime, source: str) -> bool:
        """Stop nudges toward offers, keep the program. Returns False if already opted out."""
        with self._session() as s, s.begin():
            subscriber = s.get(Subscriber, subscriber_id)
            if subscriber is None:
                raise NotFound(f"No subscriber has the id {subscriber_id}.")
            if subscriber.offers_opt_out_at is not None:
                return False
            subscriber.offers_opt_out_at = now
            s.add(Event(kind="offers_opt_out", subscriber_id=subscriber_id,
                        email=subscriber.email, occurred_at=now, received_at=now,
                        detail=source))
            return True

    def hold_enrollments(self, subscriber_id: int, now: datetime, *, state: str, reason: str,
             sequence_key: str | None = None) -> int:
        """Hold a subscriber's active enrollments (paused or suppressed) and their pending email.

        Returns how many enrollments were held.
        """
        with self._session() as s, s.begin():
            if state == "suppressed":
                s.execute(update(Subscriber).where(Subscriber.id == subscriber_id)
                          .values(suppressed_at=now, suppressed_reason=reason))
                s.add(Event(kind="suppressed", subscriber_id=subscriber_id, occurred_at=now,
                            received_at=now, detail=reason))
                email = s.scalar(select(Subscriber.email).where(Subscriber.id == subscriber_id))
                self._announce(s, [Announcement("suppressed", subscriber_id, {
                    "email": email, "reason": reason})], now)
            conditions = [Enrollment.subscriber_id == subscriber_id]
            if sequence_key:
                conditions.append(Enrollment.sequence_key == sequence_key)
            # Only active enrollments: a paused one stays paused (its email is held already),
            # so lifting a suppression never lifts an operator's pause or a coach's hold.
            ids = list(s.execute(
                update(Enrollment).where(*conditions, Enrollment.state == "active")
                .values(state=state, paused_at=now, stop_reason=reason)
                .returning(Enrollment.id)
            ).scalars())
            if ids:
                s.execute(
                    update(Delivery)
                    .where(Delivery.enrollment_id.in_(ids), Delivery.state.in_(PENDING))
                    .values(state="held", claimed_by=None, lease_until=None)
                )
            if state == "paused":
                self._announce_enrollments(s, "paused", ids, now, reason)
            return len(ids)

    def release_enrollments(self, subscriber_id: int, *, state: str,
                sequence_key: str | None = None) -> list[PendingDelivery]:
        """Undo `hold_enrollments`: reactivate enrollments; return their held deliveries."""
        with self._session() as s, s.begin():
            if state == "suppressed":
                s.execute(update(Subscriber).where(Subscriber.id == subscriber_id)
                          .values(suppressed_at=None, suppressed_reason=None))
            conditions = [Enrollment.subscriber_id == subscriber_id, Enrollment.state == state]
            if sequence_key:
                conditions.append(Enrollment.sequence_key == sequence_key)
            rows = s.execute(
                select(Enrollment.id, Enrollment.paused_at).where(*conditions)
            ).all()
            if not rows:
                return []
            held_since = {r[0]: r[1] for r in rows}
            s.execute(update(Enrollment).where(Enrollment.id.in_(list(held_since)))
                      .values(state="active", paused_at=None, stop_reason=None))
            pending = s.execute(
                select(Delivery.id, Delivery.enrollment_id, Delivery.sequence_key,
                       Subscriber.timezone, Delivery.due_at, Delivery.window_end_at)
                .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                .where(Delivery.enrollment_id.in_(list(held_since)), Delivery.state == "held")
            ).all()
            return [PendingDelivery(r[0], r[1], r[2], r[3], as_utc(r[4]),
                                    as_utc(r[5]) if r[5] else None,
                                    _maybe_utc(held_since[r[1]]))
                    for r in pending]

    def pending_deliveries(self, *, enrollment_id: int | None = None,
                           sequence_key: str | None = None) -> list[PendingDelivery]:
        query = (
            select(Delivery.id, Delivery.enrollment_id, Delivery.sequence_key,
                   Subscriber.timezone, Delivery.due_at, Delivery.window_end_at)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.state == "scheduled")
        )
        if enrollment_id is not None:
            query = query.where(Delivery.enrollment_id == enrollment_id)
        if sequence_key is not None:
            query = query.where(Delivery.sequence_key == sequence_key)
        with self._session() as s:
            rows = s.execute(query).all()
        return [PendingDelivery(r[0], r[1], r[2], r[3], as_utc(r[4]),
                                as_utc(r[5]) if r[5] else None, None) for r in rows]

    def reschedule(self, moves: Sequence[tuple[int, datetime, datetime | None]]) -> int:
        """Set new due times on scheduled or held deliveries, making them scheduled."""
        if not moves:
            return 0
        with self._session() as s, s.begin():
            return _move(s.connection(), moves)

    def reschedule_once(self, marker: str, enrollment_id: int,
                        moves: Sequence[tuple[int, datetime, datetime | None]],
                        now: datetime, kind: str = "paused_a_week") -> int | None:
        """`reschedule`, at most once per `marker` (an event id such as "pause:7:42"), in one
        transaction with the marker (an event of `kind`); None if that marker was used."""
        with self._session() as s, s.begin():
            subscriber_id = s.scalar(select(Enrollment.subscriber_id)
                                     .where(Enrollment.id == enrollment_id))
            marked = s.execute(self._insert(Event).values(
                provider_event_id=marker, kind=kind, subscriber_id=subscriber_id,
                occurred_at=now, received_at=now, detail=f"enrollment {enrollment_id}",
            ).on_conflict_do_nothing(index_elements=["provider_event_id"]))
            if not rowcount(marked):
                return None
            return _move(s.connection(), moves) if moves else 0

    def used_markers(self, markers: Sequence[str]) -> set[str]:
        """Which of these once-only markers (`reschedule_once`) have been used."""
        if not markers:
            return set()
        with self._session() as s:
            found = s.scalars(select(Event.provider_event_id)
                              .where(Event.provider_event_id.in_(list(markers)))).all()
        return {str(m) for m in found}

    def latest_sent_delivery(self, enrollment_id: int) -> int | None:
        """The id of the last email that went (or may have gone) to an enrollment."""
        with self._session() as s:
            found = s.scalar(select(Delivery.id).where(
                Delivery.enrollment_id == enrollment_id,
                or_(Delivery.state == "sent", Delivery.state == "unknown",
                    Delivery.state == "sending")).order_by(Delivery.id.desc()).limit(1))
        return int(found) if found is not None else None

    def enrollment_owner(self, enrollment_id: int) -> tuple[int, str, str]:
        """(subscriber id, sequence key, state) of an enrollment."""
        with self._session() as s:
            row = s.execute(select(Enrollment.subscriber_id, Enrollment.sequence_key,
                                   Enrollment.state)
                            .where(Enrollment.id == enrollment_id)).first()
        if row is None:
            raise NotFound(f"No enrollment has the id {enrollment_id}.")
        return int(row[0]), str(row[1]), str(row[2])

    # --- sending pauses: the kill switch and per-sequence pauses ---------------------------

    def set_pause(self, scope: str, now: datetime, reason: str | None) -> bool:
        """Pause a scope ('all' or 'sequence:KEY'); False if it was already paused."""
        statement = (self._insert(Pause).values(scope=scope, paused_at=now, reason=reason)
                     .on_conflict_do_nothing(index_elements=["scope"]).returning(Pause.scope))
        with self._session() as s, s.begin():
            # RETURNING, not rowcount: an ORM insert reports rowcount -1 on psycopg
            return s.execute(statement).first() is not None

    def clear_pause(self, scope: str) -> datetime | None:
        """Lift a pause; returns when it began, or None if the scope was not paused."""
        with self._session() as s, s.begin():
            paused_at = s.scalar(select(Pause.paused_at).where(Pause.scope == scope))
            if paused_at is None:
                return None
            s.execute(delete(Pause).where(Pause.scope == scope))
            return as_utc(paused_at)

    def pauses(self) -> list[tuple[str, datetime, str | None]]:
        with self._session() as s:
            rows = s.execute(select(Pause.scope, Pause.paused_at, Pause.reason)).all()
        return [(r[0], as_utc(r[1]), r[2]) for r in rows]


def _cancel_pending(session: Any, which: Any, now: datetime, why: str) -> int:
    """Cancel the pending and held deliveries `which` selects; how many."""
    return int(rowcount(session.execute(
        update(Delivery).where(which, Delivery.state.in_((*PENDING, "held")))
        .values(state="cancelled", finished_at=now, claimed_by=None, lease_until=None,
                last_error=why))))


def _move(conn: Any, moves: Sequence[tuple[int, datetime, datetime | None]]) -> int:
    """New due times for scheduled or held deliveries, which become scheduled."""
    t = DELIVERIES
    result = conn.execute(
        update(t)
        .where(t.c.id == bindparam("b_id"), or_(t.c.state == "scheduled", t.c.state == "held"))
        .values(state="scheduled", due_at=bindparam("b_due"), window_end_at=bindparam("b_end")),
        [{"b_id": i, "b_due": d, "b_end": e} for i, d, e in moves],
    )
    return rowcount(result)

"""Queries behind the operator's commands: status, sends, one person's timeline, steering."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from drip.clock import as_utc
from drip.errors import Conflict, NotFound
from drip.models import (
    CheckpointAnswer,
    Consent,
    Delivery,
    Enrollment,
    Event,
    Heartbeat,
    Pause,
    Purchase,
    Subscriber,
)
from drip.store._base import DELIVERIES, StoreBase, pg_array, rowcount
from drip.store.lifecycle import SubscriberRow, _subscriber_row

# PostgreSQL reads and writes an import chunk's rows as one array per column (see
# `pg_array`): a few short statements the driver converts once, instead of thousands of
# VALUES rows whose SQL text it would parse again for every chunk. Lists are joined with
# `unnest`, never compared with `= ANY`: on tables without statistics (a first import) the
# planner chose a sequential scan comparing every row with every address.
_PG_IMPORT_SUBSCRIBERS = text("""
    INSERT INTO subscribers (email, name, timezone, created_at, unsubscribed_at,
                             suppressed_at, suppressed_reason)
    SELECT v.email, v.name, v.timezone, v.created_at, v.unsubscribed_at, v.suppressed_at,
           v.suppressed_reason
      FROM unnest(CAST(:emails AS text[]), CAST(:names AS text[]), CAST(:zones AS text[]),
                  CAST(:created_ats AS timestamptz[]), CAST(:unsubscribed_ats AS timestamptz[]),
                  CAST(:suppressed_ats AS timestamptz[]), CAST(:reasons AS text[]))
           AS v(email, name, timezone, created_at, unsubscribed_at, suppressed_at,
                suppressed_reason)
        ON CONFLICT (email) DO NOTHING
    RETURNING id, email
""")
_PG_IMPORT_PEOPLE = text("""
    SELECT s.id, s.email, s.unsubscribed_at, s.suppressed_at
      FROM unnest(CAST(:emails AS text[])) AS v(email)
      JOIN subscribers AS s ON s.email = v.email
""")
_PG_IMPORT_ENROLLED = text("""
    SELECT e.subscriber_id
      FROM unnest(CAST(:subscriber_ids AS bigint[])) AS v(subscriber_id)
      JOIN enrollments AS e ON e.subscriber_id = v.subscriber_id
     WHERE e.sequence_key = :sequence_key
""")
_PG_IMPORT_ENROLLMENTS = text("""
    INSERT INTO enrollments (subscriber_id, sequence_key, cycle, state, source, enrolled_at,
                             paused_at, finished_at, stop_reason)
    SELECT v.subscriber_id, :sequence_key, 1, v.state, 'import', :now, v.paused_at,
           v.finished_at, v.stop_reason
      FROM unnest(CAST(:subscriber_ids AS bigint[]), CAST(:states AS text[]),
                  CAST(:paused_ats AS timestamptz[]), CAST(:finished_ats AS timestamptz[]),
                  CAST(:stop_reasons AS text[]))
           AS v(subscriber_id, state, paused_at, finished_at, stop_reason)
        ON CONFLICT (subscriber_id, sequence_key, cycle) DO NOTHING
    RETURNING subscriber_id, id
""")
_PG_IMPORT_CONSENTS = text("""
    INSERT INTO consents (subscriber_id, sequence_key, source, created_at, details, ip,
                          confirmed_at)
    SELECT v.subscriber_id, :sequence_key, 'import', v.created_at, v.details, v.ip,
           v.confirmed_at
      FROM unnest(CAST(:subscriber_ids AS bigint[]), CAST(:created_ats AS timestamptz[]),
                  CAST(:details AS json[]), CAST(:ips AS text[]),
                  CAST(:confirmed_ats AS timestamptz[]))
           AS v(subscriber_id, created_at, details, ip, confirmed_at)
""")
_PG_IMPORT_DELIVERIES = text("""
    INSERT INTO deliveries (enrollment_id, subscriber_id, sequence_key, seq_no, step_key,
                            variant, state, due_at, window_end_at, attempts, created_at)
    SELECT v.enrollment_id, v.subscriber_id, :sequence_key, 1, v.step_key, 'main',
           v.state, v.due_at, v.window_end_at, 0, :now
      FROM unnest(CAST(:enrollment_ids AS bigint[]), CAST(:subscriber_ids AS bigint[]),
                  CAST(:steps AS text[]), CAST(:due_ats AS timestamptz[]),
                  CAST(:window_end_ats AS timestamptz[]), CAST(:states AS text[]))
           AS v(enrollment_id, subscriber_id, step_key, due_at, window_end_at, state)
""")

#: The states `drip status` lists, in the order a delivery moves through them.
STATUS_STATES = ("scheduled", "claimed", "sending", "sent", "failed", "unknown", "held",
                 "cancelled")
SUBSCRIBER_STATES = ("active", "paused", "unsubscribed", "suppressed")


def pairs(rows: Any) -> dict[Any, Any]:
    """{first column: second column} of two-column rows."""
    return {r[0]: r[1] for r in rows}


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
    offset: int = 0


@dataclass(frozen=True)
class ConsentRow:
    """A consent record as stored, every column of it (the evidence behind each email)."""

    id: int
    sequence_key: str | None
    source: str
    created_at: datetime
    confirmed_at: datetime | None
    ip: str | None
    user_agent: str | None
    text_version: str | None
    details: dict[str, Any] | None


@dataclass(frozen=True)
class EnrollmentRecord:
    id: int
    sequence_key: str
    cycle: int
    state: str
    source: str
    enrolled_at: datetime
    paused_at: datetime | None
    finished_at: datetime | None
    stop_reason: str | None


@dataclass(frozen=True)
class EventRow:
    kind: str
    delivery_id: int | None
    occurred_at: datetime
    detail: str | None


@dataclass(frozen=True)
class AnswerRow:
    delivery_id: int
    step_key: str
    answer: str
    answered_at: datetime


@dataclass(frozen=True)
class PurchaseRecord:
    source: str
    order_id: str
    product: str
    purchased_at: datetime


@dataclass(frozen=True)
class Timeline:
    """Everything drip knows about one person."""

    subscriber: SubscriberRow
    consents: list[ConsentRow]
    enrollments: list[EnrollmentRecord]
    deliveries: list[SendRow]
    events: list[EventRow]
    answers: list[AnswerRow]
    purchases: list[PurchaseRecord]


def _send_columns() -> tuple[Any, ...]:
    t = DELIVERIES
    return (t.c.id, Subscriber.email, Subscriber.timezone, t.c.sequence_key, t.c.seq_no,
            t.c.step_key, t.c.variant, t.c.nudge, t.c.state, t.c.due_at, t.c.sent_at,
            t.c.finished_at, t.c.attempts, t.c.provider, t.c.provider_message_id,
            t.c.last_error)


def _send_row(r: Any) -> SendRow:
    return SendRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], as_utc(r[9]),
                   _utc(r[10]), _utc(r[11]), r[12], r[13], r[14], r[15])


IMPORT_CHUNK = 2000

#: Provider event kinds, in drip's vocabulary (drip.providers.base.EventKind): the webhook
#: maps SendGrid's "open" and "click" to these before storing them.
DELIVERED_EVENTS = ("delivered",)
OPEN_EVENTS = ("opened",)
CLICK_EVENTS = ("clicked",)


@dataclass(frozen=True)
class StepCounts:
    step_key: str
    variant: str
    sent: int
    delivered: int
    opened: int
    clicked: int
    passed: int
    not_yet: int


@dataclass(frozen=True)
class NudgeCounts:
    offer: str
    shown: int
    click_payloads: list[dict[str, Any] | None]  # one per click event, to match the offer URL
    conversions: int
    people: int  # distinct subscribers it was nudged to: an offer may come round again


@dataclass(frozen=True)
class ImportPerson:
    """One person to enroll from an import, with their first email already planned."""

    email: str
    name: str
    timezone: str
    consented_at: datetime
    first_step: str
    due_at: datetime
    window_end_at: datetime | None
    details: dict[str, Any] = field(default_factory=dict)
    #: "active", "paused" (enrolled, first email held), or "unsubscribed" / "suppressed":
    #: the person left elsewhere, so they are recorded as such and never enrolled
    state: str = "active"
    left_at: datetime | None = None
    reason: str | None = None
    was_in_sequence: bool = False  # a left person's stopped enrollment keeps that on record
    ip: str | None = None  # the consent's evidence from the tool they came from
    confirmed_at: datetime | None = None

    def subscriber_row(self, now: datetime) -> dict[str, Any]:
        """The subscribers row of someone new: joined when they consented, left if they did."""
        left = self.left_at or now
        return {"email": self.email, "name": self.name, "timezone": self.timezone,
                "created_at": self.consented_at,
                "unsubscribed_at": left if self.state == "unsubscribed" else None,
                "suppressed_at": left if self.state == "suppressed" else None,
                "suppressed_reason": self.reason if self.state == "suppressed" else None}

    def enrollment_row(self, now: datetime) -> dict[str, Any]:
        left = self.state in ("unsubscribed", "suppressed")
        return {"state": "unsubscribed" if left else self.state,
                "paused_at": now if self.state == "paused" else None,
                "finished_at": (self.left_at or now) if left else None,
                "stop_reason": (f"{self.state} before the import" if left
                                else "paused before the import" if self.state == "paused"
                                else None)}


@dataclass(frozen=True)
class ImportResult:
    """What an import did (or, in a dry run, would do)."""

    enrolled: int = 0
    new_subscribers: int = 0
    already_enrolled: int = 0
    unsubscribed: int = 0
    suppressed: int = 0
    paused: int = 0  # of those enrolled, enrolled paused


def _first_state(person: ImportPerson) -> str:
    """A paused person's first email is held until they are resumed, as a pause holds it."""
    return "held" if person.state == "paused" else "scheduled"


def _why_not_active(enrollment: str) -> str:
    """Why a failed email of this enrollment is not retried, and what would undo that:
    `drip resume` lifts only a pause (it refuses a suppressed address)."""
    if enrollment == "paused":
        return "its enrollment is paused; `drip resume` it first"
    if enrollment == "suppressed":
        return "its address is suppressed; `drip unsuppress` it first"
    return f"its enrollment is {enrollment}, so nothing of it is sent again"


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
            # a sequence paused on purpose is not lag; the kill switch is (nothing goes out)
            held_back = select(func.substr(Pause.scope, len("sequence:") + 1)).where(
                Pause.scope.like("sequence:%"))
            oldest = s.scalar(select(func.min(t.c.due_at)).where(
                pending, t.c.due_at <= now, t.c.sequence_key.not_in(held_back)))
            people_counts: dict[str, int] = pairs(s.execute(
                select(people.c.state, func.count()).group_by(people.c.state)
            ).all())
            beats = s.execute(
                select(Heartbeat.worker, Heartbeat.beat_at, Heartbeat.started_at,
                       Heartbeat.detail).order_by(Heartbeat.beat_at.desc()).limit(100)
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

    def sends(self, where: SendFilter) -> list[SendRow]:
        """Deliveries matching the filter, newest first (by when they last did something)."""
        t = DELIVERIES
        moment = func.coalesce(t.c.sent_at, t.c.finished_at, t.c.due_at)
        query = (select(*_send_columns()).join(Subscriber, Subscriber.id == t.c.subscriber_id)
                 .order_by(moment.desc(), t.c.id.desc()))
        if where.states:
            query = query.where(t.c.state.in_(list(where.states)))
        if where.sequence_key:
            query = query.where(t.c.sequence_key == where.sequence_key)
        if where.step_key:
            query = query.where(t.c.step_key == where.step_key)
        if where.email:
            query = query.where(Subscriber.email == where.email)
        if where.since:
            query = query.where(moment >= where.since)
        if where.until:
            query = query.where(moment < where.until)
        if where.limit:
            query = query.limit(where.limit)
        if where.offset:
            query = query.offset(where.offset)
        with self._session() as s:
            return [_send_row(r) for r in s.execute(query).all()]

    def timeline(self, email: str) -> Timeline:
        """One person's consents, enrollments, deliveries, events, answers and purchases."""
        t = DELIVERIES
        with self._session() as s:
            person = s.scalars(select(Subscriber).where(Subscriber.email == email)).first()
            if person is None:
                raise NotFound(f"No subscriber has the address {email}.")
            sid = person.id
            consents = [
                ConsentRow(c.id, c.sequence_key, c.source, as_utc(c.created_at),
                           _utc(c.confirmed_at), c.ip, c.user_agent, c.text_version,
                           c.details)
                for c in s.scalars(select(Consent).where(Consent.subscriber_id == sid)
                                   .order_by(Consent.created_at, Consent.id))
            ]
            enrollments = [
                EnrollmentRecord(e.id, e.sequence_key, e.cycle, e.state, e.source,
                                 as_utc(e.enrolled_at), _utc(e.paused_at),
                                 _utc(e.finished_at), e.stop_reason)
                for e in s.scalars(select(Enrollment).where(Enrollment.subscriber_id == sid)
                                   .order_by(Enrollment.enrolled_at, Enrollment.id))
            ]
            deliveries = [_send_row(r) for r in s.execute(
                select(*_send_columns()).join(Subscriber, Subscriber.id == t.c.subscriber_id)
                .where(t.c.subscriber_id == sid)
                .order_by(t.c.enrollment_id, t.c.seq_no)
            ).all()]
            events = [
                EventRow(r[0], r[1], as_utc(r[2]), r[3]) for r in s.execute(
                    select(Event.kind, Event.delivery_id, Event.occurred_at, Event.detail)
                    .where(or_(Event.subscriber_id == sid, Event.delivery_id.in_(
                        select(t.c.id).where(t.c.subscriber_id == sid))))
                    .order_by(Event.occurred_at, Event.id)
                ).all()
            ]
            answers = [
                AnswerRow(r[0], r[1], r[2], as_utc(r[3])) for r in s.execute(
                    select(CheckpointAnswer.delivery_id, CheckpointAnswer.step_key,
                           CheckpointAnswer.answer, CheckpointAnswer.answered_at)
                    .join(Enrollment, Enrollment.id == CheckpointAnswer.enrollment_id)
                    .where(Enrollment.subscriber_id == sid)
                    .order_by(CheckpointAnswer.answered_at)
                ).all()
            ]
            purchases = [
                PurchaseRecord(r[0], r[1], r[2], as_utc(r[3])) for r in s.execute(
                    select(Purchase.source, Purchase.order_id, Purchase.product,
                           Purchase.purchased_at)
                    .where(Purchase.subscriber_id == sid).order_by(Purchase.purchased_at)
                ).all()
            ]
            return Timeline(_subscriber_row(person), consents, enrollments, deliveries,
                            events, answers, purchases)

    # --- steering single deliveries --------------------------------------------------------

    def retry_deliveries(self, now: datetime, *, state: str,
                         ids: Sequence[int] = ()) -> tuple[list[int], list[tuple[int, str]]]:
        """Put deliveries in `state` (or just `ids`) back in the queue, due now.

        A delivery is retried only if it is the latest of its enrollment, the enrollment
        is active and nothing else of it is pending, so a retry never doubles an email.
        Returns (retried ids, [(skipped id, why)]).
        """
        t = DELIVERIES
        query = (select(t.c.id, t.c.state, t.c.enrollment_id, t.c.seq_no, t.c.subscriber_id,
                        Enrollment.state, t.c.last_error)
                 .join(Enrollment, Enrollment.id == t.c.enrollment_id))
        query = query.where(t.c.id.in_(list(ids))) if ids else query.where(t.c.state == state)
        retried: list[int] = []
        skipped: list[tuple[int, str]] = []
        with self._session() as s, s.begin():
            rows = {r[0]: r for r in s.execute(query.order_by(t.c.id)).all()}
            for missing in [i for i in ids if i not in rows]:
                raise NotFound(f"No delivery has the id {missing}.")
            for (did, current, enrollment_id, seq_no, subscriber_id, enrollment,
                 error) in rows.values():
                if current != state:
                    skipped.append((did, f"it is {current}, not {state}"))
                    continue
                if enrollment != "active":
                    skipped.append((did, _why_not_active(enrollment)))
                    continue
                other = s.scalar(select(func.count()).select_from(t).where(
                    t.c.enrollment_id == enrollment_id, t.c.id != did,
                    or_(t.c.seq_no > seq_no,
                        t.c.state.in_(("scheduled", "claimed", "sending", "held")))))
                if other:
                    skipped.append((did, "a later email of its enrollment is already planned "
                                         "or sent"))
                    continue
                # A fresh try starts with no error; the one it had stays in the event log.
                s.execute(update(Delivery).where(Delivery.id == did).values(
                    state="scheduled", due_at=now, attempts=0, finished_at=None,
                    claimed_by=None, lease_until=None, last_error=None))
                s.add(Event(kind="retried", delivery_id=did, subscriber_id=subscriber_id,
                            occurred_at=now, received_at=now,
                            detail="by an operator" + (f"; it had: {error}"[:490]
                                                       if error else "")))
                retried.append(did)
        return retried, skipped

    def resolve_unknown(self, ids: Sequence[int], now: datetime, *, resend: bool) -> int:
        """Settle unknown deliveries: they went out (`sent`), or send them again.

        All of `ids` are checked before anything changes; returns how many were resolved.
        """
        t = DELIVERIES
        with self._session() as s, s.begin():
            rows = {r[0]: r for r in s.execute(
                select(t.c.id, t.c.state, t.c.enrollment_id, t.c.seq_no, t.c.subscriber_id,
                       Enrollment.state)
                .join(Enrollment, Enrollment.id == t.c.enrollment_id)
                .where(t.c.id.in_(list(ids)))).all()}
            follow_ups: list[int] = []
            for did in ids:
                if did not in rows:
                    raise NotFound(f"No delivery has the id {did}.")
                _, current, enrollment_id, seq_no, _, enrollment = rows[did]
                if current != "unknown":
                    raise Conflict(f"Delivery {did} is {current}, not unknown; only unknown "
                                   "deliveries can be resolved.")
                if not resend:
                    continue
                if enrollment != "active":
                    raise Conflict(f"Delivery {did}'s enrollment is {enrollment}; resume it "
                                   "before resending, or resolve it --as sent.")
                later = s.execute(select(t.c.id, t.c.state).where(
                    t.c.enrollment_id == enrollment_id, t.c.seq_no > seq_no)).all()
                if any(state in ("claimed", "sending", "sent", "unknown") for _, state in later):
                    raise Conflict(f"The email after delivery {did} has already gone out (or is "
                                   "going now), so resending it would break the order; "
                                   f"resolve it --as sent.")
                ended = [(i, state) for i, state in later if state not in ("scheduled", "held")]
                if ended:
                    # A failed or cancelled follow-up keeps its place in the ledger, so the
                    # resent email could plan nothing after it: refuse rather than strand it.
                    i, state = ended[0]
                    then = f", then `drip retry --id {i}`" if state == "failed" else ""
                    raise Conflict(
                        f"The email after delivery {did} (delivery {i}) is already {state}, so "
                        "resending it would leave nothing planned after it; resolve it --as "
                        f"sent{then}.")
                follow_ups += [i for i, state in later if state in ("scheduled", "held")]
            if follow_ups:  # planned again when the resent email goes out
                s.execute(delete(Delivery).where(Delivery.id.in_(follow_ups)))
            if resend:
                values: dict[str, Any] = {
                    "state": "scheduled", "due_at": now, "attempts": 0, "finished_at": None,
                    "sending_at": None, "claimed_by": None, "lease_until": None,
                    "last_error": "Sent again by an operator after an unknown outcome."}
            else:
                values = {"state": "sent", "finished_at": now,
                          "sent_at": func.coalesce(t.c.sent_at, t.c.sending_at, now),
                          "last_error": None}
            done = rowcount(s.execute(update(t).where(t.c.id.in_(list(ids)),
                                                      t.c.state == "unknown").values(**values)))
            if not resend:
                self._announce_sent(s, list(ids), now)
            for did in ids:
                s.add(Event(kind="resolved", delivery_id=did, subscriber_id=rows[did][4],
                            occurred_at=now, received_at=now,
                            detail="resend" if resend else "sent"))
            return done

    # --- import ----------------------------------------------------------------------------

    def import_enrollments(self, people: Sequence[ImportPerson], *, sequence_key: str,
                           now: datetime, dry_run: bool = False,
                           progress: Callable[[int], None] | None = None) -> ImportResult:
        """Create subscribers and enroll them, with consent and first delivery, in bulk.

        One transaction: all rows or none. People already in the sequence, or who
        unsubscribed or are suppressed, are left alone, so a second run changes nothing.
        With `dry_run` nothing is written and the counts say what would happen.
        """
        counts: Counter[str] = Counter()
        with self._session() as s, s.begin():
            conn = s.connection()
            for start in range(0, len(people), IMPORT_CHUNK):
                chunk = people[start:start + IMPORT_CHUNK]
                self._import_chunk(conn, chunk, sequence_key, now, dry_run, counts)
                if progress is not None:
                    progress(len(chunk))
        return ImportResult(**counts)

    def _import_chunk(self, conn: Connection, chunk: Sequence[ImportPerson],
                      sequence_key: str, now: datetime, dry_run: bool,
                      result: Counter[str]) -> None:
        pg = self.dialect == "postgresql"
        emails = [p.email for p in chunk]
        known = {r[1]: r for r in conn.execute(self._people(emails)).all()}
        fresh = [p for p in chunk if p.email not in known]
        result["new_subscribers"] += len(fresh)
        ids = {email: row[0] for email, row in known.items()}
        if fresh and not dry_run:
            rows = [p.subscriber_row(now) for p in fresh]
            if pg:
                inserted = conn.execute(_PG_IMPORT_SUBSCRIBERS, {
                    "emails": pg_array([r["email"] for r in rows]),
                    "names": pg_array([r["name"] for r in rows]),
                    "zones": pg_array([r["timezone"] for r in rows]),
                    "created_ats": pg_array([r["created_at"] for r in rows]),
                    "unsubscribed_ats": pg_array([r["unsubscribed_at"] for r in rows]),
                    "suppressed_ats": pg_array([r["suppressed_at"] for r in rows]),
                    "reasons": pg_array([r["suppressed_reason"] for r in rows])}).all()
            else:
                inserted = conn.execute(
                    self._insert(Subscriber).on_conflict_do_nothing(index_elements=["email"])
                    .returning(Subscriber.id, Subscriber.email), rows).all()
            ids.update({email: sid for sid, email in inserted})
            raced = [p.email for p in fresh if p.email not in ids]
            if raced:  # created since the lookup, by a concurrent import or opt-in
                for found in conn.execute(self._people(raced)):
                    known[found[1]], ids[found[1]] = found, found[0]
                result["new_subscribers"] -= len(raced)
        present = [ids[e] for e in emails if e in known]
        enrolled: set[int] = set()
        if present and pg:
            enrolled.update(conn.execute(_PG_IMPORT_ENROLLED, {
                "subscriber_ids": pg_array(present), "sequence_key": sequence_key}).scalars())
        elif present:
            enrolled.update(conn.execute(select(Enrollment.subscriber_id).where(
                Enrollment.sequence_key == sequence_key,
                Enrollment.subscriber_id.in_(present))).scalars())
        joining, stopped = [], []
        for p in chunk:
            row = known.get(p.email)
            if row is not None and row[0] in enrolled:
                result["already_enrolled"] += 1
            elif row is not None and row[3] is not None:
                result["suppressed"] += 1
            elif row is not None and row[2] is not None:
                result["unsubscribed"] += 1
            elif p.state in ("unsubscribed", "suppressed"):
                # left elsewhere: recorded as such when new here, never enrolled
                result[p.state] += 1
                if row is None and p.was_in_sequence:
                    stopped.append(p)
            else:
                joining.append(p)
        if dry_run or not (joining or stopped):
            result["enrolled"] += len(joining)
            result["paused"] += sum(p.state == "paused" for p in joining)
            return
        # A concurrent import may enroll the same people first: its rows win, ours are
        # counted as already enrolled, and nothing of theirs is written twice.
        writing = [(p, p.enrollment_row(now)) for p in joining + stopped]
        if pg:
            enrollment_ids = pairs(conn.execute(_PG_IMPORT_ENROLLMENTS, {
                "now": now, "sequence_key": sequence_key,
                "subscriber_ids": pg_array([ids[p.email] for p, _ in writing]),
                **{f"{name}s": pg_array([r[name] for _, r in writing])
                   for name in ("state", "paused_at", "finished_at", "stop_reason")}}).all())
        else:
            enrollment_ids = pairs(conn.execute(
                self._insert(Enrollment)
                .on_conflict_do_nothing(index_elements=["subscriber_id", "sequence_key", "cycle"])
                .returning(Enrollment.subscriber_id, Enrollment.id),
                [{"subscriber_id": ids[p.email], "sequence_key": sequence_key, "cycle": 1,
                  "source": "import", "enrolled_at": now, **r} for p, r in writing],
            ).all())
        joined = [p for p in joining if ids[p.email] in enrollment_ids]
        result["already_enrolled"] += len(joining) - len(joined)
        joining = joined
        result["enrolled"] += len(joining)
        result["paused"] += sum(p.state == "paused" for p in joining)
        if not joining:
            return
        if pg:
            people = [ids[p.email] for p in joining]
            conn.execute(_PG_IMPORT_CONSENTS, {
                "sequence_key": sequence_key, "subscriber_ids": pg_array(people),
                "created_ats": pg_array([p.consented_at for p in joining]),
                "details": pg_array([json.dumps(p.details) for p in joining]),
                "ips": pg_array([p.ip for p in joining]),
                "confirmed_ats": pg_array([p.confirmed_at for p in joining])})
            conn.execute(_PG_IMPORT_DELIVERIES, {
                "now": now, "sequence_key": sequence_key, "subscriber_ids": pg_array(people),
                "enrollment_ids": pg_array([enrollment_ids[i] for i in people]),
                "steps": pg_array([p.first_step for p in joining]),
                "due_ats": pg_array([p.due_at for p in joining]),
                "window_end_ats": pg_array([p.window_end_at for p in joining]),
                "states": pg_array([_first_state(p) for p in joining])})
            return
        conn.execute(insert(Consent), [
            {"subscriber_id": ids[p.email], "sequence_key": sequence_key, "source": "import",
             "created_at": p.consented_at, "details": p.details, "ip": p.ip,
             "confirmed_at": p.confirmed_at} for p in joining])
        conn.execute(insert(Delivery), [
            {"enrollment_id": enrollment_ids[ids[p.email]], "subscriber_id": ids[p.email],
             "sequence_key": sequence_key, "seq_no": 1, "step_key": p.first_step,
             "variant": "main", "state": _first_state(p), "due_at": p.due_at,
             "window_end_at": p.window_end_at, "attempts": 0, "created_at": now}
            for p in joining])

    def _people(self, emails: list[str]) -> Any:
        """Who of `emails` is a subscriber already: (id, email, unsubscribed, suppressed).

        On PostgreSQL the list is joined as an array (`unnest`), never compared with
        `= ANY`: on a table the planner thinks small (no statistics yet, as in a first
        import) that became a sequential scan comparing every row with every address,
        two seconds per 2,000-row chunk at 20,000 subscribers; a join stays linear."""
        if self.dialect != "postgresql":
            return select(Subscriber.id, Subscriber.email, Subscriber.unsubscribed_at,
                          Subscriber.suppressed_at).where(Subscriber.email.in_(emails))
        return _PG_IMPORT_PEOPLE.bindparams(emails=pg_array(emails))

    # --- export ----------------------------------------------------------------------------

    def export_subscribers(self) -> list[dict[str, Any]]:
        """Every subscriber with their state and the sequences they are in, oldest first."""
        with self._session() as s:
            people = s.execute(select(
                Subscriber.id, Subscriber.email, Subscriber.name, Subscriber.timezone,
                Subscriber.created_at, Subscriber.unsubscribed_at, Subscriber.suppressed_at,
                Subscriber.suppressed_reason).order_by(Subscriber.id)).all()
            joined: dict[int, list[tuple[str, str]]] = {}
            for sid, key, state in s.execute(select(
                    Enrollment.subscriber_id, Enrollment.sequence_key, Enrollment.state)
                    .order_by(Enrollment.id)):
                joined.setdefault(sid, []).append((key, state))
            # joined when they first consented (an import keeps the date of the tool they
            # came from), or when the row was made if no consent is on record
            consented = pairs(s.execute(select(Consent.subscriber_id, func.min(
                Consent.created_at)).group_by(Consent.subscriber_id)).all())
        rows = []
        for sid, email, name, tz, created, unsubscribed, suppressed, reason in people:
            first = consented.get(sid)
            joined_at = min(as_utc(created), as_utc(first)) if first else as_utc(created)
            states = {state for _, state in joined.get(sid, [])}
            state = ("suppressed" if suppressed else "unsubscribed" if unsubscribed
                     else "paused" if "paused" in states and "active" not in states
                     else "active")
            rows.append({"email": email, "name": name, "timezone": tz,
                         "joined_at": joined_at, "state": state,
                         "unsubscribed_at": _utc(unsubscribed),
                         "suppressed_at": _utc(suppressed), "suppressed_reason": reason,
                         "sequences": sorted({key for key, _ in joined.get(sid, [])})})
        return rows

    # --- stats -----------------------------------------------------------------------------

    def step_counts(self, sequence_key: str) -> list[StepCounts]:
        """Per step and variant of a sequence: emails sent, provider events and checkpoint
        answers (the answer counts on the email it was given on)."""
        t = DELIVERIES

        def events(kinds: tuple[str, ...]) -> Any:
            return (select(Event.delivery_id).where(Event.kind.in_(kinds))
                    .distinct().subquery())

        delivered, opened, clicked = (events(DELIVERED_EVENTS), events(OPEN_EVENTS),
                                      events(CLICK_EVENTS))
        went_out = and_(t.c.sequence_key == sequence_key, t.c.state.in_(("sent", "unknown")))
        kind = (t.c.step_key, t.c.variant)

        def keyed(rows: Any) -> dict[tuple[str, str], int]:
            return {(r[0], r[1]): int(r[2]) for r in rows}

        with self._session() as s:
            sent = keyed(s.execute(select(*kind, func.count()).where(went_out)
                                   .group_by(*kind)))
            with_event: dict[str, dict[tuple[str, str], int]] = {}
            for name, sub in (("delivered", delivered), ("opened", opened),
                              ("clicked", clicked)):
                with_event[name] = keyed(s.execute(
                    select(*kind, func.count()).join(sub, sub.c.delivery_id == t.c.id)
                    .where(went_out).group_by(*kind)).all())
            answers: dict[tuple[str, str, str], int] = {
                (r[0], r[1], r[2]): int(r[3]) for r in s.execute(
                    select(*kind, CheckpointAnswer.answer, func.count())
                    .join(CheckpointAnswer, CheckpointAnswer.delivery_id == t.c.id)
                    .where(went_out).group_by(*kind, CheckpointAnswer.answer))}
        return [StepCounts(
            step_key=step, variant=variant, sent=n,
            delivered=with_event["delivered"].get((step, variant), 0),
            opened=with_event["opened"].get((step, variant), 0),
            clicked=with_event["clicked"].get((step, variant), 0),
            passed=answers.get((step, variant, "passed"), 0),
            not_yet=answers.get((step, variant, "not-yet"), 0),
        ) for (step, variant), n in sent.items()]

    def nudge_counts(self, sequence_key: str) -> list[NudgeCounts]:
        """Per offer nudged in a sequence: emails carrying it, their clicks, and purchases
        of that offer after it was first nudged (distinct subscribers)."""
        t = DELIVERIES
        nudged = and_(t.c.sequence_key == sequence_key, t.c.state == "sent",
                      t.c.nudge.is_not(None))
        first_nudge = (select(t.c.subscriber_id, t.c.nudge, func.min(t.c.sent_at).label("at"))
                       .where(nudged).group_by(t.c.subscriber_id, t.c.nudge).subquery())
        with self._session() as s:
            shown: dict[str, tuple[int, int]] = {r[0]: (int(r[1]), int(r[2])) for r in s.execute(
                select(t.c.nudge, func.count(), func.count(func.distinct(t.c.subscriber_id)))
                .where(nudged).group_by(t.c.nudge))}
            clicks: dict[str, list[dict[str, Any] | None]] = {}
            for offer, payload in s.execute(
                    select(t.c.nudge, Event.payload).join(Event, Event.delivery_id == t.c.id)
                    .where(nudged, Event.kind.in_(CLICK_EVENTS))):
                clicks.setdefault(offer, []).append(payload)
            bought: dict[str, int] = pairs(s.execute(
                select(first_nudge.c.nudge, func.count(func.distinct(Purchase.subscriber_id)))
                .join(Purchase, and_(Purchase.subscriber_id == first_nudge.c.subscriber_id,
                                     Purchase.product == first_nudge.c.nudge,
                                     Purchase.purchased_at > first_nudge.c.at))
                .group_by(first_nudge.c.nudge)).all())
        return [NudgeCounts(offer, n, clicks.get(offer, []), int(bought.get(offer, 0)), people)
                for offer, (n, people) in shown.items()]

"""The store's foundation: sessions, the dialect, and the row types its queries return."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple, cast

from sqlalchemy import (
    BigInteger,
    Engine,
    String,
    Table,
    any_,
    bindparam,
    select,
)
from sqlalchemy import (
    cast as sql_cast,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from drip.models import (
    Delivery,
    Enrollment,
    Subscriber,
    WebhookEndpoint,
    WebhookMessage,
)

DELIVERIES = cast(Table, Delivery.__table__)

#: Delivery states. scheduled -> claimed -> sending -> sent | failed | unknown;
#: scheduled/claimed -> cancelled when the subscriber may no longer receive it.
DeliveryState = Literal[
    "scheduled", "claimed", "sending", "sent", "failed", "unknown", "cancelled", "held"
]
FINAL_STATES = ("sent", "failed", "unknown", "cancelled")


class PlannedDelivery(NamedTuple):
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
    #: Set when nothing can be planned (the step that went out is gone from the files):
    #: the row is inserted `held` with this reason and the enrollment is paused.
    hold: str | None = None


@dataclass(frozen=True)
class ConsentRecord:
    source: str
    text_version: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    confirmed_at: datetime | None = None
    details: dict[str, Any] | None = None
    #: What this evidence is (an opt-in request, an order): a consent with the same key
    #: already on record for the subscriber is not recorded twice. Kept in `details`.
    evidence_key: str | None = None


@dataclass(frozen=True)
class EnrollOutcome:
    created: bool
    subscriber_id: int
    enrollment_id: int
    state: str
    restarted: bool = False


class ClaimedDelivery(NamedTuple):
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
    offers_opt_out: bool


class Outcome(NamedTuple):
    """What became of one claimed delivery, to be written back in one transaction."""

    delivery_id: int
    state: DeliveryState
    provider: str | None = None
    message_id: str | None = None
    error: str | None = None
    retry_at: datetime | None = None
    #: The try did not count against the email's attempts: the provider was failing for
    #: everyone (an outage, a rate limit), not refusing this email.
    refund_attempt: bool = False
    #: The provider request an `unknown` email went out in (SendResult.batch_key).
    batch_key: str | None = None


class Move(NamedTuple):
    """A claimed delivery that goes back to the queue for a later slot, unsent (a checkpoint
    reminder whose question was answered in time becomes the weekly email)."""

    delivery_id: int
    due_at: datetime
    window_end_at: datetime | None
    step_key: str
    variant: str


class Sending(NamedTuple):
    """An email about to be handed to the provider, exactly as the dispatcher decided it."""

    delivery_id: int
    step_key: str
    variant: str
    nudge: str | None
    content_hash: str


class WentOut(NamedTuple):
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


#: What comes after the emails that went out, as the planner decides it (a pure function
#: the store calls inside the transaction that records them): the next deliveries, and
#: the enrollments with nothing left to send.
NextSteps = Callable[[Sequence[WentOut]], tuple[list[PlannedDelivery], list[int]]]


@dataclass(frozen=True)
class Recorded:
    """What one recording transaction did: the emails whose enrollment moved on, and how
    many next deliveries it planned."""

    went_out: list[WentOut]
    planned: int = 0


@dataclass(frozen=True)
class MissedWindow:
    delivery_id: int
    sequence_key: str
    timezone: str
    #: The subscriber's own choice of send time ("HH:MM") and weekday, if any (0009).
    send_time: str | None = None
    send_weekday: str | None = None


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


@dataclass(frozen=True)
class Announcement:
    """One outgoing webhook event, queued in the transaction of the change it reports, so
    the two commit together or not at all (drip.webhooks posts it later)."""

    event: str
    subscriber_id: int | None
    data: dict[str, Any]
    #: Names the change (`sent_41`): its message id is then `msg_` + key, and the same
    #: change announced twice (a late answer, a second settling) is queued once.
    key: str | None = None


def pg_array(values: Iterable[int | str | datetime | None]) -> str:
    """A PostgreSQL array literal (`{1,2,NULL}`, `{"a","b"}`), to bind as one text parameter
    and CAST to its array type in the statement.

    Sending a batch's columns this way costs a join of strings; letting the driver adapt
    each list element by element cost about 0.5 ms per 1,000 values. A batch's columns
    are mostly ids (joined in one go) and a few repeated values (a step key, a due time
    per time zone), so each distinct value is quoted once per array.
    """
    items = values if isinstance(values, list) else list(values)
    if all(type(v) is int for v in items):
        return "{" + ",".join(map(str, items)) + "}"
    quoted: dict[object, str] = {None: "NULL"}
    parts = []
    for v in items:
        part = quoted.get(v)
        if part is None:
            if type(v) is int:
                part = str(v)
            else:
                text = v.isoformat() if isinstance(v, datetime) else str(v)
                if "\\" in text or '"' in text:
                    text = text.replace("\\", "\\\\").replace('"', '\\"')
                part = '"' + text + '"'
            quoted[v] = part
        parts.append(part)
    return "{" + ",".join(parts) + "}"


def rowcount(result: Any) -> int:
    """Rows an UPDATE, DELETE or INSERT touched (0 when the driver cannot say)."""
    return max(int(getattr(result, "rowcount", 0) or 0), 0)


class StoreBase:
    """Sessions and dialect helpers shared by every query module."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _session(self) -> Session:
        return self._sessions()

    def _ids_in(self, column: Any, ids: Iterable[int]) -> Any:
        """`column IN ids` for a large id list: one array parameter on PostgreSQL.

        A thousand separate parameters cost more to compile and convert than the query
        takes to run; `= ANY(:array)` is one parameter and one cached statement.
        """
        values = list(ids)
        if self.dialect == "postgresql":
            return column == any_(sql_cast(bindparam(None, pg_array(values), type_=String()),
                                           postgresql.ARRAY(BigInteger)))
        return column.in_(values)

    def _insert(self, model: Any) -> Any:
        """An INSERT that can say ON CONFLICT, in this database's dialect."""
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(model)

    #: Set by the composition root when DRIP_WEBHOOK_URLS names receivers (of every event).
    outgoing_webhooks: bool = False

    def _wanted_events(self, s: Session) -> Callable[[str], bool]:
        """Which events someone receives: everything with DRIP_WEBHOOK_URLS, else what the
        endpoints added with `drip webhook add` ask for (read in the caller's transaction,
        so an event is queued if and only if a receiver existed when it happened)."""
        if self.outgoing_webhooks:
            return lambda event: True
        wanted = [set(filter(None, e.split(","))) for e in s.scalars(
            select(WebhookEndpoint.events))]
        if not wanted:
            return lambda event: False
        return lambda event: any(not events or event in events for events in wanted)

    def _announce(self, s: Session, announcements: Iterable[Announcement], now: datetime,
                  wanted: Callable[[str], bool] | None = None) -> int:
        """Queue the events someone wants, inside the caller's transaction; how many."""
        wants = wanted or self._wanted_events(s)
        rows = [{"msg_id": "msg_" + (a.key or secrets.token_urlsafe(18)), "event": a.event,
                 "subscriber_id": a.subscriber_id,
                 "payload": {"type": a.event, "timestamp": now.isoformat(), "data": a.data},
                 "state": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
                for a in announcements if wants(a.event)]
        if rows:
            s.execute(self._insert(WebhookMessage).on_conflict_do_nothing(
                index_elements=["msg_id"]), rows)
        return len(rows)

    def _announce_sent(self, s: Session, delivery_ids: Sequence[int], now: datetime) -> None:
        """`email.sent` for those of `delivery_ids` that are `sent` now, in the caller's
        transaction; keyed on the delivery, so a send settled twice is announced once."""
        wants = self._wanted_events(s)
        if not delivery_ids or not wants("email.sent"):
            return
        t = DELIVERIES
        rows = s.execute(
            select(t.c.id, t.c.subscriber_id, t.c.enrollment_id, t.c.sequence_key, t.c.seq_no,
                   t.c.step_key, t.c.variant, t.c.provider_message_id, Subscriber.email)
            .join(Subscriber, Subscriber.id == t.c.subscriber_id)
            .where(self._ids_in(t.c.id, delivery_ids), t.c.state == "sent")
            .order_by(t.c.id)).all()
        self._announce(s, [Announcement("email.sent", r[1], {
            "email": r[8], "delivery_id": r[0], "enrollment_id": r[2], "sequence": r[3],
            "seq_no": r[4], "step": r[5], "variant": r[6], "provider_message_id": r[7]},
            key=f"sent_{r[0]}") for r in rows], now, wants)

    def _announce_enrollments(self, s: Session, event: str, enrollment_ids: Iterable[int],
                              now: datetime, reason: str | None = None) -> None:
        """`graduated` or `paused` for these enrollments, in the caller's transaction."""
        ids = sorted(set(enrollment_ids))
        wants = self._wanted_events(s)
        if not ids or not wants(event):
            return
        rows = s.execute(
            select(Enrollment.id, Enrollment.subscriber_id, Enrollment.sequence_key,
                   Enrollment.stop_reason, Subscriber.email)
            .join(Subscriber, Subscriber.id == Enrollment.subscriber_id)
            .where(self._ids_in(Enrollment.id, ids)).order_by(Enrollment.id)).all()
        self._announce(s, [Announcement(event, r[1], {
            "email": r[4], "enrollment_id": r[0], "sequence": r[2],
            **({"reason": reason or r[3]} if event == "paused" else {})},
            key=f"graduated_{r[0]}" if event == "graduated" else None)
            for r in rows], now, wants)

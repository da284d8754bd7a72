"""Queries for what providers report back: events stored in bulk, deliveries confirmed."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Integer,
    String,
    any_,
    bindparam,
    case,
    cast,
    func,
    or_,
    select,
    update,
)

from drip.models import Delivery, Enrollment, Event, Subscriber
from drip.providers.base import ProviderEvent
from drip.store._base import DELIVERIES, Announcement, StoreBase, rowcount

#: The columns an event row carries, in order, with their PostgreSQL types (for COPY).
_EVENT_TYPES = {"provider_event_id": "text", "kind": "text", "delivery_id": "int8",
                "subscriber_id": "int8", "email": "text", "occurred_at": "timestamptz",
                "received_at": "timestamptz", "detail": "text", "payload": "json"}
_EVENT_COLUMNS = tuple(_EVENT_TYPES)
_PG_INCOMING_EVENTS = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS incoming_events ("
    + ", ".join(f"{name} {kind}" for name, kind in _EVENT_TYPES.items())
    + ") ON COMMIT DELETE ROWS")

#: Rows per IN (...) look-up: far below every database's parameter limit.
CHUNK = 500


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]


def _one_of(dialect: str, column: Any, values: Iterable[Any]) -> Any:
    """`column IN (values)` with the whole list as ONE parameter, a JSON array, so ten
    thousand values cost one bound parameter and one json.dumps instead of ten thousand
    parameters (or psycopg converting a Python list to an array, item by item).

    On PostgreSQL it is `= ANY(ARRAY(...))`, which an index scan walks in key order, so
    an UPDATE locks its rows in the same order whatever order the values come in."""
    listed = bindparam(None, json.dumps(list(values)), type_=String())
    if dialect == "postgresql":
        elements = func.json_array_elements_text(cast(listed, JSON)).table_valued("value")
        value = elements.c.value
        return column == any_(func.array(select(cast(value, BigInteger) if isinstance(
            column.type, Integer) else value).scalar_subquery()))
    return column.in_(select(func.json_each(listed).table_valued("value").c.value))


class EventQueries(StoreBase):
    """Provider events (SendGrid's Event Webhook): dedupe, store, confirm."""

    def known_event_ids(self, event_ids: Iterable[str]) -> set[str]:
        ids = sorted(set(event_ids))
        if not ids:
            return set()
        with self._session() as s:
            found = s.connection().execute(select(Event.provider_event_id).where(
                _one_of(self.dialect, Event.provider_event_id, ids))).scalars()
            return {i for i in found if i is not None}

    def record_provider_events(self, events: Sequence[ProviderEvent],
                               confirmed: Iterable[int], now: datetime) -> int:
        """Store events in one INSERT (a repeat of a stored event id is skipped) and confirm
        the deliveries they report (`confirmed_at` is when drip heard of it): an `unknown`
        delivery the provider handled becomes sent.

        One transaction; returns how many events were new. Events are matched to the
        deliveries drip sent, and to subscribers by address when no delivery is named.
        """
        if not events:
            return 0
        delivery_ids = {e.delivery_id for e in events if e.delivery_id is not None}
        with self._session() as s, s.begin():
            conn = s.connection()
            owners: dict[int, int] = {r[0]: r[1] for r in conn.execute(
                select(Delivery.id, Delivery.subscriber_id).where(
                    _one_of(self.dialect, Delivery.id, delivery_ids)))} if delivery_ids else {}
            emails = {e.email.lower() for e in events if e.delivery_id not in owners}
            people: dict[str, int] = {r[0]: r[1] for r in conn.execute(
                select(Subscriber.email, Subscriber.id).where(
                    _one_of(self.dialect, Subscriber.email, emails)))} if emails else {}
            rows = (self._event_row(e, owners, people, now) for e in events)
            if self.dialect == "postgresql":
                stored = self._copy_events(conn, rows)
            else:
                statement = self._insert(Event).on_conflict_do_nothing(
                    index_elements=["provider_event_id"])
                stored = rowcount(conn.execute(
                    statement, [dict(zip(_EVENT_COLUMNS, row, strict=True)) for row in rows]))
            known = {d for d in confirmed if d in owners}
            if known:  # one set-based statement, however many events confirm
                t = DELIVERIES
                unknown = t.c.state == "unknown"
                settling = list(conn.execute(select(t.c.id).where(
                    _one_of(self.dialect, t.c.id, known), unknown)).scalars())
                conn.execute(update(t).where(_one_of(self.dialect, t.c.id, known),
                                             or_(t.c.confirmed_at.is_(None), unknown))
                             .values(confirmed_at=func.coalesce(t.c.confirmed_at, now),
                                     state=case((unknown, "sent"), else_=t.c.state),
                                     sent_at=case((unknown, func.coalesce(t.c.sent_at, now)),
                                                  else_=t.c.sent_at)))
                self._announce_sent(s, settling, now)
            return stored

    @staticmethod
    def _event_row(event: ProviderEvent, owners: dict[int, int], people: dict[str, int],
                   now: datetime) -> tuple[Any, ...]:
        """One event's row, in _EVENT_COLUMNS order: tied to its delivery and that
        delivery's subscriber, else to the subscriber with its address."""
        delivery = event.delivery_id if event.delivery_id in owners else None
        owner = owners[delivery] if delivery is not None else people.get(event.email.lower())
        return (event.provider_event_id, event.kind, delivery, owner, event.email,
                event.occurred_at, now, event.detail, event.payload)

    @staticmethod
    def _copy_events(conn: Any, rows: Iterable[tuple[Any, ...]]) -> int:
        """PostgreSQL: COPY the burst into a temporary table, then one INSERT ... SELECT
        that skips event ids already stored. Several times faster than an executemany of
        thousands of rows, in the same transaction. Binary COPY with the column types
        declared once: nothing is formatted as text and escaped, row by row."""
        cursor = conn.connection.cursor()  # the psycopg cursor of this transaction
        try:
            cursor.execute(_PG_INCOMING_EVENTS)
            with cursor.copy(f"COPY incoming_events ({', '.join(_EVENT_COLUMNS)}) "
                             "FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(list(_EVENT_TYPES.values()))
                for row in rows:
                    copy.write_row(row)
            cursor.execute(f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) "
                           f"SELECT {', '.join(_EVENT_COLUMNS)} FROM incoming_events "
                           "ON CONFLICT (provider_event_id) DO NOTHING")
            return max(int(cursor.rowcount), 0)
        finally:
            cursor.close()

    def suppress_addresses(self, reasons: dict[str, str], now: datetime) -> list[str]:
        """Suppress many addresses at once (a burst of bounces), in one transaction.

        The bulk form of `hold_enrollments(state="suppressed")`: each address's subscriber is
        marked suppressed, their active enrollments are held and their pending email is
        held; a paused enrollment stays paused, so unsuppressing never lifts a pause.
        Unknown or already suppressed addresses are skipped. Returns the addresses that were
        suppressed now.
        """
        emails = sorted(reasons)
        if not emails:
            return []
        with self._session() as s, s.begin():
            conn = s.connection()
            found: dict[int, str] = {}
            for chunk in _chunks(emails):
                found.update((r[0], r[1]) for r in conn.execute(
                    select(Subscriber.id, Subscriber.email).where(
                        Subscriber.email.in_(chunk), Subscriber.suppressed_at.is_(None))))
            if not found:
                return []
            ids = sorted(found)
            conn.execute(
                update(Subscriber).where(Subscriber.id == bindparam("b_id")).values(
                    suppressed_at=now, suppressed_reason=bindparam("b_reason")),
                [{"b_id": i, "b_reason": reasons[found[i]]} for i in ids])
            conn.execute(self._insert(Event), [
                {"kind": "suppressed", "subscriber_id": i, "email": found[i], "occurred_at": now,
                 "received_at": now, "detail": reasons[found[i]]} for i in ids])
            self._announce(s, [Announcement("suppressed", i, {
                "email": found[i], "reason": reasons[found[i]]}) for i in ids], now)
            for chunk in _chunks(ids):
                held = list(conn.execute(  # a paused enrollment stays paused (see above)
                    update(Enrollment)
                    .where(Enrollment.subscriber_id.in_(chunk), Enrollment.state == "active")
                    .values(state="suppressed", paused_at=now, stop_reason=select(
                        Subscriber.suppressed_reason).where(
                            Subscriber.id == Enrollment.subscriber_id).scalar_subquery())
                    .returning(Enrollment.id)).scalars())
                for part in _chunks(held):
                    conn.execute(
                        update(Delivery)
                        .where(Delivery.enrollment_id.in_(part),
                               Delivery.state.in_(("scheduled", "claimed")))
                        .values(state="held", claimed_by=None, lease_until=None))
            return [found[i] for i in ids]

    def events_of(self, *, delivery_id: int | None = None,
                  email: str | None = None) -> list[tuple[str, str | None, int | None]]:
        """(kind, detail, delivery id) of stored events, oldest first: for reports and tests."""
        query = select(Event.kind, Event.detail, Event.delivery_id).order_by(Event.id)
        if delivery_id is not None:
            query = query.where(Event.delivery_id == delivery_id)
        if email is not None:
            query = query.where(Event.email == email)
        with self._session() as s:
            return [(r[0], r[1], r[2]) for r in s.execute(query)]

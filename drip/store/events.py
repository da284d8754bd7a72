"""Queries for what providers report back: events stored in bulk, deliveries confirmed."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from drip.models import Delivery, Enrollment, Event, Subscriber
from drip.providers.base import ProviderEvent
from drip.store._base import DELIVERIES, StoreBase, rowcount

_EVENT_COLUMNS = ("provider_event_id", "kind", "delivery_id", "subscriber_id", "email",
                  "occurred_at", "received_at", "detail", "payload")
_PG_INCOMING_EVENTS = """
    CREATE TEMPORARY TABLE IF NOT EXISTS incoming_events (
        provider_event_id text, kind text, delivery_id bigint, subscriber_id bigint,
        email text, occurred_at timestamptz, received_at timestamptz, detail text,
        payload json
    ) ON COMMIT DELETE ROWS
"""

#: Rows per IN (...) look-up: far below every database's parameter limit.
CHUNK = 500


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]


def _one_of(dialect: str, column: Any, values: Sequence[Any]) -> Any:
    """`column IN (values)` with the whole list as ONE parameter, so ten thousand values cost
    one bound parameter instead of ten thousand: a JSON array on SQLite, an array on
    PostgreSQL."""
    if dialect == "postgresql":
        item = Integer() if values and isinstance(values[0], int) else String()
        return column == any_(cast(bindparam(None, list(values), type_=ARRAY(item)),
                                   ARRAY(item)))
    listed: Any = select(literal_column("value")).select_from(
        func.json_each(bindparam(None, json.dumps(list(values)), type_=String())))
    return column.in_(listed)


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
        delivery_ids = sorted({e.delivery_id for e in events if e.delivery_id is not None})
        emails = sorted({e.email.lower() for e in events})
        with self._session() as s, s.begin():
            conn = s.connection()
            owners: dict[int, int] = {}
            if delivery_ids:
                owners.update((r[0], r[1]) for r in conn.execute(
                    select(Delivery.id, Delivery.subscriber_id).where(
                        _one_of(self.dialect, Delivery.id, delivery_ids))))
            people: dict[str, int] = {r[0]: r[1] for r in conn.execute(
                select(Subscriber.email, Subscriber.id).where(
                    _one_of(self.dialect, Subscriber.email, emails)))}
            rows = []
            for e in events:
                delivery = e.delivery_id if e.delivery_id in owners else None
                rows.append({
                    "provider_event_id": e.provider_event_id, "kind": e.kind,
                    "delivery_id": delivery,
                    "subscriber_id": owners[delivery] if delivery is not None
                    else people.get(e.email.lower()),
                    "email": e.email, "occurred_at": e.occurred_at, "received_at": now,
                    "detail": e.detail, "payload": e.payload,
                })
            if self.dialect == "postgresql":
                stored = self._copy_events(conn, rows)
            else:
                statement = self._insert(Event).on_conflict_do_nothing(
                    index_elements=["provider_event_id"])
                stored = rowcount(conn.execute(statement, rows))
            known = sorted({d for d in confirmed if d in owners})
            if known:  # two set-based statements, however many events confirm
                t = DELIVERIES
                conn.execute(update(t).where(_one_of(self.dialect, t.c.id, known),
                                             t.c.confirmed_at.is_(None))
                             .values(confirmed_at=now))
                conn.execute(update(t).where(_one_of(self.dialect, t.c.id, known),
                                             t.c.state == "unknown")
                             .values(state="sent", sent_at=func.coalesce(t.c.sent_at, now)))
            return stored

    @staticmethod
    def _copy_events(conn: Any, rows: list[dict[str, Any]]) -> int:
        """PostgreSQL: COPY the burst into a temporary table, then one INSERT ... SELECT
        that skips event ids already stored. Several times faster than an executemany of
        thousands of rows, in the same transaction."""
        cursor = conn.connection.cursor()  # the psycopg cursor of this transaction
        try:
            cursor.execute(_PG_INCOMING_EVENTS)
            with cursor.copy(f"COPY incoming_events ({', '.join(_EVENT_COLUMNS)}) "
                             "FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([json.dumps(row[c]) if c == "payload" and row[c] is not None
                                    else row[c] for c in _EVENT_COLUMNS])
            cursor.execute(f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) "
                           f"SELECT {', '.join(_EVENT_COLUMNS)} FROM incoming_events "
                           "ON CONFLICT (provider_event_id) DO NOTHING")
            return max(int(cursor.rowcount), 0)
        finally:
            cursor.close()

    def suppress_addresses(self, reasons: dict[str, str], now: datetime) -> list[str]:
        """Suppress many addresses at once (a burst of bounces), in one transaction.

        The bulk form of `hold_enrollments(state="suppressed")`: each address's subscriber is
        marked suppressed, their active or paused enrollments are held and their pending
        email is held. Unknown or already suppressed addresses are skipped. Returns the
        addresses that were suppressed now.
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
            for chunk in _chunks(ids):
                held = list(conn.execute(
                    update(Enrollment)
                    .where(Enrollment.subscriber_id.in_(chunk),
                           Enrollment.state.in_(("active", "paused")))
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

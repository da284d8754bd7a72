"""Queries for what providers report back: events stored in bulk, deliveries confirmed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, func, select, update

from drip.models import Delivery, Event, Subscriber
from drip.providers.base import ProviderEvent
from drip.store._base import DELIVERIES, StoreBase, rowcount

#: Rows per IN (...) look-up: far below every database's parameter limit.
CHUNK = 500


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]


class EventQueries(StoreBase):
    """Provider events (SendGrid's Event Webhook): dedupe, store, confirm."""

    def known_event_ids(self, event_ids: Iterable[str]) -> set[str]:
        ids = sorted(set(event_ids))
        found: set[str] = set()
        with self._session() as s:
            for chunk in _chunks(ids):
                found.update(s.scalars(select(Event.provider_event_id)
                                       .where(Event.provider_event_id.in_(chunk))))
        return {i for i in found if i is not None}

    def record_provider_events(self, events: Sequence[ProviderEvent],
                               confirmed: Sequence[tuple[int, datetime]],
                               now: datetime) -> int:
        """Store events in one INSERT (a repeat of a stored event id is skipped) and confirm
        the deliveries they report: an `unknown` delivery the provider handled becomes sent.

        One transaction; returns how many events were new. Events are matched to the
        deliveries drip sent, and to subscribers by address when no delivery is named.
        """
        if not events:
            return 0
        delivery_ids = sorted({e.delivery_id for e in events if e.delivery_id is not None})
        emails = sorted({e.email.lower() for e in events})
        with self._session() as s, s.begin():
            owners: dict[int, int] = {}
            for chunk in _chunks(delivery_ids):
                owners.update((r[0], r[1]) for r in s.execute(
                    select(Delivery.id, Delivery.subscriber_id).where(Delivery.id.in_(chunk))))
            people: dict[str, int] = {}
            for chunk in _chunks(emails):
                people.update((r[0], r[1]) for r in s.execute(
                    select(Subscriber.email, Subscriber.id).where(Subscriber.email.in_(chunk))))
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
            statement = self._insert(Event).on_conflict_do_nothing(
                index_elements=["provider_event_id"])
            stored = rowcount(s.connection().execute(statement, rows))
            known = [(d, at) for d, at in confirmed if d in owners]
            if known:
                t = DELIVERIES
                unknown = t.c.state == "unknown"
                s.connection().execute(
                    update(t).where(t.c.id == bindparam("b_id")).values(
                        confirmed_at=func.coalesce(t.c.confirmed_at, bindparam("b_at")),
                        sent_at=case((unknown, func.coalesce(t.c.sent_at, bindparam("b_at"))),
                                     else_=t.c.sent_at),
                        state=case((unknown, "sent"), else_=t.c.state),
                    ),
                    [{"b_id": d, "b_at": at} for d, at in known],
                )
            return stored

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

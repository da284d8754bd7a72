"""The outgoing webhook queue and its receivers: the endpoints added with `drip webhook add`,
the next due message of each subscriber, each attempt, and the log. Events are queued by
the store methods that make the change they report (StoreBase._announce), in its
transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from drip.clock import as_utc
from drip.errors import Conflict
from drip.models import WebhookEndpoint, WebhookMessage
from drip.store._base import StoreBase


@dataclass(frozen=True)
class WebhookRow:
    id: int
    msg_id: str
    event: str
    subscriber_id: int | None
    payload: dict[str, Any]
    state: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None
    last_error: str | None


def _row(m: WebhookMessage) -> WebhookRow:
    return WebhookRow(m.id, m.msg_id, m.event, m.subscriber_id, m.payload, m.state, m.attempts,
                      as_utc(m.next_attempt_at), as_utc(m.created_at),
                      as_utc(m.delivered_at) if m.delivered_at else None, m.last_error)


@dataclass(frozen=True)
class WebhookEndpointRow:
    id: int
    url: str
    #: The events it receives; empty: every event.
    events: tuple[str, ...]
    secret: str
    created_at: datetime


def _endpoint(e: WebhookEndpoint) -> WebhookEndpointRow:
    return WebhookEndpointRow(e.id, e.url, tuple(filter(None, e.events.split(","))), e.secret,
                              as_utc(e.created_at))


class WebhookQueries(StoreBase):
    def add_webhook_endpoint(self, url: str, events: tuple[str, ...], secret: str,
                             now: datetime) -> WebhookEndpointRow:
        """A new receiver; events that happen from this transaction on are queued for it."""
        try:
            with self._session() as s, s.begin():
                endpoint = WebhookEndpoint(url=url, events=",".join(events), secret=secret,
                                           created_at=now)
                s.add(endpoint)
                s.flush()
                return _endpoint(endpoint)
        except IntegrityError:
            raise Conflict(f"{url} is already a webhook endpoint; `drip webhook remove` it "
                           "first to change its events.") from None

    def webhook_endpoints(self) -> list[WebhookEndpointRow]:
        with self._session() as s:
            return [_endpoint(e) for e in s.scalars(select(WebhookEndpoint)
                                                   .order_by(WebhookEndpoint.id))]

    def remove_webhook_endpoint(self, url: str) -> bool:
        """Stop posting to `url`; False if it was not an endpoint. Messages already queued
        stay in the log; they are no longer posted to it."""
        with self._session() as s, s.begin():
            return s.execute(delete(WebhookEndpoint).where(WebhookEndpoint.url == url)
                             .returning(WebhookEndpoint.id)).first() is not None

    def due_webhooks(self, now: datetime, limit: int) -> list[WebhookRow]:
        """The oldest pending message of each subscriber, if it is due: a later event of
        theirs never overtakes an earlier one that is still being retried."""
        m = WebhookMessage
        with self._session() as s:
            heads = (select(func.min(m.id).label("id")).where(m.state == "pending")
                     .group_by(func.coalesce(m.subscriber_id, -m.id)).subquery())
            rows = s.scalars(select(m).join(heads, heads.c.id == m.id)
                             .where(m.next_attempt_at <= now).order_by(m.id).limit(limit))
            return [_row(r) for r in rows]

    def take_webhook(self, message_id: int, now: datetime, lease_until: datetime) -> bool:
        """Hold a due message for one sender until `lease_until`; False if another took it."""
        with self._session() as s, s.begin():
            taken = s.execute(update(WebhookMessage).where(
                WebhookMessage.id == message_id, WebhookMessage.state == "pending",
                WebhookMessage.next_attempt_at <= now)
                .values(next_attempt_at=lease_until).returning(WebhookMessage.id)).first()
            return taken is not None

    def record_webhook_attempt(self, message_id: int, now: datetime, *, error: str | None,
                               retry_at: datetime | None) -> None:
        """Delivered (no error), to be retried at `retry_at`, or failed for good."""
        state = "delivered" if error is None else ("pending" if retry_at else "failed")
        with self._session() as s, s.begin():
            s.execute(update(WebhookMessage).where(WebhookMessage.id == message_id).values(
                state=state, attempts=WebhookMessage.attempts + 1,
                next_attempt_at=retry_at or now, last_error=error,
                delivered_at=now if error is None else None))

    def webhook_log(self, limit: int = 100) -> list[WebhookRow]:
        with self._session() as s:
            return [_row(r) for r in s.scalars(select(WebhookMessage)
                                               .order_by(WebhookMessage.id.desc()).limit(limit))]

"""The outgoing webhook queue: enqueue, take the next due message of each subscriber, record
each attempt, and the log."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from drip.clock import as_utc
from drip.models import WebhookMessage
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


class WebhookQueries(StoreBase):
    #: Set by the composition root when DRIP_WEBHOOK_URLS names somewhere to post to.
    outgoing_webhooks: bool = False

    def enqueue_webhook(self, event: str, subscriber_id: int | None, data: dict[str, Any],
                        now: datetime) -> str | None:
        """Queue one event (when outgoing webhooks are on); its stable message id."""
        if not self.outgoing_webhooks:
            return None
        msg_id = "msg_" + secrets.token_urlsafe(18)
        payload = {"type": event, "timestamp": now.isoformat(), "data": data}
        with self._session() as s, s.begin():
            s.add(WebhookMessage(msg_id=msg_id, event=event, subscriber_id=subscriber_id,
                                 payload=payload, state="pending", attempts=0,
                                 next_attempt_at=now, created_at=now))
        return msg_id

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

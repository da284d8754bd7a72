"""The numbers behind GET /metrics, read in one transaction at scrape time.

Everything comes from the database, not from counters in one process, so a scrape of
any `drip serve` sees every scheduler's sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from drip.clock import as_utc
from drip.models import Circuit, Delivery, Heartbeat, WebhookMessage
from drip.store._base import StoreBase


@dataclass(frozen=True)
class MetricsSnapshot:
    #: (sequence, step, state) -> deliveries, for the states sent, failed and unknown
    emails: dict[tuple[str, str, str], int] = field(default_factory=dict)
    oldest_due_at: datetime | None = None  # the oldest scheduled email already due
    oldest_unknown_at: datetime | None = None  # when the oldest `unknown` email was sent
    in_flight: int = 0  # claimed or sending
    circuits: dict[str, str] = field(default_factory=dict)  # provider -> state
    ticks: dict[str, datetime] = field(default_factory=dict)  # worker -> last heartbeat
    webhook_backlog: int = 0  # outgoing webhook messages not yet delivered (pending)
    oldest_webhook_at: datetime | None = None  # when the oldest pending one was queued
    webhooks_failed: int = 0  # given up after a day of retries


class MetricsQueries(StoreBase):
    def metrics_snapshot(self, now: datetime) -> MetricsSnapshot:
        d = Delivery
        with self._session() as s:
            emails = {(r[0], r[1], r[2]): int(r[3]) for r in s.execute(
                select(d.sequence_key, d.step_key, d.state, func.count())
                .where(d.state.in_(("sent", "failed", "unknown")))
                .group_by(d.sequence_key, d.step_key, d.state))}
            oldest_due = s.scalar(select(func.min(d.due_at))
                                  .where(d.state == "scheduled", d.due_at <= now))
            oldest_unknown = s.scalar(select(func.min(func.coalesce(d.sending_at, d.due_at)))
                                      .where(d.state == "unknown"))
            in_flight = s.scalar(select(func.count())
                                 .where(d.state.in_(("claimed", "sending")))) or 0
            circuits = {r[0]: r[1] for r in s.execute(select(Circuit.provider, Circuit.state))}
            ticks = {r[0]: as_utc(r[1]) for r in s.execute(
                select(Heartbeat.worker, Heartbeat.beat_at))}
            w = WebhookMessage
            backlog, oldest_webhook = s.execute(
                select(func.count(), func.min(w.created_at)).where(w.state == "pending")).one()
            webhooks_failed = s.scalar(select(func.count()).where(w.state == "failed")) or 0
        return MetricsSnapshot(emails, as_utc(oldest_due) if oldest_due else None,
                               as_utc(oldest_unknown) if oldest_unknown else None,
                               int(in_flight), circuits, ticks, int(backlog or 0),
                               as_utc(oldest_webhook) if oldest_webhook else None,
                               int(webhooks_failed))

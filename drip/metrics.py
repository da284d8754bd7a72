"""GET /metrics: drip's numbers in the Prometheus text format, named drip_*.

Built with prometheus_client from one store snapshot per scrape (drip.store.metrics), so
every process's work is counted and nothing is kept in memory between scrapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from drip.store import MetricsSnapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Snapshot:
    """A prometheus_client collector over one snapshot."""

    def __init__(self, snapshot: MetricsSnapshot, now: datetime) -> None:
        self.snapshot, self.now = snapshot, now

    def collect(self) -> Iterator[Metric]:
        snap, labels = self.snapshot, ["sequence", "step"]
        sent = CounterMetricFamily("drip_emails_sent", "Emails sent, by sequence and step.",
                                   labels=labels)
        failed = GaugeMetricFamily("drip_emails_failed", "Emails failed for good (until "
                                   "retried), by sequence and step.", labels=labels)
        unknown = GaugeMetricFamily("drip_emails_unknown", "Emails whose fate is unknown "
                                    "(the provider call was cut off), by sequence and step.",
                                    labels=labels)
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {
            "sent": sent, "failed": failed, "unknown": unknown}
        for (sequence, step, state), count in sorted(snap.emails.items()):
            families[state].add_metric([sequence, step], count)
        yield from families.values()
        yield GaugeMetricFamily("drip_due_lag_seconds", "Age of the oldest email that is due "
                                "and not sent yet (0 when none is waiting).",
                                value=_age(snap.oldest_due_at, self.now))
        yield GaugeMetricFamily("drip_unknown_oldest_age_seconds", "Age of the oldest email "
                                "in the unknown state (0 when none).",
                                value=_age(snap.oldest_unknown_at, self.now))
        yield GaugeMetricFamily("drip_claims_in_flight", "Deliveries claimed or being sent.",
                                value=snap.in_flight)
        circuit = GaugeMetricFamily("drip_circuit_open", "1 while a provider's circuit is "
                                    "open (sending halted), else 0.", labels=["provider"])
        for provider, state in sorted(snap.circuits.items()):
            circuit.add_metric([provider], 1 if state == "open" else 0)
        yield circuit
        tick = GaugeMetricFamily("drip_scheduler_last_tick_timestamp_seconds", "When each "
                                 "scheduler last ticked (Unix time).", labels=["worker"])
        for worker, at in sorted(snap.ticks.items()):
            tick.add_metric([worker], at.timestamp())
        yield tick
        yield GaugeMetricFamily("drip_webhook_backlog", "Outgoing webhook messages queued "
                                "and not yet accepted by every receiver.",
                                value=snap.webhook_backlog)
        yield GaugeMetricFamily("drip_webhook_oldest_age_seconds", "Age of the oldest "
                                "outgoing webhook message still queued (0 when none).",
                                value=_age(snap.oldest_webhook_at, self.now))
        yield GaugeMetricFamily("drip_webhooks_failed", "Outgoing webhook messages given up "
                                "after a day of retries.", value=snap.webhooks_failed)


def _age(since: datetime | None, now: datetime) -> float:
    return max(0.0, (now - since).total_seconds()) if since else 0.0


def render(snapshot: MetricsSnapshot, now: datetime) -> bytes:
    """The Prometheus text exposition of one snapshot."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(snapshot, now))
    return generate_latest(registry)

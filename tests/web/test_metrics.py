"""GET /metrics on `drip serve`'s app on loopback: scraped after a real dispatch, its
numbers match the database; other machines need DRIP_METRICS_TOKEN."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, func, select

from drip.clock import FixedClock
from drip.models import Delivery
from drip.runtime import Drip
from drip.subscriptions import enroll
from drip.web import create_app
from tests.conftest import FIXTURES, make_settings
from tests.support.cli import crash_mid_send, fail_due
from tests.support.loopback import serving

TOKEN = "metrics-token-for-tests"


@pytest.fixture
def metrics_drip(tmp_path: Path, database_url: str, clock: FixedClock) -> Iterator[Drip]:
    drip = Drip.from_settings(make_settings(
        tmp_path, database_url, sequences_dir=FIXTURES / "basic" / "sequences",
        templates_dir=FIXTURES / "basic" / "templates", metrics_token=TOKEN), clock)
    try:
        yield drip
    finally:
        drip.close()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def enroll_all(drip: Drip, *emails: str) -> None:
    for address in emails:
        enroll(drip.store, drip.library, email=address, sequence_key="basic",
               now=drip.clock.now(), timezone="UTC", source="purchase")


def test_metrics_after_a_dispatch_match_the_database(metrics_drip: Drip, clock: FixedClock,
                                                     database_url: str) -> None:
    drip = metrics_drip
    enroll_all(drip, "a@example.com", "b@example.com", "c@example.com")
    drip.dispatcher().run_once()  # week 1 to all three
    enroll_all(drip, "d@example.com")
    fail_due(drip)  # d's week 1 refused for good
    enroll_all(drip, "e@example.com")
    crash_mid_send(drip)  # e's week 1 cut off mid-send ...
    clock.advance(minutes=10)
    drip.dispatcher().run_once()  # ... and found unknown by the reaper
    enroll_all(drip, "f@example.com")  # due now, not sent yet
    drip.store.beat("worker-1", clock.now(), clock.now(), "tick")
    clock.advance(minutes=20)

    with serving(create_app(drip)) as url:
        answer = httpx.get(f"{url}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    got = samples(answer.text)

    engine = create_engine(database_url)
    with engine.connect() as conn:
        counts = dict(conn.execute(select(Delivery.state, func.count()).where(
            Delivery.step_key == "week-1").group_by(Delivery.state)).all())
    engine.dispose()
    week1 = (("sequence", "basic"), ("step", "week-1"))
    assert got[("drip_emails_sent_total", week1)] == counts["sent"] == 3
    assert got[("drip_emails_failed", week1)] == counts["failed"] == 1
    assert got[("drip_emails_unknown", week1)] == counts["unknown"] == 1
    assert got[("drip_due_lag_seconds", ())] == 20 * 60  # f's week 1, due 20 minutes ago
    assert got[("drip_unknown_oldest_age_seconds", ())] >= 30 * 60
    assert got[("drip_claims_in_flight", ())] == 0
    assert got[("drip_scheduler_last_tick_timestamp_seconds", (("worker", "worker-1"),))] \
        == (clock.now() - timedelta(minutes=20)).timestamp()


def test_metrics_from_elsewhere_need_the_token(metrics_drip: Drip, tmp_path: Path,
                                               database_url: str, clock: FixedClock) -> None:
    proxied = {"X-Forwarded-For": "203.0.113.9"}
    with serving(create_app(metrics_drip)) as url:
        missing = httpx.get(f"{url}/metrics", headers=proxied)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert "Traceback" not in missing.text
        wrong = httpx.get(f"{url}/metrics", headers={**proxied,
                                                     "Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert httpx.get(f"{url}/metrics", headers={
            **proxied, "Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert httpx.post(f"{url}/metrics").status_code == 405
    untokened = Drip.from_settings(make_settings(tmp_path, database_url), clock)
    try:
        with serving(create_app(untokened)) as url:
            assert httpx.get(f"{url}/metrics").status_code == 200  # loopback
            refused = httpx.get(f"{url}/metrics", headers=proxied)
            assert refused.status_code == 403 and "DRIP_METRICS_TOKEN" in refused.text
    finally:
        untokened.close()


def test_the_webhook_backlog_after_a_scrape_matches_the_queue(
        tmp_path: Path, database_url: str, clock: FixedClock) -> None:
    from drip.models import WebhookMessage
    from drip.webhooks import deliver_due
    from drip.webhooks.endpoints import add_endpoint

    drip = Drip.from_settings(make_settings(
        tmp_path, database_url, sequences_dir=FIXTURES / "basic" / "sequences",
        templates_dir=FIXTURES / "basic" / "templates"), clock)
    try:
        add_endpoint(drip.store, "http://127.0.0.1:9/refuses", [], clock.now())
        enroll_all(drip, "a@example.com", "b@example.com")
        drip.dispatcher().run_once()  # enrolled and email.sent for each: four queued
        deliver_due(drip.store, [], "", clock.now(), timeout=0.3)  # refused: still queued
        clock.advance(minutes=7)
        with serving(create_app(drip)) as url:
            got = samples(httpx.get(f"{url}/metrics").text)
    finally:
        drip.close()
    engine = create_engine(database_url)
    with engine.connect() as conn:
        pending = conn.execute(select(func.count()).where(
            WebhookMessage.state == "pending")).scalar_one()
    engine.dispose()
    assert got[("drip_webhook_backlog", ())] == pending == 4
    assert got[("drip_webhook_oldest_age_seconds", ())] == 7 * 60
    assert got[("drip_webhooks_failed", ())] == 0

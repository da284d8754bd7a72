"""The coach's weekly digest: sent once a week, and a failed send is never logged as sent."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import select

from drip.clock import FixedClock
from drip.digest import send_digest
from drip.errors import TransientProviderError
from drip.message import Message
from drip.models import Event, Lease
from drip.providers.base import SendResult
from drip.runtime import Drip
from drip.subscriptions import enroll
from drip.ticker import Ticker
from tests.conftest import make_settings

COACH = "dayna@example.com"


class Busy:
    """A provider that is down: every email is a transient failure (as SendGrid's 503)."""

    name = "outbox"

    def send_batch(self, messages: Sequence[Message]) -> list[SendResult]:
        return [SendResult(m.delivery_id, "transient", reason="SendGrid answered 503")
                for m in messages]

    def close(self) -> None:
        pass


@pytest.fixture
def coach_drip(tmp_path: Path, database_url: str, clock: FixedClock) -> Iterator[Drip]:
    drip = Drip.from_settings(make_settings(tmp_path, database_url, coach_email=COACH), clock)
    try:
        enroll(drip.store, drip.library, email="ana@example.com", sequence_key="pht-7-week",
               now=clock.now(), timezone="Europe/London")
        yield drip
    finally:
        drip.close()


def events(drip: Drip) -> list[tuple[str, str | None]]:
    with drip.store.engine.connect() as conn:
        return [(r.kind, r.email) for r in conn.execute(
            select(Event.kind, Event.email).where(Event.kind.like("digest%")))]


def test_the_digest_goes_to_the_coach_and_is_recorded(coach_drip: Drip) -> None:
    drip = coach_drip
    digest = send_digest(drip.store, drip.library, drip.provider(), drip.sender, COACH,
                         drip.clock.now())
    assert digest is not None
    (written,) = list(drip.settings.outbox_dir.glob("*.eml"))
    assert COACH in written.read_text()
    assert events(drip) == [("digest_sent", COACH)]


def test_a_digest_the_provider_did_not_take_is_a_failure_not_a_send(coach_drip: Drip) -> None:
    drip = coach_drip
    with pytest.raises(TransientProviderError, match=r"was not sent.*503"):
        send_digest(drip.store, drip.library, Busy(), drip.sender, COACH, drip.clock.now())
    assert events(drip) == [("digest_failed", COACH)]


def test_the_scheduler_tries_a_failed_digest_again(coach_drip: Drip) -> None:
    drip = coach_drip
    ticker = Ticker(drip)
    ticker.provider = Busy()
    ticker.digest()
    with drip.store.engine.connect() as conn:  # this week's lease is free for the retry
        assert conn.execute(select(Lease.name).where(Lease.name.like("digest:%"))).all() == []
    (retry,) = [job for job in ticker.scheduler.get_jobs() if job.id == "digest-retry"]
    assert retry.name == "the coach's weekly digest, again"
    ticker.provider = drip.provider()  # the provider is back
    ticker.digest()
    assert events(drip) == [("digest_failed", COACH), ("digest_sent", COACH)]


def test_the_scheduler_tries_the_digest_again_when_the_database_is_away(
    tmp_path: Path, clock: FixedClock
) -> None:
    # Monday 07:00 falls in the database's maintenance window: nothing answers on the port.
    away = "postgresql+psycopg://postgres@127.0.0.1:1/drip"
    drip = Drip.from_settings(make_settings(tmp_path, away, coach_email=COACH), clock)
    try:
        ticker = Ticker(drip)
        ticker.digest()  # logged, not raised out of the job: APScheduler would only log it
        (retry,) = [job for job in ticker.scheduler.get_jobs() if job.id == "digest-retry"]
        assert retry.name == "the coach's weekly digest, again"
    finally:
        drip.close()

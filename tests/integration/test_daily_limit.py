"""`schedule.max_per_day`: a person in two sequences gets at most that many emails a local
day; the one past the limit waits for the next day's slot (SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drip.clock import FixedClock
from drip.runtime import Drip
from drip.subscriptions import enroll
from tests.conftest import FIXTURES, make_settings

MONDAY = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)


def two_sequences(tmp_path: Path, limit: int | None) -> Path:
    """basic, and a copy of it called second, both with the given max_per_day."""
    folder = tmp_path / "sequences"
    shutil.copytree(FIXTURES / "basic" / "sequences", folder)
    text = (folder / "basic.yaml").read_text()
    if limit is not None:
        text = text.replace('  send_time: "06:30"\n',
                            f'  send_time: "06:30"\n  max_per_day: {limit}\n', 1)
        assert f"max_per_day: {limit}" in text
    (folder / "basic.yaml").write_text(text)
    (folder / "second.yaml").write_text(text.replace("key: basic", "key: second", 1))
    return folder


@pytest.fixture(params=[500, 1], ids=["one-batch", "batch-of-one"])
def limited(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Iterator[Drip]:
    settings = make_settings(tmp_path, database_url, sequences_dir=two_sequences(tmp_path, 1),
                             templates_dir=FIXTURES / "basic" / "templates",
                             batch_size=request.param)
    instance = Drip.from_settings(settings, FixedClock(MONDAY))
    try:
        yield instance
    finally:
        instance.close()


def sent(drip: Drip) -> list[tuple[str, str, datetime]]:
    rows = [r for r in drip.store.deliveries(email="ana@example.com") if r.state == "sent"]
    return sorted((r.sequence_key, r.step_key, r.sent_at) for r in rows if r.sent_at)


def test_the_second_email_of_a_day_waits_for_the_next_day(limited: Drip) -> None:
    drip, clock = limited, limited.clock
    assert isinstance(clock, FixedClock)
    for key in ("basic", "second"):  # week 1 answers each joining at once: never held back
        enroll(drip.store, drip.library, email="ana@example.com", sequence_key=key,
               now=clock.now(), timezone="UTC")
    dispatcher = drip.dispatcher()
    dispatcher.run_once()
    assert [(k, s) for k, s, _ in sent(drip)] == [("basic", "week-1"), ("second", "week-1")]
    # a week later both weeks 2 fall due at 06:30 in the same pass: one goes
    clock.at = datetime(2026, 3, 9, 6, 30, tzinfo=UTC)
    report = dispatcher.run_once()
    assert report.sent_count == 1 and report.rescheduled == 1
    week2 = [(k, at) for k, s, at in sent(drip) if s == "week-2"]
    assert len(week2) == 1
    waiting = [r for r in drip.store.deliveries(email="ana@example.com")
               if r.state == "scheduled" and r.step_key == "week-2"]
    assert [r.due_at for r in waiting] == [datetime(2026, 3, 10, 6, 30, tzinfo=UTC)]
    clock.at = datetime(2026, 3, 9, 20, 0, tzinfo=UTC)  # later that day: still not
    assert drip.dispatcher().run_once().sent_count == 0
    clock.at = datetime(2026, 3, 10, 6, 30, tzinfo=UTC)  # the next day's slot: it goes
    assert dispatcher.run_once().sent_count == 1
    days = sorted(at.date() for k, s, at in sent(drip) if s == "week-2")
    assert days == [datetime(2026, 3, 9).date(), datetime(2026, 3, 10).date()]


def test_without_a_limit_both_go_in_one_pass(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url,
                             sequences_dir=two_sequences(tmp_path, None),
                             templates_dir=FIXTURES / "basic" / "templates")
    clock = FixedClock(MONDAY)
    drip = Drip.from_settings(settings, clock)
    try:
        for key in ("basic", "second"):
            enroll(drip.store, drip.library, email="ana@example.com", sequence_key=key,
                   now=clock.now(), timezone="UTC")
        dispatcher = drip.dispatcher()
        dispatcher.run_once()
        clock.at = MONDAY + timedelta(days=7, hours=1, minutes=30)
        assert dispatcher.run_once().sent_count == 2
    finally:
        drip.close()

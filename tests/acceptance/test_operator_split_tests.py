"""`drip stats --tests` and the experiments in `drip stats`, through the real command: each
variant's numbers and the decision, the leader sent to everyone after (`winner: auto`),
clicks per link and the nudge holdout (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from drip import checkpoints
from drip.runtime import Drip
from drip.subscriptions import enroll
from tests.conftest import FIXTURES
from tests.support.cli import Cli, cli_env


@pytest.fixture
def split_cli(tmp_path: Path, database_url: str) -> Cli:
    return Cli(cli_env(tmp_path, database_url,
                       DRIP_SEQUENCES_DIR=str(FIXTURES / "experiments" / "sequences"),
                       DRIP_TEMPLATES_DIR=str(FIXTURES / "experiments" / "templates")))


@pytest.fixture
def split_live(split_cli: Cli) -> Iterator[Drip]:
    drip = split_cli.drip()
    try:
        yield drip
    finally:
        drip.close()


def variants(database_url: str) -> dict[int, str]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return {int(d): v for d, v in conn.execute(
                text("SELECT delivery_id, variant FROM delivery_tests"))}
    finally:
        engine.dispose()


def enroll_people(drip: Drip, first: int, last: int) -> None:
    for n in range(first, last):
        enroll(drip.store, drip.library, email=f"runner{n}@example.com", sequence_key="split",
               now=drip.clock.now())


def test_stats_tests_shows_each_variant_and_sends_the_leader_to_everyone_after(
        split_cli: Cli, split_live: Drip, database_url: str) -> None:
    [quiet] = split_cli.json("stats", "--tests")
    assert quiet["decision"] == "collecting"
    assert [(v["key"], v["sent"], v["count"]) for v in quiet["variants"]] == [
        ("a", 0, 0), ("b", 0, 0)]
    enroll_people(split_live, 0, 60)
    split_cli("dispatch")
    recorded = variants(database_url)
    assert len(recorded) == 60
    b_sent = [d for d, v in recorded.items() if v == "b"]
    a_sent = [d for d, v in recorded.items() if v == "a"]
    for delivery_id in b_sent + a_sent[:2]:
        checkpoints.answer(split_live.store, split_live.library, delivery_id, "passed",
                           split_live.clock.now())

    [report] = split_cli.json("stats", "--tests")
    assert {k: report[k] for k in ("name", "metric", "decision", "leader")} == {
        "name": "week-1-subject", "metric": "checkpoint_answered", "decision": "B leads",
        "leader": "b"}
    assert report["variants"] == [
        {"key": "a", "sent": len(a_sent), "count": 2, "rate": 2 / len(a_sent)},
        {"key": "b", "sent": len(b_sent), "count": len(b_sent), "rate": 1.0}]
    assert report["sent_to_everyone"] == "b"  # winner: auto, recorded now
    (difference,) = report["differences"]
    assert difference["key"] == "b"
    assert difference["low"] < difference["difference"] < difference["high"]

    screen = split_cli("stats", "--tests").stdout
    assert "week-1-subject (split, week-1): checkpoint_answered" in screen
    row = next(line for line in screen.splitlines() if line.strip().startswith("B "))
    assert row.split()[:4] == ["B", str(len(b_sent)), str(len(b_sent)), "100.0%"]
    assert "Decision: B leads." in " ".join(screen.split())
    assert "Everyone has got B since" in " ".join(screen.split())

    # everyone who joins now gets B, whatever their hash says
    enroll_people(split_live, 60, 80)
    split_cli("dispatch")
    after = {d: v for d, v in variants(database_url).items() if d not in recorded}
    assert len(after) == 20 and set(after.values()) == {"b"}


def test_stats_shows_clicks_per_link_and_the_holdout(split_cli: Cli, split_live: Drip) -> None:
    enroll_people(split_live, 0, 40)
    split_cli("dispatch")
    store = split_live.store
    sent = [r for r in store.deliveries() if r.state == "sent"]
    later = split_live.clock.now() + timedelta(minutes=5)
    for n, row in enumerate(sent[:6]):
        delivery = store.clicked_delivery(row.id)
        assert delivery is not None
        store.record_click(delivery, "https://www.example.com/guide",
                           later + timedelta(minutes=n), None)
    buyer = next(r for r in sent if r.nudge == "offer-a")
    subscriber = store.subscriber_id(buyer.email)
    assert subscriber is not None
    store.record_purchase(source="shop", order_id="o-1", subscriber_id=subscriber,
                          product="offer-a", now=later)

    [stats] = split_cli.json("stats")
    assert stats["links"] == [{"step_key": "week-1", "url": "https://www.example.com/guide",
                               "people": 6, "scanner_hits": 0}]
    holdout = stats["holdout"]
    held = sum(1 for r in sent if r.nudge is None)
    assert (holdout["share"], holdout["holdout"], holdout["exposed"]) == (0.2, held, 40 - held)
    assert (holdout["holdout_bought"], holdout["exposed_bought"]) == (0, 1)

    screen = " ".join(split_cli("stats").stdout.split())
    assert "Clicks per link" in screen and "https://www.example.com/guide 6 0" in screen
    assert (f"Nudge holdout (20% of enrollments get no offers): 0 of {held} (0.0%) bought "
            "without offers, 1 of") in screen

"""`drip stats`: the funnel per step from SendGrid events, checkpoint answers, and nudges."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert

from drip import checkpoints
from drip.models import Event
from drip.runtime import Drip
from tests.conftest import FIXTURES
from tests.support.cli import Cli, cli_env


def provider_events(database_url: str, *events: tuple[str, int, dict[str, Any] | None]) -> None:
    """Events as the SendGrid Event Webhook stores them (drip's kinds): kind, delivery id,
    payload."""
    engine = create_engine(database_url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(insert(Event), [
            {"kind": kind, "delivery_id": delivery_id, "occurred_at": now, "received_at": now,
             "payload": payload, "provider_event_id": f"sg-{i}"}
            for i, (kind, delivery_id, payload) in enumerate(events)])
    engine.dispose()


def test_stats_counts_the_funnel_answers_and_nudges(cli: Cli, live: Drip,
                                                    database_url: str) -> None:
    for email in ("ana@example.com", "ben@example.com", "cy@example.com"):
        cli("enroll", email, "--sequence", "basic")
    cli("dispatch")
    sent = {r["email"]: r["id"] for r in cli.json("sends", "--state", "sent")}
    ana, ben = sent["ana@example.com"], sent["ben@example.com"]
    provider_events(
        database_url,
        ("processed", ana, None), ("delivered", ana, None), ("delivered", ben, None),
        ("opened", ana, None), ("opened", ana, None),  # opened twice: one email opened
        ("clicked", ana, {"url": "https://www.example.com/a?utm_source=drip"}),
        ("clicked", ben, {"url": "https://drip.test/pause/abc"}),  # not the offer's link
        ("delivered", None, None),  # an event drip could not match counts nowhere
    )
    now = live.clock.now()
    checkpoints.answer(live.store, live.library, ana, "passed", now)
    checkpoints.answer(live.store, live.library, ben, "not-yet", now)
    ids = {email: live.store.subscriber_id(email) for email in sent}
    live.store.record_purchase(source="shop", order_id="1", subscriber_id=ids["ana@example.com"],
                               product="offer-a", now=now + timedelta(minutes=5))
    live.store.record_purchase(source="shop", order_id="2", subscriber_id=ids["cy@example.com"],
                               product="offer-a", now=now - timedelta(days=1))  # before

    [funnel] = cli.json("stats", "--sequence", "basic")
    week1, week2, week3 = funnel["steps"]
    assert {k: week1[k] for k in ("step_key", "sent", "delivered", "opened", "clicked",
                                  "passed", "not_yet", "unanswered")} == {
        "step_key": "week-1", "sent": 3, "delivered": 2, "opened": 1, "clicked": 2,
        "passed": 1, "not_yet": 1, "unanswered": 1}
    assert (week2["step_key"], week2["sent"], week2["checkpoint"]) == ("week-2", 0, False)
    assert week3["step_key"] == "week-3"
    assert funnel["offers"] == [{"offer": "offer-a", "name": "Offer A", "shown": 3,
                                 "people": 3, "clicks": 1, "conversions": 1}]

    screen = cli("stats").stdout
    assert "Basic Test Sequence (basic)" in screen
    line = next(row for row in screen.splitlines() if "week-1" in row)
    assert line.split()[:9] == ["week-1", "weekly", "3", "2", "(67%)", "1", "(33%)", "2",
                               "(67%)"]
    assert "█" in line
    nudges = next(row for row in screen.splitlines() if "Offer A" in row)
    assert nudges.split() == ["Offer", "A", "3", "3", "1", "1", "(33%)"]
    assert "no sequence 'nope'" in cli("stats", "--sequence", "nope", code=2).stderr


def test_stats_of_a_quiet_sequence(cli: Cli) -> None:
    [funnel] = cli.json("stats")
    assert [s["sent"] for s in funnel["steps"]] == [0, 0, 0] and funnel["offers"] == []
    assert "No email carried an offer yet." in cli("stats").stdout


def test_an_offer_shown_twice_to_one_buyer_converted_every_person_nudged(
        tmp_path: Path, database_url: str) -> None:
    # With a short cooldown the same offer comes round again (week 1 and week 3). The
    # buyers are people, so the rate was buyers over emails: "1 (50%)" for the one person
    # who was nudged and bought.
    sequences = tmp_path / "sequences"
    shutil.copytree(FIXTURES / "basic" / "sequences", sequences)
    basic = sequences / "basic.yaml"
    basic.write_text(basic.read_text() + "nudges:\n  cooldown_weeks: 1\n")
    cli = Cli(cli_env(tmp_path, database_url, DRIP_SEQUENCES_DIR=str(sequences)))
    cli("enroll", "ana@example.com", "--sequence", "basic")
    cli("dispatch")
    for _ in range(2):
        [due] = cli.json("sends", "--state", "scheduled")
        cli("dispatch", "--now", due["due_at"])
    nudged = [r["nudge"] for r in reversed(cli.json("sends"))]
    assert nudged == ["offer-a", None, "offer-a"]
    drip = cli.drip()
    try:
        drip.store.record_purchase(source="shop", order_id="1", product="offer-a",
                                   subscriber_id=drip.store.subscriber_id("ana@example.com"),
                                   now=datetime.now(UTC) + timedelta(days=30))
    finally:
        drip.close()

    [funnel] = cli.json("stats")
    assert funnel["offers"] == [{"offer": "offer-a", "name": "Offer A", "shown": 2,
                                 "people": 1, "clicks": 0, "conversions": 1}]
    row = next(line for line in cli("stats").stdout.splitlines() if "Offer A" in line)
    assert row.split() == ["Offer", "A", "2", "1", "0", "1", "(100%)"]


def test_digest_now_prints_the_digest_as_it_stood_then(cli: Cli, live: Drip) -> None:
    cli("enroll", "ana@example.com", "--sequence", "basic")
    cli("dispatch")
    today = cli("digest", "--print").stdout
    assert "Where everyone is: Week 1: 1" in today
    yesterday = (live.clock.now() - timedelta(days=1)).isoformat()
    then = cli("digest", "--print", "--now", yesterday).stdout
    assert "Where everyone is: nobody yet" in then
    assert f"{live.clock.now() - timedelta(days=1):%A %d %B %Y}" in then
    assert "ISO 8601" in cli("digest", "--print", "--now", "last week", code=2).stderr

"""Split tests, the nudge holdout and clicks against a real database (SQLite and PostgreSQL):
the variant is recorded on the delivery and is what the email said; stats count it; the
holdout gets no offers; clicks count once per person and link, scanners aside."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from drip import checkpoints
from drip.clock import FixedClock
from drip.experiments.assignment import choose_variant, held_out
from drip.experiments.report import holdout_result, split_results
from drip.runtime import Drip
from drip.subscriptions import enroll
from tests.conftest import fixture_drip

PEOPLE = 60


@pytest.fixture
def split_drip(tmp_path: Path, database_url: str, clock: FixedClock) -> Iterator[Drip]:
    with fixture_drip(tmp_path, database_url, clock, "experiments", clock.at) as instance:
        yield instance


def recorded_variants(drip: Drip) -> dict[int, tuple[int, str, str]]:
    """delivery id -> (enrollment id, test, variant), as the table holds them."""
    engine = create_engine(drip.settings.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT delivery_id, enrollment_id, test_name, variant FROM delivery_tests"))
            return {int(r[0]): (int(r[1]), r[2], r[3]) for r in rows}
    finally:
        engine.dispose()


def subjects(drip: Drip) -> dict[str, str]:
    """Recipient address -> subject of the emails in the outbox."""
    found = {}
    for path in sorted(drip.settings.outbox_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        found[str(message["To"]).split("<")[-1].rstrip(">")] = str(message["Subject"])
    return found


def week_one_for_everyone(drip: Drip, people: int = PEOPLE) -> dict[str, int]:
    """Enroll `people` runners and send week 1; address -> week-1 delivery id."""
    for n in range(people):
        enroll(drip.store, drip.library, email=f"runner{n}@example.com", sequence_key="split",
               name=f"Runner{n} Sample", now=drip.clock.now())
    drip.dispatcher().run_once()
    return {r.email: r.id for r in drip.store.deliveries()
            if (r.step_key, r.state) == ("week-1", "sent")}


def test_the_variant_is_recorded_on_the_delivery_and_is_what_the_email_said(
        split_drip: Drip) -> None:
    sent = week_one_for_everyone(split_drip)
    assert len(sent) == PEOPLE
    recorded = recorded_variants(split_drip)
    sequence = split_drip.library.sequence("split")
    test = sequence.steps[0].test
    assert test is not None
    said = subjects(split_drip)
    for address, delivery_id in sent.items():
        enrollment_id, name, variant = recorded[delivery_id]
        assert name == "week-1-subject"
        assert variant == choose_variant(sequence, test, enrollment_id)
        first_name = address.removesuffix("@example.com").capitalize()
        expected = ("Your first week, " if variant == "b" else "Week 1 for ") + first_name
        assert said[address].startswith(expected)
    assert {v for _, _, v in recorded.values()} == {"a", "b"}  # 60 people: both are used
    # week 2 has no test: nothing recorded for it
    clock = split_drip.clock
    assert isinstance(clock, FixedClock)
    clock.advance(days=8)
    split_drip.dispatcher().run_once()
    assert set(recorded_variants(split_drip)) == set(recorded)


def test_stats_count_each_variant_and_its_checkpoint_answers(split_drip: Drip) -> None:
    sent = week_one_for_everyone(split_drip)
    recorded = recorded_variants(split_drip)
    answered_b = [d for d in sent.values() if recorded[d][2] == "b"]
    answered_a = [d for d in sent.values() if recorded[d][2] == "a"][:2]
    for delivery_id in answered_b + answered_a:
        checkpoints.answer(split_drip.store, split_drip.library, delivery_id, "passed",
                           split_drip.clock.now())
    (result,) = split_results(split_drip.store, split_drip.library, split_drip.clock.now())
    by_key = {v.key: v for v in result.variants}
    counts = {"a": 0, "b": 0}
    for _, _, variant in recorded.values():
        counts[variant] += 1
    assert by_key["a"].sent == counts["a"] and by_key["b"].sent == counts["b"]
    assert by_key["b"].count == len(answered_b) == counts["b"]
    assert by_key["a"].count == 2
    assert by_key["b"].rate == 1.0
    # min_per_variant is 20: with fewer people in a variant, no leader is ever named
    if min(counts.values()) < 20:
        assert result.decision == "collecting"
    else:
        assert result.decision == "B leads"


def test_the_holdout_gets_no_offers_and_stats_compare_its_purchases(split_drip: Drip) -> None:
    sent = week_one_for_everyone(split_drip)
    sequence = split_drip.library.sequence("split")
    rows = {r.id: r for r in split_drip.store.deliveries()}
    recorded = recorded_variants(split_drip)
    held = {d for d in sent.values() if held_out(sequence, recorded[d][0])}
    assert 0 < len(held) < PEOPLE // 2  # a fifth, give or take
    for delivery_id in sent.values():
        assert rows[delivery_id].nudge == (None if delivery_id in held else "offer-a")
    buyer = next(a for a, d in sent.items() if d not in held)
    subscriber = split_drip.store.subscriber_id(buyer)
    assert subscriber is not None
    split_drip.store.record_purchase(source="shop", order_id="o-1", subscriber_id=subscriber,
                                     product="offer-a", now=split_drip.clock.now())
    result = holdout_result(split_drip.store, split_drip.library, "split")
    assert result is not None
    assert (result.holdout, result.exposed) == (len(held), PEOPLE - len(held))
    assert (result.holdout_bought, result.exposed_bought) == (0, 1)
    assert result.difference == pytest.approx(1 / (PEOPLE - len(held)))


def test_clicks_count_once_per_person_and_link_and_never_a_scanners(split_drip: Drip) -> None:
    sent = week_one_for_everyone(split_drip, people=3)
    clock = split_drip.clock
    assert isinstance(clock, FixedClock)
    store = split_drip.store
    first, second, third = (store.clicked_delivery(d) for d in sent.values())
    assert first is not None and second is not None and third is not None
    guide, offer = "https://www.example.com/guide", "https://www.example.com/a"
    clock.advance(minutes=5)
    assert store.record_click(first, guide, clock.now(), None)
    clock.advance(seconds=30)
    assert store.record_click(first, guide, clock.now(), None)  # counted, but once
    clock.advance(seconds=30)
    assert store.record_click(first, offer, clock.now(), None)
    # a scanner opens every link of the second email in the same second
    clock.advance(minutes=1)
    assert store.record_click(second, guide, clock.now(), None)
    clock.advance(milliseconds=300)
    assert not store.record_click(second, offer, clock.now(), None)
    assert not store.record_click(third, guide, clock.now(), "head")
    by_link = {(c.step_key, c.url): c for c in store.link_clicks("split")}
    assert by_link[("week-1", guide)].people == 1
    assert by_link[("week-1", guide)].scanner_hits == 2  # the burst's first click, the HEAD
    assert by_link[("week-1", offer)].people == 1
    assert by_link[("week-1", offer)].scanner_hits == 1

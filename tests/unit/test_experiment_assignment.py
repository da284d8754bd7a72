"""Split-test assignment and the nudge holdout, as properties: stable per enrollment, close to
the weights over many enrollments, and never a change to anyone's program (drip.journey walks
the same journey with and without the test)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drip.experiments.assignment import assignment, choose_variant, held_out
from drip.journey import Email, Persona, walk
from drip.planner import NOT_YET, PASSED, REPEAT_LAST, base_variant
from drip.sequence import NudgeRules, Sequence, SplitTest, load_library
from tests.conftest import FIXTURES, ROOT

SHIPPED = load_library(ROOT / "sequences")
PHT = SHIPPED.sequence("pht-7-week")
GATED = load_library(FIXTURES / "gated" / "sequences")


def split(name: str, weights: list[float] | None, metric: str = "clicked") -> SplitTest:
    keys = "abcdef"[: len(weights) if weights else 2]
    return SplitTest.model_validate({
        "name": name, "metric": metric,
        "variants": [{"key": k, **({"weight": w} if weights else {}),
                      **({} if i == 0 else {"subject": f"Subject {k}"})}
                     for i, (k, w) in enumerate(zip(keys, weights or [1, 1], strict=True))],
    })


def with_tests(sequence: Sequence, holdout: float = 0.0) -> Sequence:
    """The sequence with a split test on every step, and a nudge holdout (validated anew:
    a model_copy would keep the steps the original cached by key)."""
    data = sequence.model_dump()
    for step in data["steps"]:
        step["test"] = split(f"test-{step['key']}", [1, 2, 1]).model_dump()
    data["nudges"]["holdout"] = holdout
    return Sequence.model_validate(data)


weights = st.lists(st.floats(min_value=0.5, max_value=100), min_size=2, max_size=4)


@settings(max_examples=60, deadline=None)
@given(weights, st.integers(min_value=1, max_value=10**12))
def test_assignment_is_stable(given_weights: list[float], enrollment_id: int) -> None:
    test = split("stable", given_weights)
    data = PHT.model_dump()
    data["steps"][0]["test"] = test.model_dump()
    sequence = Sequence.model_validate(data)
    first = choose_variant(sequence, test, enrollment_id)
    assert all(choose_variant(sequence, test, enrollment_id) == first for _ in range(3))
    # the main email carries it, with or without the no-answer note; nothing else does
    assert assignment(sequence, "week-1", "main", enrollment_id) == ("stable", first)
    assert assignment(sequence, "week-1", "main+reminder", enrollment_id) == ("stable", first)
    for variant in ("repeat", "waiting", "see-a-clinician", "checkpoint-reminder"):
        assert assignment(sequence, "week-1", variant, enrollment_id) is None
    assert assignment(sequence, "week-2", "main", enrollment_id) is None


@settings(max_examples=15, deadline=None)
@given(weights, st.integers(min_value=0, max_value=10**9))
def test_assignment_follows_the_weights_over_many_enrollments(given_weights: list[float],
                                                              start: int) -> None:
    test = split("weights", given_weights)
    n = 20_000
    counts = Counter(choose_variant(PHT, test, start + i) for i in range(n))
    total = sum(given_weights)
    for variant, weight in zip(test.variants, given_weights, strict=True):
        share = weight / total
        # five standard deviations of a binomial share: a true bias of 1 point fails
        assert abs(counts[variant.key] / n - share) < 5 * (share * (1 - share) / n) ** 0.5 + 1e-9


def test_left_out_weights_split_evenly() -> None:
    test = split("even", None)
    counts = Counter(choose_variant(PHT, test, i) for i in range(20_000))
    assert abs(counts["a"] / 20_000 - 0.5) < 0.018


def test_two_tests_assign_independently() -> None:
    """A hash of the enrollment alone would give everyone in B of one test B of the next."""
    first, second = split("first", None), split("second", None)
    pairs = Counter((choose_variant(PHT, first, i), choose_variant(PHT, second, i))
                    for i in range(20_000))
    for pair in (("a", "a"), ("a", "b"), ("b", "a"), ("b", "b")):
        assert abs(pairs[pair] / 20_000 - 0.25) < 0.02


@pytest.mark.parametrize("share", [0.1, 0.25])
def test_the_holdout_is_its_share_and_stable(share: float) -> None:
    sequence = PHT.model_copy(update={"nudges": NudgeRules(holdout=share)})  # steps unchanged
    held = [i for i in range(20_000) if held_out(sequence, i)]
    assert abs(len(held) / 20_000 - share) < 0.015
    assert held == [i for i in range(20_000) if held_out(sequence, i)]
    assert not any(held_out(PHT, i) for i in range(1000))  # no holdout: everyone is exposed


personas = st.builds(
    Persona,
    timezone=st.sampled_from(["Europe/London", "America/Los_Angeles", "Australia/Sydney"]),
    joined_at=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31),
                           timezones=st.just(UTC)),
    answers=st.lists(st.sampled_from([PASSED, NOT_YET, None, REPEAT_LAST]),
                     max_size=20).map(tuple),
    buys=st.dictionaries(st.integers(0, 12), st.sampled_from(
        [o.key for o in SHIPPED.offers.offers]), max_size=2),
    pauses=st.dictionaries(st.integers(0, 12), st.integers(1, 4), max_size=2),
    enrollment_id=st.integers(min_value=1, max_value=10**9),
)


def program(emails: list[Email]) -> list[tuple[str, str, datetime, str | None]]:
    """What the runner is sent: which step, which email of it, when, and their answer."""
    return [(e.step_key, e.variant, e.at, e.answer) for e in emails]


@settings(max_examples=150, deadline=None)
@given(personas, st.sampled_from(["pht", "gated"]))
def test_a_test_never_changes_which_step_or_week_someone_gets(persona: Persona,
                                                               which: str) -> None:
    sequence, offers = ((PHT, SHIPPED.offers) if which == "pht"
                        else (GATED.sequence("gated"), GATED.offers))
    without = walk(sequence, offers, persona)
    tested = walk(with_tests(sequence), offers, persona)
    assert program(tested.emails) == program(without.emails)
    assert [e.nudge for e in tested.emails] == [e.nudge for e in without.emails]
    assert tested.ended == without.ended
    for email in tested.emails:
        # the main emails carry this enrollment's variant of their step's test; no other does
        if base_variant(email.variant) == "main":
            assert email.test is not None and email.test.test == f"test-{email.step_key}"
        else:
            assert email.test is None
    # the same enrollment sees the same variant of a test in every email of its step
    seen: dict[str, str] = {}
    for email in tested.emails:
        if email.test is not None:
            assert seen.setdefault(email.test.test, email.test.variant) == email.test.variant


@settings(max_examples=100, deadline=None)
@given(personas)
def test_the_holdout_changes_only_the_offers(persona: Persona) -> None:
    sequence = with_tests(PHT, holdout=0.5)
    exposed = walk(PHT, SHIPPED.offers, persona)
    journey = walk(sequence, SHIPPED.offers, persona)
    assert program(journey.emails) == program(exposed.emails)
    if held_out(sequence, persona.enrollment_id):
        assert all(e.nudge is None for e in journey.emails)
    else:
        assert [e.nudge for e in journey.emails] == [e.nudge for e in exposed.emails]

"""Property tests of the adaptive program over random joins, timezones, answers, purchases
and pauses, using the pure planner (drip.journey)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from drip.addresses import zone
from drip.journey import Persona, walk
from drip.planner import (
    NOT_YET,
    NUDGEABLE,
    PASSED,
    REPEAT_LAST,
    WAITING,
    base_variant,
    is_checkpoint_reminder,
    is_gate,
)
from drip.schedule import is_quiet
from drip.sequence import Goal, NudgeRules, Offer, Offers, Sequence, load_library
from tests.conftest import FIXTURES, ROOT
from tests.unit.test_planner import adaptive

ZONES = ["America/Los_Angeles", "Europe/London", "Australia/Sydney", "Asia/Kolkata",
         "America/St_Johns", "Pacific/Chatham", "UTC"]
OFFERS = Offers(offers=[
    Offer(key="strength-assessment", name="S", url="https://x.example/s", pitch="p",
          weeks=[1, 2]),
    Offer(key="12-week-program", name="T", url="https://x.example/t", pitch="p", weeks=[2, 3]),
    Offer(key="running-assessment", name="R", url="https://x.example/r", pitch="p",
          weeks=[3]),
])


def sequence() -> Sequence:
    seq = adaptive()
    steps = [s.model_copy(update={"nudge": k}) for s, k in
             zip(seq.steps, ["strength-assessment", "12-week-program", "running-assessment"],
                 strict=True)]
    return seq.model_copy(update={
        "steps": steps,
        "nudges": NudgeRules(cooldown_weeks=1, after_not_yet="running-assessment"),
        "goals": [Goal(purchased="12-week-program", stops="nudges")],
    })


SEQUENCE = sequence()

personas = st.builds(
    Persona,
    timezone=st.sampled_from(ZONES),
    joined_at=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31),
                           timezones=st.just(UTC)),
    answers=st.lists(st.sampled_from([PASSED, NOT_YET, None, REPEAT_LAST]),
                     max_size=20).map(tuple),
    buys=st.dictionaries(st.integers(0, 12), st.sampled_from([o.key for o in OFFERS.offers]),
                         max_size=3),
    pauses=st.dictionaries(st.integers(0, 12), st.integers(1, 6), max_size=2),
    unsubscribe_after=st.none() | st.integers(0, 12),
)


SHIPPED = load_library(ROOT / "sequences")
PHT = SHIPPED.sequence("pht-7-week")
GATED = load_library(FIXTURES / "gated" / "sequences")


@settings(max_examples=300, deadline=None)
@given(personas)
def test_the_adaptive_program_keeps_its_promises(persona: Persona) -> None:
    keeps_its_promises(SEQUENCE, OFFERS, persona)


@settings(max_examples=200, deadline=None)
@given(personas)  # every offer these personas buy is one of the shipped offers
def test_the_shipped_pht_program_keeps_its_promises(persona: Persona) -> None:
    keeps_its_promises(PHT, SHIPPED.offers, persona)


gated_personas = st.builds(
    Persona,
    timezone=st.sampled_from(ZONES),
    joined_at=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31),
                           timezones=st.just(UTC)),
    # silence is common: the gates must hold against it
    answers=st.lists(st.sampled_from([PASSED, NOT_YET, None, None, REPEAT_LAST]),
                     max_size=24).map(tuple),
    pauses=st.dictionaries(st.integers(0, 12), st.integers(1, 3), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(gated_personas)
def test_the_gated_program_keeps_its_promises(persona: Persona) -> None:
    keeps_its_promises(GATED.sequence("gated"), GATED.offers, persona)


@settings(max_examples=300, deadline=None)
@given(gated_personas)
def test_the_shipped_pht_program_keeps_its_promises_against_silence(persona: Persona) -> None:
    keeps_its_promises(PHT, SHIPPED.offers, persona)


def keeps_its_promises(sequence: Sequence, offers: Offers, persona: Persona) -> None:
    order = sequence.step_keys
    journey = walk(sequence, offers, persona)
    emails = journey.emails
    assert emails, "everyone gets the first email"
    assert emails[0].step_key == order[0] and emails[0].variant == "main"
    tz = zone(persona.timezone)
    weekly = [e for e in emails if not is_checkpoint_reminder(e.variant)]
    for previous, email in itertools.pairwise(weekly):
        # Steps go out in a valid order: the same step again (a repeat, a waiting email),
        # the next one, or last week's repeat when the runner asked for it.
        i, j = order.index(previous.step_key), order.index(email.step_key)
        assert j in (i - 1, i, i + 1), (previous, email)
        if j == i:
            assert base_variant(email.variant) in ("repeat", WAITING, "see-a-clinician",
                                                   "graduated")
        if j == i - 1:
            assert email.variant == "repeat" and previous.answer == REPEAT_LAST
        # No two weekly emails to one enrollment less than 6 days apart.
        assert email.at - previous.at >= timedelta(days=6), (previous, email)
    for email in emails:
        # No scheduled email in local night hours (week 1 may answer a join at once).
        if email.index:
            assert not is_quiet(email.at, tz), email
    passed_gates: set[str] = set()
    for index, email in enumerate(emails):
        step = sequence.step(email.step_key)
        # No journey reaches a step after a gate without an explicit "passed" at the gate.
        for gate in sequence.steps[:order.index(email.step_key)]:
            if is_gate(sequence, gate):
                assert gate.key in passed_gates, (gate.key, email, emails)
        if email.answer == PASSED:
            passed_gates.add(email.step_key)
        # A reminder follows an unanswered email of its own step, once, a day or more
        # before the next weekly email.
        if is_checkpoint_reminder(email.variant):
            assert index > 0 and emails[index - 1].step_key == email.step_key
            assert emails[index - 1].answer is None
            assert base_variant(emails[index - 1].variant) in ("main", "repeat")
            assert step.checkpoint is not None and step.checkpoint.remind_after
            if index + 1 < len(emails):
                assert not is_checkpoint_reminder(emails[index + 1].variant)
                assert emails[index + 1].at - email.at >= timedelta(days=1)
    # Offers only in main weekly emails, and never more than the cap.
    assert all(e.nudge is None for e in emails if base_variant(e.variant) not in NUDGEABLE)
    cap = sequence.nudges.max_per_enrollment
    if cap is not None:
        assert sum(1 for e in emails if e.nudge) <= cap
    owned: set[str] = set()
    run = 0  # "not yet" answers in a row on one step, since its clinician email (if any)
    previous_step = None
    for email in weekly:
        # No nudge for an offer the subscriber owns (bought before this email).
        assert email.nudge is None or email.nudge not in owned, (email, owned)
        if any(g.purchased in owned and g.stops == "nudges" for g in sequence.goals):
            assert email.nudge is None  # the goal stops every nudge
        if email.index in persona.buys:
            owned.add(persona.buys[email.index])
        # The repeat limit is honoured: after repeat_limit "not yet"s in a row on one step
        # comes the clinician email, never another repeat.
        if email.step_key != previous_step or base_variant(email.variant) == "see-a-clinician":
            run = 0
        previous_step = email.step_key
        run = run + 1 if email.answer == NOT_YET else 0
        assert run <= sequence.repeat_limit, (email, emails)
    # No email after an unsubscribe.
    if persona.unsubscribe_after is not None:
        assert len(emails) <= persona.unsubscribe_after + 1
    assert journey.ended in ("complete", "unsubscribed", "held for the coach", "limit") or (
        journey.ended.startswith("goal: "))
    assert journey.ended != "limit", "a journey must end"

"""Property tests of the adaptive program over random joins, timezones, answers, purchases
and pauses, using the pure planner (drip.journey)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from drip.addresses import zone
from drip.journey import Persona, walk
from drip.planner import NOT_YET, PASSED, base_variant
from drip.schedule import is_quiet
from drip.sequence import Goal, NudgeRules, Offer, Offers, Sequence, load_library
from tests.conftest import ROOT
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
    answers=st.lists(st.sampled_from([PASSED, NOT_YET, None]), max_size=20).map(tuple),
    buys=st.dictionaries(st.integers(0, 12), st.sampled_from([o.key for o in OFFERS.offers]),
                         max_size=3),
    pauses=st.dictionaries(st.integers(0, 12), st.integers(1, 6), max_size=2),
    unsubscribe_after=st.none() | st.integers(0, 12),
)


SHIPPED = load_library(ROOT / "sequences")
PHT = SHIPPED.sequence("pht-7-week")


@settings(max_examples=300, deadline=None)
@given(personas)
def test_the_adaptive_program_keeps_its_promises(persona: Persona) -> None:
    keeps_its_promises(SEQUENCE, OFFERS, persona)


@settings(max_examples=200, deadline=None)
@given(personas)  # every offer these personas buy is one of the shipped offers
def test_the_shipped_pht_program_keeps_its_promises(persona: Persona) -> None:
    keeps_its_promises(PHT, SHIPPED.offers, persona)


def keeps_its_promises(sequence: Sequence, offers: Offers, persona: Persona) -> None:
    order = sequence.step_keys
    journey = walk(sequence, offers, persona)
    emails = journey.emails
    assert emails, "everyone gets the first email"
    assert emails[0].step_key == order[0] and emails[0].variant == "main"
    tz = zone(persona.timezone)
    owned: set[str] = set()
    streak = 0
    for previous, email in itertools.pairwise(emails):
        # Steps go out in a valid order: the same step again (a repeat) or the next one.
        i, j = order.index(previous.step_key), order.index(email.step_key)
        assert j in (i, i + 1), (previous, email)
        if j == i:
            assert base_variant(email.variant) in ("repeat", "see-a-clinician", "graduated")
        # No two emails to one enrollment less than 6 days apart (week 1 excepted below).
        assert email.at - previous.at >= timedelta(days=6), (previous, email)
        # No scheduled email in local night hours.
        assert not is_quiet(email.at, tz), email
    for email in emails:

        # No nudge for an offer the subscriber owns (bought before this email).
        assert email.nudge is None or email.nudge not in owned, (email, owned)
        if "12-week-program" in owned:
            assert email.nudge is None  # the goal stops every nudge
        if email.index in persona.buys:
            owned.add(persona.buys[email.index])
        # The repeat limit is honoured: never more than repeat_limit - 1 repeats in a row
        # before the clinician email.
        if base_variant(email.variant) == "repeat":
            streak += 1
            assert streak < sequence.repeat_limit
        elif base_variant(email.variant) != "see-a-clinician":
            streak = 0
    # No email after an unsubscribe.
    if persona.unsubscribe_after is not None:
        assert len(emails) <= persona.unsubscribe_after + 1
    assert journey.ended in ("complete", "unsubscribed", "held for the coach", "limit")
    assert journey.ended != "limit", "a journey must end"

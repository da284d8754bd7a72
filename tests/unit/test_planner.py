"""The planner and the nudge rules as pure functions: answers decide what comes next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drip.nudges import choose_nudge, sequence_goal_reached
from drip.planner import NOT_YET, PASSED, Sent, decide, email_after
from drip.sequence import Goal, NudgeRules, Offer, Offers, Sequence, load_sequence

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "basic" / "sequences" / "basic.yaml"
T0 = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)


def adaptive() -> Sequence:
    """Three weeks, each with a checkpoint and a repeat, plus graduation and clinician emails."""
    base = load_sequence(FIXTURE)
    from drip.sequence import Checkpoint, Variant

    checkpoint = Checkpoint(question="Did it go well?", passing="No pain above 2/10.")
    steps = [
        step.model_copy(update={
            "checkpoint": checkpoint,
            "repeat": Variant(subject="Again", preheader="Again", template="basic/week.md.j2"),
        })
        for step in base.steps
    ]
    variant = Variant(subject="x", preheader="x", template="basic/week.md.j2")
    return base.model_copy(update={"steps": steps, "graduated": variant,
                                   "see_a_clinician": variant})


def sent(step: str, variant: str = "main", answer: str | None = None, n: int = 1,
         nudge: str | None = None) -> Sent:
    return Sent(n, step, variant, nudge, answer, T0 + timedelta(weeks=n))


def test_first_email_is_the_first_step() -> None:
    assert decide(adaptive(), []) == decide(adaptive(), [])
    first = decide(adaptive(), [])
    assert first is not None and (first.step_key, first.variant) == ("week-1", "main")


def test_passed_moves_on() -> None:
    d = decide(adaptive(), [sent("week-1", answer=PASSED)])
    assert d is not None and (d.step_key, d.variant) == ("week-2", "main")


def test_not_yet_repeats_the_week_then_suggests_a_clinician_then_holds() -> None:
    seq = adaptive()
    history = [sent("week-1", answer=PASSED, n=1), sent("week-2", answer=NOT_YET, n=2)]
    d = decide(seq, history)
    assert d is not None and (d.step_key, d.variant) == ("week-2", "repeat")
    history.append(sent("week-2", "repeat", answer=NOT_YET, n=3))
    d = decide(seq, history)
    assert d is not None and (d.step_key, d.variant) == ("week-2", "see-a-clinician")
    history.append(sent("week-2", "see-a-clinician", answer=NOT_YET, n=4))
    d = decide(seq, history)
    assert d is not None and d.hold is not None and "coach should reach out" in d.hold
    passed = [*history[:-1], sent("week-2", "see-a-clinician", answer=PASSED, n=4)]
    d = decide(seq, passed)
    assert d is not None and (d.step_key, d.variant) == ("week-3", "main")


def test_no_answer_moves_on_with_a_reminder() -> None:
    d = decide(adaptive(), [sent("week-1")])
    assert d is not None and (d.step_key, d.variant) == ("week-2", "main+reminder")


def test_no_answer_policy_repeat() -> None:
    seq = adaptive().model_copy(update={"no_answer": "repeat"})
    d = decide(seq, [sent("week-1")])
    assert d is not None and (d.step_key, d.variant) == ("week-1", "repeat")


def test_graduation_needs_a_pass() -> None:
    seq = adaptive()
    history = [sent("week-1", answer=PASSED), sent("week-2", answer=PASSED, n=2)]
    d = decide(seq, [*history, sent("week-3", answer=PASSED, n=3)])
    assert d is not None and (d.step_key, d.variant) == ("week-3", "graduated")
    assert decide(seq, [*history, sent("week-3", n=3)]) is None  # silence: the program ends
    d = decide(seq, [*history, sent("week-3", answer=NOT_YET, n=3)])
    assert d is not None and d.variant == "repeat"
    assert decide(seq, [*history, sent("week-3", "graduated", n=4)]) is None


def test_a_slot_is_kept_after_the_last_week_for_a_repeat() -> None:
    seq = adaptive()
    after = email_after(seq, "Europe/London", "week-3", "main", T0)
    assert after is not None and after.step_key == "week-3"
    assert email_after(seq, "Europe/London", "week-3", "graduated", T0) is None
    plain = load_sequence(FIXTURE)  # no checkpoint on week-3: nothing can follow it
    assert email_after(plain, "Europe/London", "week-3", "main", T0) is None


OFFERS = Offers(offers=[
    Offer(key="strength-assessment", name="S", url="https://x.example/s", pitch="p", weeks=[1]),
    Offer(key="12-week-program", name="T", url="https://x.example/t", pitch="p", weeks=[2, 3]),
    Offer(key="running-assessment", name="R", url="https://x.example/r", pitch="p", weeks=[3]),
])


def nudging() -> Sequence:
    seq = adaptive()
    steps = [s.model_copy(update={"nudge": k}) for s, k in
             zip(seq.steps, ["strength-assessment", "12-week-program", "running-assessment"],
                 strict=True)]
    return seq.model_copy(update={
        "steps": steps,
        "nudges": NudgeRules(cooldown_weeks=2, after_not_yet="running-assessment"),
        "goals": [Goal(purchased="12-week-program", stops="nudges")],
    })


def pick(step: str, history: list[Sent], owned: set[str] = frozenset(),  # type: ignore[assignment]
         opt_out: bool = False, variant: str = "main") -> str | None:
    return choose_nudge(nudging(), OFFERS, step_key=step, variant=variant, history=history,
                        owned=owned, offers_opt_out=opt_out)


def test_the_coach_placed_offer_comes_first() -> None:
    assert pick("week-1", []) == "strength-assessment"


def test_never_an_offer_already_owned() -> None:
    assert pick("week-1", [], owned={"strength-assessment"}) is None
    # The placed offer is owned: another offer that fits the week takes its place.
    assert pick("week-3", [], owned={"running-assessment"}) == "12-week-program"
    assert pick("week-3", [], owned={"running-assessment", "12-week-program"}) is None


def test_never_the_same_offer_within_the_cooldown() -> None:
    history = [sent("week-2", nudge="12-week-program", n=2)]
    assert pick("week-2", history) is None  # placed offer on cooldown, none other fits week 2
    assert pick("week-3", history) == "running-assessment"


def test_the_assessment_takes_precedence_after_a_week_that_took_repeated_not_yet() -> None:
    struggled = [sent("week-1", answer=NOT_YET, n=1), sent("week-1", "repeat", NOT_YET, n=2),
                 sent("week-1", "see-a-clinician", PASSED, n=3)]
    assert pick("week-2", struggled) == "running-assessment"
    once = [sent("week-1", answer=NOT_YET, n=1), sent("week-1", "repeat", PASSED, n=2)]
    assert pick("week-2", once) == "12-week-program"


def test_goals_and_opt_out_stop_all_nudges() -> None:
    assert pick("week-1", [], owned={"12-week-program"}) is None
    assert pick("week-1", [], opt_out=True) is None
    seq = nudging().model_copy(update={"goals": [Goal(purchased="12-week-program",
                                                      stops="sequence")]})
    assert sequence_goal_reached(seq, {"12-week-program"}) == "12-week-program"
    assert sequence_goal_reached(seq, set()) is None


@pytest.mark.parametrize("answer", [PASSED, NOT_YET, None])
def test_unknown_steps_end_the_plan(answer: str | None) -> None:
    assert decide(adaptive(), [sent("week-99", answer=answer)]) is None


def test_not_yet_without_a_repeat_moves_on_without_the_no_answer_reminder() -> None:
    # week-1 of the basic fixture has a checkpoint but no repeat: a "not yet" used to get
    # week-2 "main+reminder", whose words say they did not answer last week's checkpoint
    plain = load_sequence(FIXTURE)
    d = decide(plain, [sent("week-1", answer=NOT_YET)])
    assert d is not None and (d.step_key, d.variant) == ("week-2", "main")
    seq = adaptive()
    last = seq.steps[-1].model_copy(update={"repeat": None})
    seq = seq.model_copy(update={"steps": [*seq.steps[:-1], last]})
    history = [sent("week-1", answer=PASSED), sent("week-2", answer=PASSED, n=2)]
    assert decide(seq, [*history, sent("week-3", answer=NOT_YET, n=3)]) is None

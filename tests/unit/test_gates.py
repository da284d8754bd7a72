"""Gates, waiting emails, checkpoint reminders and the late "repeat last week", as pure
planner functions over the gated fixture (tests/fixtures/gated): silence never moves a
runner past a gate, and nothing pitches outside a main weekly email."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from drip.errors import SequenceError
from drip.nudges import choose_nudge
from drip.planner import (
    CHECKPOINT_REMINDER,
    NOT_YET,
    PASSED,
    REPEAT_LAST,
    WAITING,
    Sent,
    decide,
    email_after,
    late_repeat_step,
    weekly_after,
)
from drip.sequence import Sequence, load_library, load_sequence
from tests.conftest import FIXTURES

GATED = load_library(FIXTURES / "gated" / "sequences")
SEQ = GATED.sequence("gated")
T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)  # Monday 06:30 in Los Angeles (PST)
LA = "America/Los_Angeles"


def with_step(key: str, **changes: object) -> Sequence:
    """The gated sequence with one step changed (validated afresh, as if loaded)."""
    data = SEQ.model_dump()
    for step in data["steps"]:
        if step["key"] == key:
            for name, value in changes.items():
                if name.startswith("checkpoint."):
                    step["checkpoint"][name.removeprefix("checkpoint.")] = value
                else:
                    step[name] = value
    return Sequence.model_validate(data)


def sent(step: str, variant: str = "main", answer: str | None = None, n: int = 1,
         nudge: str | None = None) -> Sent:
    return Sent(n, step, variant, nudge, answer, T0 + timedelta(weeks=n), delivery_id=100 + n)


def to_week_2() -> list[Sent]:
    return [sent("week-1", answer=PASSED, n=1), sent("week-2", n=2)]


def test_silence_at_a_gate_sends_the_waiting_email_never_the_next_week() -> None:
    history = to_week_2()
    d = decide(SEQ, history)
    assert d is not None and (d.step_key, d.variant, d.hold) == ("week-2", WAITING, None)


def test_a_gate_waits_hold_limit_times_then_pauses_for_the_coach() -> None:
    history = to_week_2()
    for n in range(SEQ.hold_limit):
        d = decide(SEQ, history)
        assert d is not None and d.variant == WAITING and d.hold is None
        history.append(sent("week-2", WAITING, n=3 + n))
    d = decide(SEQ, history)
    assert d is not None and d.hold is not None
    assert d.hold.startswith("Silent at the week-2 checkpoint")
    assert f"{SEQ.hold_limit} waiting emails" in d.hold
    # a checkpoint reminder in between changes nothing: it is not a weekly email
    with_reminder = [*to_week_2(), sent("week-2", CHECKPOINT_REMINDER, n=3)]
    d = decide(SEQ, with_reminder)
    assert d is not None and (d.variant, d.hold) == (WAITING, None)


@pytest.mark.parametrize(("answer", "expected"), [
    (PASSED, ("week-3", "main")),
    (NOT_YET, ("week-2", "repeat")),
])
def test_an_answer_to_the_waiting_email_moves_the_program(answer: str,
                                                          expected: tuple[str, str]) -> None:
    history = [*to_week_2(), sent("week-2", WAITING, answer, n=3)]
    d = decide(SEQ, history)
    assert d is not None and (d.step_key, d.variant) == expected and d.hold is None


def test_a_late_pass_after_the_reminder_counts_for_the_gate() -> None:
    # the reminder's buttons answer the email it reminds of
    history = [sent("week-1", answer=PASSED, n=1), sent("week-2", answer=PASSED, n=2),
               sent("week-2", CHECKPOINT_REMINDER, n=3)]
    d = decide(SEQ, history)
    assert d is not None and (d.step_key, d.variant) == ("week-3", "main")


def test_a_gate_without_a_waiting_email_pauses_at_once() -> None:
    seq = with_step("week-2", waiting=None)
    d = decide(seq, to_week_2())
    assert d is not None and d.hold is not None and "no waiting email" in d.hold
    # "not yet" without a repeat at a gate never moves on either
    seq = with_step("week-2", waiting=None, repeat=None)
    d = decide(seq, [sent("week-1", answer=PASSED), sent("week-2", answer=NOT_YET, n=2)])
    assert d is not None and d.step_key == "week-2" and d.hold is not None


def test_gate_true_alone_is_enough_to_stop_silence() -> None:
    seq = with_step("week-2", **{"checkpoint.no_answer": None})  # the sequence's: advance
    assert seq.no_answer_for(seq.step("week-2")) == "advance"
    d = decide(seq, to_week_2())
    assert d is not None and (d.step_key, d.variant) == ("week-2", WAITING)


def test_the_last_gate_graduates_only_on_a_pass() -> None:
    before = [sent("week-1", answer=PASSED, n=1), sent("week-2", answer=PASSED, n=2),
              sent("week-3", answer=PASSED, n=3)]
    d = decide(SEQ, [*before, sent("week-4", n=4)])
    assert d is not None and (d.step_key, d.variant) == ("week-4", WAITING)
    d = decide(SEQ, [*before, sent("week-4", n=4), sent("week-4", WAITING, PASSED, n=5)])
    assert d is not None and (d.step_key, d.variant) == ("week-4", "graduated")


def test_no_answer_repeat_repeats_then_pauses_a_silent_runner() -> None:
    seq = with_step("week-1", **{"checkpoint.no_answer": "repeat"})
    history = [sent("week-1", n=1)]
    for n in range(seq.hold_limit):
        d = decide(seq, history)
        assert d is not None and (d.step_key, d.variant, d.hold) == ("week-1", "repeat", None)
        history.append(sent("week-1", "repeat", n=2 + n))
    d = decide(seq, history)
    assert d is not None and d.hold is not None and "repeat emails" in d.hold


def test_silence_after_the_clinician_email_holds_for_the_coach() -> None:
    history = [sent("week-1", answer=NOT_YET, n=1), sent("week-1", "repeat", NOT_YET, n=2),
               sent("week-1", "see-a-clinician", n=3)]
    d = decide(SEQ, history)
    assert d is not None and d.hold is not None and "coach should reach out" in d.hold


def test_ordinary_weeks_still_advance_on_silence_with_the_note() -> None:
    d = decide(SEQ, [sent("week-1", n=1)])
    assert d is not None and (d.step_key, d.variant) == ("week-2", "main+reminder")


def test_repeat_last_week_sends_last_weeks_repeat_next() -> None:
    history = [sent("week-1", n=1), sent("week-2", "main+reminder", REPEAT_LAST, n=2)]
    assert late_repeat_step(SEQ, "week-2", "main+reminder") == SEQ.step("week-1")
    d = decide(SEQ, history)
    assert d is not None and (d.step_key, d.variant) == ("week-1", "repeat")
    history.append(sent("week-1", "repeat", PASSED, n=3))
    d = decide(SEQ, history)
    assert d is not None and (d.step_key, d.variant) == ("week-2", "main")


def test_repeat_last_week_is_offered_only_after_silence_moved_someone_on() -> None:
    assert late_repeat_step(SEQ, "week-2", "main") is None  # they answered: no note
    assert late_repeat_step(SEQ, "week-1", "main+reminder") is None  # nothing before it
    # never to go back behind a gate: a gate is only ever left with a pass
    assert late_repeat_step(SEQ, "week-3", "main+reminder") is None
    # a stale or forged repeat-last where none is offered counts as no answer
    d = decide(SEQ, [sent("week-1", answer=REPEAT_LAST, n=1)])
    assert d is not None and (d.step_key, d.variant) == ("week-2", "main+reminder")


def test_a_gate_email_plans_a_reminder_five_days_on_at_the_send_time() -> None:
    out = T0 + timedelta(minutes=3)
    following = email_after(SEQ, LA, "week-2", "main", out)
    assert following is not None and following.variant == CHECKPOINT_REMINDER
    local = following.slot.due_at.astimezone(ZoneInfo(LA))
    assert (local.date() - out.astimezone(local.tzinfo).date()).days == 5
    assert (local.hour, local.minute) == (6, 30)
    assert following.slot.window_end_at is not None  # never into the night
    # after the reminder, the weekly slot is the one the gate email would have had
    after = email_after(SEQ, LA, "week-2", CHECKPOINT_REMINDER, following.slot.due_at)
    weekly = weekly_after(SEQ, LA, "week-2", "main", out)
    assert after is not None and weekly is not None
    assert after.slot == weekly.slot and (after.step_key, after.variant) == ("week-2", WAITING)
    assert (weekly.slot.due_at - out).days in (6, 7)


def test_reminders_follow_main_and_repeat_emails_only() -> None:
    for variant in ("main", "repeat"):
        following = email_after(SEQ, LA, "week-2", variant, T0)
        assert following is not None and following.variant == CHECKPOINT_REMINDER, variant
    for variant in (WAITING, "see-a-clinician", CHECKPOINT_REMINDER):
        following = email_after(SEQ, LA, "week-2", variant, T0)
        assert following is None or following.variant != CHECKPOINT_REMINDER, variant
    following = email_after(SEQ, LA, "week-1", "main", T0)  # no remind_after on week 1
    assert following is not None and following.variant != CHECKPOINT_REMINDER


def test_no_reminder_when_the_next_email_would_come_first() -> None:
    # Week 1 goes at once on a Wednesday; training weeks start on Mondays, at least five
    # days after joining: week 2 comes five days on, so a reminder five days on cannot.
    data = with_step("week-1", **{"checkpoint.remind_after": "5 days"}).model_dump()
    data["schedule"]["weekday"] = "monday"
    seq = Sequence.model_validate(data)
    wednesday = datetime(2026, 3, 4, 19, 0, tzinfo=UTC)
    following = email_after(seq, LA, "week-1", "main", wednesday)
    assert following is not None and following.variant != CHECKPOINT_REMINDER
    assert following.slot.due_at.astimezone(ZoneInfo(LA)).strftime("%A %d") == "Monday 09"
    thursday = wednesday + timedelta(days=1)  # week 2 is 11 days on: the reminder comes first
    following = email_after(seq, LA, "week-1", "main", thursday)
    assert following is not None and following.variant == CHECKPOINT_REMINDER


def test_a_reminder_as_long_as_the_week_is_refused_with_its_line(tmp_path: Path) -> None:
    text = (FIXTURES / "gated" / "sequences" / "gated.yaml").read_text()
    bad = tmp_path / "gated.yaml"
    bad.write_text(text.replace('remind_after: 5 days', 'remind_after: 7 days', 1))
    with pytest.raises(SequenceError) as caught:
        load_sequence(bad)
    assert caught.value.field == "steps.1.checkpoint.remind_after"
    assert caught.value.line == next(n for n, line in enumerate(bad.read_text().splitlines(), 1)
                                     if "remind_after: 7 days" in line)
    assert "shorter" in caught.value.problem
    bad.write_text(text.replace('remind_after: 5 days', 'remind_after: soon', 1))
    with pytest.raises(SequenceError) as caught:
        load_sequence(bad)
    assert caught.value.field == "steps.1.checkpoint.remind_after"


@pytest.mark.parametrize("variant", ["repeat", WAITING, CHECKPOINT_REMINDER, "see-a-clinician",
                                     "graduated"])
def test_only_main_emails_carry_an_offer(variant: str) -> None:
    assert choose_nudge(SEQ, GATED.offers, step_key="week-1", variant="main", history=[],
                        owned=set(), offers_opt_out=False) == "offer-a"
    assert choose_nudge(SEQ, GATED.offers, step_key="week-1", variant=variant, history=[],
                        owned=set(), offers_opt_out=False) is None


def test_at_most_max_per_enrollment_offers() -> None:
    history = [sent("week-1", answer=PASSED, n=1, nudge="offer-a"),
               sent("week-2", answer=PASSED, n=2, nudge="offer-b")]
    # offer-c fits week 3 and is not on cooldown, but two offers were shown already
    assert SEQ.nudges.max_per_enrollment == 2
    assert choose_nudge(SEQ, GATED.offers, step_key="week-3", variant="main",
                        history=history[:1], owned=set(), offers_opt_out=False) == "offer-c"
    assert choose_nudge(SEQ, GATED.offers, step_key="week-3", variant="main", history=history,
                        owned=set(), offers_opt_out=False) is None


def test_the_no_answer_note_is_previewed_only_where_silence_moves_on() -> None:
    """Previews, lint and simulate list every email drip can send: the note "you did not
    answer last week" never follows a gate (silence there waits), so no such email exists."""
    from drip.render import every_email
    from tests.conftest import ROOT

    noted = {(s.key, step) for s, step, variant, _ in every_email(GATED)
             if variant == "main+reminder"}
    assert noted == {("gated", "week-2"), ("gated", "week-4")}  # after weeks 1 and 3
    shipped = load_library(ROOT / "sequences")
    noted = {step for s, step, variant, _ in every_email(shipped) if variant == "main+reminder"}
    assert noted == {"week-2", "week-3", "week-4", "week-5", "week-7"}  # not after week 5

"""The planner: which email an enrollment gets next, and when. Pure functions over plain data.

The rule of the program is "move on when the tendon is ready, not when the calendar says
so": the email after a checkpoint depends on the answer. Each email's slot is planned when
the one before it goes out; what it becomes (next week, a repeat, the clinician email,
graduation) is decided at dispatch, when the answer is known.
"""

from __future__ import annotations

from collections.abc import Sequence as Seq
from dataclasses import dataclass
from datetime import datetime

from drip.addresses import zone
from drip.schedule import Slot, immediate_slot, slot_after
from drip.sequence import Sequence

PASSED = "passed"
NOT_YET = "not-yet"
ANSWERS = (PASSED, NOT_YET)
REMINDER = "+reminder"


@dataclass(frozen=True)
class NextEmail:
    step_key: str
    slot: Slot
    variant: str = "main"


@dataclass(frozen=True)
class Sent:
    """One email of an enrollment that went out (or may have), with the checkpoint answer."""

    seq_no: int
    step_key: str
    variant: str
    nudge: str | None
    answer: str | None
    went_out_at: datetime


@dataclass(frozen=True)
class Decision:
    """What the next email is. `hold` set: do not send; hold the enrollment for a human."""

    step_key: str
    variant: str
    hold: str | None = None


def base_variant(variant: str) -> str:
    return variant.removesuffix(REMINDER)


def has_reminder(variant: str) -> bool:
    return variant.endswith(REMINDER)


def not_yet_streak(history: Seq[Sent]) -> int:
    """How many "not yet" answers in a row, most recent first, on the current step."""
    if not history:
        return 0
    step_key = history[-1].step_key
    streak = 0
    for item in reversed(history):
        if item.step_key != step_key or item.answer != NOT_YET:
            break
        streak += 1
    return streak


def decide(sequence: Sequence, history: Seq[Sent]) -> Decision | None:
    """The email that follows `history` (oldest first); None when the program is over."""
    if not history:
        return Decision(sequence.steps[0].key, "main")
    last = history[-1]
    if last.step_key not in sequence.step_keys:
        return None
    step = sequence.step(last.step_key)
    base = base_variant(last.variant)
    if base == "graduated" or step.checkpoint is None:
        return _advance(sequence, last.step_key, reminder=False,
                        checkpointed=step.checkpoint is not None and base != "graduated")
    if last.answer == PASSED:
        return _advance(sequence, step.key, reminder=False, checkpointed=True)
    if last.answer == NOT_YET:
        if base == "see-a-clinician":
            return Decision(step.key, "see-a-clinician", hold=(
                f"Answered 'not yet' on {step.key} again after the clinician email; "
                "the coach should reach out before the program goes on."))
        if not_yet_streak(history) >= sequence.repeat_limit and sequence.see_a_clinician:
            return Decision(step.key, "see-a-clinician")
        if step.repeat is not None:
            return Decision(step.key, "repeat")
        # No repeat version to send: move on as silence does, but without the reminder,
        # which would tell them they did not answer. Never to graduation: that needs a pass.
        following = sequence.next_step(step.key)
        return Decision(following.key, "main") if following is not None else None
    if sequence.no_answer == "repeat" and step.repeat is not None:
        return Decision(step.key, "repeat")
    return _advance(sequence, step.key, reminder=True, checkpointed=True)


def _advance(sequence: Sequence, step_key: str, *, reminder: bool,
             checkpointed: bool) -> Decision | None:
    suffix = REMINDER if reminder else ""
    following = sequence.next_step(step_key)
    if following is not None:
        return Decision(following.key, "main" + suffix)
    if checkpointed and not reminder and sequence.graduated is not None:
        return Decision(step_key, "graduated")  # graduation needs a "passed", not silence
    return None


def first_email(sequence: Sequence, timezone: str, joined_at: datetime) -> NextEmail:
    """The first email: at the first dispatch after joining if the step says 'immediately'."""
    step = sequence.steps[0]
    if step.immediate:
        return NextEmail(step.key, immediate_slot(joined_at))
    slot = slot_after(joined_at, step, sequence.schedule, zone(timezone), after_immediate=False)
    return NextEmail(step.key, slot)


def email_after(sequence: Sequence, timezone: str, step_key: str, variant: str,
                went_out_at: datetime) -> NextEmail | None:
    """The slot of the email after this one, with a provisional step; None when none can follow.

    The provisional step assumes no answer; dispatch decides for real when the slot comes.
    """
    if step_key not in sequence.step_keys or base_variant(variant) == "graduated":
        return None
    step = sequence.step(step_key)
    provisional = decide(sequence, [Sent(0, step_key, variant, None, None, went_out_at)])
    if provisional is None:
        if step.checkpoint is None or step.repeat is None:
            return None  # nothing can follow, whatever the answer
        provisional = Decision(step.key, "repeat")
    paced_by = sequence.next_step(step_key) or step
    slot = slot_after(went_out_at, paced_by, sequence.schedule, zone(timezone),
                      after_immediate=step.immediate and base_variant(variant) == "main")
    return NextEmail(provisional.step_key, slot, provisional.variant)

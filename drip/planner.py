"""The planner: which email an enrollment gets next, and when. Pure functions over plain data.

The rule of the program is "move on when the tendon is ready, not when the calendar says
so": the email after a checkpoint depends on the answer. Each email's slot is planned when
the one before it goes out; what it becomes (next week, a repeat, a waiting email, the
clinician email, graduation) is decided at dispatch, when the answer is known.

Silence is never a pass at a gate (`no_answer: hold`): the program sends the step's
waiting email instead, and after `hold_limit` of them pauses the enrollment for the coach.
A checkpoint with `remind_after` gets one short reminder between weekly emails; the
reminder asks the same question, and its buttons answer the email it reminds of.
"""

from __future__ import annotations

from collections.abc import Sequence as Seq
from dataclasses import dataclass
from datetime import datetime, timedelta

from drip.addresses import zone
from drip.schedule import (
    SendPreference,
    Slot,
    immediate_slot,
    next_open_slot,
    personal,
    slot_after,
    slot_on,
)
from drip.sequence import Sequence, Step

PASSED = "passed"
NOT_YET = "not-yet"
#: The late "not yet" from the no-answer note: "repeat last week instead" of going on.
REPEAT_LAST = "repeat-last"
ANSWERS = (PASSED, NOT_YET)
#: The suffix of an email sent after silence moved someone on: it carries the no-answer note.
REMINDER = "+reminder"
#: The short email between weekly emails that asks an unanswered checkpoint again.
CHECKPOINT_REMINDER = "checkpoint-reminder"
WAITING = "waiting"
#: The variants that carry the checkpoint's question of their step.
ASKING = ("main", "repeat", WAITING, "see-a-clinician")
#: Only these may carry an offer; a repeat, waiting, reminder, clinician or graduation
#: email never does.
NUDGEABLE = ("main",)


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
    delivery_id: int = 0


@dataclass(frozen=True)
class Decision:
    """What the next email is. `hold` set: do not send; hold the enrollment for a human."""

    step_key: str
    variant: str
    hold: str | None = None


#: Between a main email and the tag whose branch it is: "main/struggling" (drip.tags).
BRANCH = "/"


def base_variant(variant: str) -> str:
    """The kind of email a variant is: "main" for "main/struggling+reminder"."""
    return variant.removesuffix(REMINDER).split(BRANCH, 1)[0]


def branch_of(variant: str) -> str | None:
    """The tag whose branch of the main email this variant is, if it is one."""
    parts = variant.removesuffix(REMINDER).split(BRANCH, 1)
    return parts[1] if len(parts) == 2 else None


def has_reminder(variant: str) -> bool:
    return variant.endswith(REMINDER)


def is_checkpoint_reminder(variant: str) -> bool:
    return base_variant(variant) == CHECKPOINT_REMINDER


def progress(history: Seq[Sent]) -> list[Sent]:
    """The emails that move the program: every one but the checkpoint reminders, whose
    answers are recorded on the email they remind of."""
    return [item for item in history if not is_checkpoint_reminder(item.variant)]


def not_yet_streak(history: Seq[Sent]) -> int:
    """How many "not yet" answers in a row, most recent first, on the current step."""
    steps = progress(history)
    if not steps:
        return 0
    step_key = steps[-1].step_key
    streak = 0
    for item in reversed(steps):
        if item.step_key != step_key or item.answer != NOT_YET:
            break
        streak += 1
    return streak


def silent_streak(history: Seq[Sent], variant: str) -> int:
    """How many unanswered `variant` emails in a row, most recent first, on the current step."""
    steps = progress(history)
    if not steps:
        return 0
    step_key = steps[-1].step_key
    streak = 0
    for item in reversed(steps):
        if item.step_key != step_key or item.answer is not None:
            break
        if base_variant(item.variant) == variant:
            streak += 1
    return streak


def is_gate(sequence: Sequence, step: Step) -> bool:
    """A checkpoint that only an explicit "passed" may get past."""
    return step.checkpoint is not None and (
        step.checkpoint.gate or sequence.no_answer_for(step) == "hold")


def silence_moves_on(sequence: Sequence, step: Step) -> bool:
    """Whether an unanswered checkpoint on `step` moves the subscriber on to the next step
    (with the no-answer note), as `_silence` decides."""
    if step.checkpoint is None:
        return False
    rule = sequence.no_answer_for(step)
    if rule == "repeat" and step.repeat is not None:
        return False
    return not (rule == "hold" or is_gate(sequence, step))


def late_repeat_step(sequence: Sequence, step_key: str, variant: str) -> Step | None:
    """The step whose repeat a "repeat last week instead" on this email would send: the
    one before it, when silence moved the subscriber on from it and it has a repeat."""
    if not has_reminder(variant) or step_key not in sequence.step_keys:
        return None
    previous = sequence.previous_step(step_key)
    if previous is None or previous.repeat is None or is_gate(sequence, previous):
        return None
    return previous


def decide(sequence: Sequence, history: Seq[Sent]) -> Decision | None:
    """The email that follows `history` (oldest first); None when the program is over."""
    steps = progress(history)
    if not steps:
        return Decision(sequence.steps[0].key, "main")
    last = steps[-1]
    if last.step_key not in sequence.step_keys:
        return None
    step = sequence.step(last.step_key)
    base = base_variant(last.variant)
    if base == "graduated" or step.checkpoint is None:
        return _advance(sequence, last.step_key, reminder=False,
                        checkpointed=step.checkpoint is not None and base != "graduated")
    if last.answer == REPEAT_LAST:
        previous = late_repeat_step(sequence, step.key, last.variant)
        if previous is not None:
            return Decision(previous.key, "repeat")
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
        if is_gate(sequence, step):
            return _wait(sequence, step, history)
        # No repeat version to send: move on as silence does, but without the reminder,
        # which would tell them they did not answer. Never to graduation: that needs a pass.
        following = sequence.next_step(step.key)
        return Decision(following.key, "main") if following is not None else None
    return _silence(sequence, step, base, history)


def _silence(sequence: Sequence, step: Step, base: str, history: Seq[Sent]) -> Decision | None:
    """What follows an email whose checkpoint went unanswered."""
    if base == "see-a-clinician":
        return Decision(step.key, "see-a-clinician", hold=(
            f"No answer on {step.key} after the clinician email; the coach should reach "
            "out before the program goes on."))
    rule = sequence.no_answer_for(step)
    if rule == "repeat" and step.repeat is not None:
        if silent_streak(history, "repeat") >= sequence.hold_limit:
            return Decision(step.key, "repeat", hold=_silent_reason(sequence, step, "repeat"))
        return Decision(step.key, "repeat")
    if rule == "hold" or is_gate(sequence, step):  # a gate never lets silence move anyone on
        return _wait(sequence, step, history)
    return _advance(sequence, step.key, reminder=True, checkpointed=True)


def _wait(sequence: Sequence, step: Step, history: Seq[Sent]) -> Decision:
    """The gate waits: its waiting email, or a hold for the coach once `hold_limit` of them
    went unanswered (or at once, if the step has no waiting email to send)."""
    if step.waiting is None:
        return Decision(step.key, WAITING, hold=(
            f"Silent at the {step.key} gate, which needs an explicit 'passed' and has no "
            "waiting email to send; the coach should reach out (add a 'waiting:' email to "
            "the step so drip can ask again)."))
    if silent_streak(history, WAITING) >= sequence.hold_limit:
        return Decision(step.key, WAITING, hold=_silent_reason(sequence, step, WAITING))
    return Decision(step.key, WAITING)


SILENT_AT_GATE = "Silent at the"


def _silent_reason(sequence: Sequence, step: Step, variant: str) -> str:
    count = sequence.hold_limit
    return (f"{SILENT_AT_GATE} {step.key} checkpoint: no answer to the week {step.week} "
            f"email or the {count} {variant} email{'s' if count != 1 else ''} after it; "
            "paused so the coach can reach out. An answer to the last email resumes it.")


def _advance(sequence: Sequence, step_key: str, *, reminder: bool,
             checkpointed: bool) -> Decision | None:
    suffix = REMINDER if reminder else ""
    following = sequence.next_step(step_key)
    if following is not None:
        return Decision(following.key, "main" + suffix)
    if checkpointed and not reminder and sequence.graduated is not None:
        return Decision(step_key, "graduated")  # graduation needs a "passed", not silence
    return None


def first_email(sequence: Sequence, timezone: str, joined_at: datetime,
                preference: SendPreference | None = None) -> NextEmail:
    """The first email: at the first dispatch after joining if the step says 'immediately'
    (inside the send window, when the sequence sets one)."""
    step = sequence.steps[0]
    schedule = personal(sequence.schedule, preference)
    if step.immediate:
        return NextEmail(step.key, immediate_slot(joined_at, schedule, zone(timezone)))
    slot = slot_after(joined_at, step, schedule, zone(timezone), after_immediate=False)
    return NextEmail(step.key, slot)


def first_email_of_import(sequence: Sequence, timezone: str, now: datetime,
                          preference: SendPreference | None = None) -> NextEmail:
    """An imported person's first email. Nobody imported is waiting for it, so a step
    sent 'immediately' to someone who just joined goes out in the next send slot of their
    own day instead: never at 21:55 in Berlin or 05:55 in Tokyo."""
    step = sequence.steps[0]
    if step.immediate:
        return NextEmail(step.key, next_open_slot(now, personal(sequence.schedule, preference),
                                                  zone(timezone)))
    return first_email(sequence, timezone, now, preference)


def email_after(sequence: Sequence, timezone: str, step_key: str, variant: str,
                went_out_at: datetime,
                preference: SendPreference | None = None) -> NextEmail | None:
    """The slot of the email after this one, with a provisional step; None when none can follow.

    After an email that asks a checkpoint with `remind_after`, that is the reminder's slot;
    after the reminder, the weekly slot the reminded email would have had. The provisional
    step assumes no answer; dispatch decides for real when the slot comes.
    """
    if step_key not in sequence.step_keys:
        return None
    if is_checkpoint_reminder(variant):
        step = sequence.step(step_key)
        days = step.checkpoint.remind_days if step.checkpoint else None
        return weekly_after(sequence, timezone, step_key, "main",
                            went_out_at - timedelta(days=days or 0), preference)
    weekly = weekly_after(sequence, timezone, step_key, variant, went_out_at, preference)
    if weekly is None:
        return None
    return reminder_after(sequence, timezone, step_key, variant, went_out_at, weekly,
                          preference) or weekly


def weekly_after(sequence: Sequence, timezone: str, step_key: str, variant: str,
                 went_out_at: datetime,
                 preference: SendPreference | None = None) -> NextEmail | None:
    """The next weekly email's slot after this one, leaving reminders aside."""
    if step_key not in sequence.step_keys or base_variant(variant) == "graduated":
        return None
    step = sequence.step(step_key)
    provisional = decide(sequence, [Sent(0, step_key, variant, None, None, went_out_at)])
    if provisional is None:
        if step.checkpoint is None or step.repeat is None:
            return None  # nothing can follow, whatever the answer
        provisional = Decision(step.key, "repeat")
    paced_by = sequence.next_step(step_key) or step
    slot = slot_after(went_out_at, paced_by, personal(sequence.schedule, preference),
                      zone(timezone),
                      after_immediate=step.immediate and base_variant(variant) == "main")
    return NextEmail(provisional.step_key, slot, provisional.variant)


def reminder_after(sequence: Sequence, timezone: str, step_key: str, variant: str,
                   went_out_at: datetime, weekly: NextEmail,
                   preference: SendPreference | None = None) -> NextEmail | None:
    """The checkpoint reminder after this email, if its checkpoint asks for one: `remind_after`
    days later at the send time, and only if that is a day or more before the next weekly
    email. Main and repeat emails get one; a waiting email is itself the question asked again.
    """
    step = sequence.step(step_key)
    checkpoint = step.checkpoint
    if (checkpoint is None or checkpoint.remind_days is None
            or sequence.checkpoint_reminder is None
            or base_variant(variant) not in ("main", "repeat")):
        return None
    tz = zone(timezone)
    day = went_out_at.astimezone(tz).date() + timedelta(days=checkpoint.remind_days)
    # on a day the sequence sends on: an excluded day moves it later, maybe past the weekly
    slot = slot_on(day, personal(sequence.schedule, preference), tz)
    if slot.due_at.astimezone(tz).date() >= weekly.slot.due_at.astimezone(tz).date():
        return None
    return NextEmail(step_key, slot, CHECKPOINT_REMINDER)

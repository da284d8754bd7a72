"""Checkpoint answers: the one click from an email that tells drip whether a runner is ready.

An answer can be changed until the next weekly email goes out (a checkpoint reminder,
which asks the same question again, does not settle it). The late "repeat last week
instead" from the no-answer note is an answer too (`repeat-last`). Answering early moves a
pending reminder out of the way; answering a gate that paused the enrollment for silence
resumes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from drip import lifecycle
from drip.errors import Conflict, InvalidInput, NotFound
from drip.planner import (
    ANSWERS,
    CHECKPOINT_REMINDER,
    REPEAT_LAST,
    WAITING,
    Decision,
    base_variant,
    decide,
    email_after,
    is_gate,
    late_repeat_step,
)
from drip.schedule import SendPreference
from drip.sequence import Checkpoint, Library, Sequence, Step
from drip.store import AnsweredDelivery, Store
from drip.store.checkpoints import ReminderMove
from drip.tags import answer_tags


@dataclass(frozen=True)
class NextUp:
    """What the subscriber gets next, as far as the answers so far decide it."""

    step_key: str
    week: int
    variant: str
    due_at: datetime | None  # None: nothing is planned (held for the coach)
    held: str | None = None


@dataclass(frozen=True)
class CheckpointView:
    delivery: AnsweredDelivery
    checkpoint: Checkpoint
    week: int
    #: The step whose repeat "repeat last week instead" would send, if this email offers it.
    repeat_step: Step | None = None
    gate: bool = False
    next_up: NextUp | None = None

    @property
    def can_answer(self) -> bool:
        return not self.delivery.superseded and self.closed is None

    @property
    def closed(self) -> str | None:
        """Why no answer can be recorded any more, in words for the subscriber."""
        d = self.delivery
        if d.unsubscribed or d.suppressed:
            return ("You have unsubscribed, so this program sends you nothing more and "
                    "there is nothing to answer.")
        if d.enrollment_state == "unsubscribed":
            return ("You left this program, so it sends you nothing more and there is "
                    "nothing to answer.")
        if d.enrollment_state not in ("active", "paused"):
            return "This program has ended for you, so there is nothing more to answer."
        return None

    @property
    def choices(self) -> tuple[str, ...]:
        return (*ANSWERS, REPEAT_LAST) if self.repeat_step is not None else ANSWERS


def view(store: Store, library: Library, delivery_id: int) -> CheckpointView:
    """The question a delivery asked, its current answer and what comes next."""
    delivery = store.answered_delivery(delivery_id)
    sequence = library.sequences.get(delivery.sequence_key)
    if sequence is None or delivery.step_key not in sequence.step_keys:
        raise NotFound("That checkpoint no longer exists.")
    step = sequence.step(delivery.step_key)
    if (step.checkpoint is None or base_variant(delivery.variant) in ("graduated",
                                                                      CHECKPOINT_REMINDER)
            or delivery.state not in ("sent", "unknown")):
        raise NotFound("That email has no checkpoint.")
    return CheckpointView(delivery, step.checkpoint, step.week,
                          repeat_step=late_repeat_step(sequence, step.key, delivery.variant),
                          gate=is_gate(sequence, step),
                          next_up=next_up(store, sequence, delivery))


def answer(store: Store, library: Library, delivery_id: int, choice: str,
           now: datetime) -> CheckpointView:
    """Record "passed", "not-yet" or (where the email offers it) "repeat-last". Answering
    again replaces the earlier answer, until the next weekly email has gone out; after that
    the answer is settled."""
    current = view(store, library, delivery_id)
    if choice not in current.choices:
        raise InvalidInput(f"'{choice}' is not an answer to this email; use one of "
                           f"{', '.join(current.choices)}.")
    if current.closed is not None:
        raise Conflict(current.closed)
    if current.delivery.superseded:
        raise Conflict("The next week's email has already gone out, so this checkpoint is "
                       "settled. Answer the checkpoint in your latest email instead.")
    sequence = library.sequence(current.delivery.sequence_key)
    preference = store.send_preference(current.delivery.subscriber_id).preference
    store.save_answer(current.delivery, choice, now,
                      _reminder_move(sequence, current.delivery, preference))
    # the checkpoint's on_answer tags (goals and branches read them at the next dispatch)
    tags = answer_tags(sequence, current.delivery.step_key, choice)
    if tags:
        store.add_tags(current.delivery.subscriber_id, tags, now)
    pending = current.delivery.pending
    if (current.delivery.enrollment_state == "paused" and pending is not None
            and pending.state == "held" and base_variant(pending.variant) == WAITING
            and pending.step_key == current.delivery.step_key):
        # Paused for silence at this gate: the answer is what the pause waited for.
        lifecycle.resume_enrollment(store, library, current.delivery.subscriber_id,
                                    current.delivery.sequence_key, now)
    return view(store, library, delivery_id)


def _reminder_move(sequence: Sequence, delivery: AnsweredDelivery,
                   preference: SendPreference | None = None) -> ReminderMove | None:
    """The pending reminder, made the weekly email at the slot it would have had."""
    pending = delivery.pending
    if (pending is None or pending.state != "scheduled"
            or base_variant(pending.variant) != CHECKPOINT_REMINDER):
        return None
    following = email_after(sequence, delivery.timezone, pending.step_key, pending.variant,
                            pending.due_at, preference)
    if following is None:
        return None
    return ReminderMove(pending.delivery_id, following.slot.due_at,
                        following.slot.window_end_at, following.step_key, following.variant)


def next_up(store: Store, sequence: Sequence, delivery: AnsweredDelivery) -> NextUp | None:
    """What the answers so far make the next weekly email, and when it is planned."""
    pending = delivery.pending
    if pending is None or delivery.superseded:
        return None
    history = store.histories([delivery.enrollment_id]).get(delivery.enrollment_id, [])
    decision: Decision | None = decide(sequence, history)
    if decision is None:
        return None
    week = sequence.step(decision.step_key).week
    if decision.hold is not None or pending.state == "held":
        return NextUp(decision.step_key, week, decision.variant, None,
                      held=decision.hold or "paused")
    due = pending.due_at
    if base_variant(pending.variant) == CHECKPOINT_REMINDER:
        following = email_after(sequence, delivery.timezone, pending.step_key,
                                pending.variant, pending.due_at,
                                store.send_preference(delivery.subscriber_id).preference)
        due = following.slot.due_at if following is not None else pending.due_at
    return NextUp(decision.step_key, week, decision.variant, due)

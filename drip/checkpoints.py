"""Checkpoint answers: the one click from an email that tells drip whether a runner is ready."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from drip.errors import Conflict, InvalidInput, NotFound
from drip.planner import ANSWERS, base_variant
from drip.sequence import Checkpoint, Library
from drip.store import AnsweredDelivery, Store


@dataclass(frozen=True)
class CheckpointView:
    delivery: AnsweredDelivery
    checkpoint: Checkpoint
    week: int

    @property
    def can_answer(self) -> bool:
        return not self.delivery.superseded


def view(store: Store, library: Library, delivery_id: int) -> CheckpointView:
    """The question a delivery asked, and its current answer."""
    delivery = store.answered_delivery(delivery_id)
    sequence = library.sequences.get(delivery.sequence_key)
    if sequence is None or delivery.step_key not in sequence.step_keys:
        raise NotFound("That checkpoint no longer exists.")
    step = sequence.step(delivery.step_key)
    if (step.checkpoint is None or base_variant(delivery.variant) == "graduated"
            or delivery.state not in ("sent", "unknown")):
        raise NotFound("That email has no checkpoint.")
    return CheckpointView(delivery, step.checkpoint, step.week)


def answer(store: Store, library: Library, delivery_id: int, choice: str,
           now: datetime) -> CheckpointView:
    """Record "passed" or "not-yet". Answering again replaces the earlier answer, until the
    next week's email has gone out; after that the answer is settled."""
    if choice not in ANSWERS:
        raise InvalidInput(f"'{choice}' is not an answer; use one of {', '.join(ANSWERS)}.")
    current = view(store, library, delivery_id)
    if not current.can_answer:
        raise Conflict("The next week's email has already gone out, so this checkpoint is "
                       "settled. Answer the checkpoint in your latest email instead.")
    store.save_answer(current.delivery, choice, now)
    return view(store, library, delivery_id)

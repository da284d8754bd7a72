"""The planner: which email an enrollment gets next, and when. Pure functions over plain data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from drip.addresses import zone
from drip.schedule import Slot, immediate_slot, slot_after
from drip.sequence import Sequence


@dataclass(frozen=True)
class NextEmail:
    step_key: str
    slot: Slot
    variant: str = "main"


def first_email(sequence: Sequence, timezone: str, joined_at: datetime) -> NextEmail:
    """The first email: at the first dispatch after joining if the step says 'immediately'."""
    step = sequence.steps[0]
    if step.immediate:
        return NextEmail(step.key, immediate_slot(joined_at))
    slot = slot_after(joined_at, step, sequence.schedule, zone(timezone), after_immediate=False)
    return NextEmail(step.key, slot)


def email_after(sequence: Sequence, timezone: str, step_key: str,
                went_out_at: datetime) -> NextEmail | None:
    """The email that follows `step_key`, which went out at `went_out_at`; None when done."""
    if step_key not in sequence.step_keys:
        return None
    following = sequence.next_step(step_key)
    if following is None:
        return None
    previous = sequence.step(step_key)
    slot = slot_after(went_out_at, following, sequence.schedule, zone(timezone),
                      after_immediate=previous.immediate)
    return NextEmail(following.key, slot)

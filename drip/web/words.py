"""What the pages say after a subscriber acts: plain sentences, with dates in their own zone."""

from __future__ import annotations

from datetime import datetime

from drip.addresses import zone
from drip.checkpoints import CheckpointView, NextUp
from drip.planner import NOT_YET, PASSED, REPEAT_LAST, WAITING, base_variant
from drip.sequence import Library


def local_when(moment: datetime, timezone: str) -> str:
    """'Sunday, December 13 at 6:30 AM' in the subscriber's own timezone."""
    local = moment.astimezone(zone(timezone))
    clock = local.strftime("%I:%M %p").lstrip("0")
    return f"{local:%A, %B} {local.day} at {clock}"


def _email_name(next_up: NextUp, library: Library, sequence_key: str) -> str:
    variant = base_variant(next_up.variant)
    if variant == "repeat":
        return f"Week {next_up.week} again"
    if variant == WAITING:
        return f"Your Week {next_up.week} plan, one more week"
    if variant == "graduated":
        return "Your graduation email"
    if variant == "see-a-clinician":
        return "An email about getting a clinician's eyes on this"
    sequence = library.sequences.get(sequence_key)
    step = sequence.step(next_up.step_key) if sequence else None
    return f"Week {next_up.week}" + (f": {step.subject.split(':', 1)[-1].strip()}"
                                     if step and ":" in step.subject else "")


def checkpoint_outcome(view: CheckpointView, library: Library
                       ) -> tuple[str, list[str], str | None]:
    """(heading, sentences, until when it can change) for the page after an answer."""
    delivery, next_up = view.delivery, view.next_up
    answer = delivery.answer
    tz = delivery.timezone
    if answer == PASSED:
        heading = "Nice work. On to the next step."
    elif answer == REPEAT_LAST and view.repeat_step is not None:
        heading = f"Got it: Week {view.repeat_step.week} again next."
    elif answer == NOT_YET:
        heading = "Thanks for being honest. We'll take it slower."
    else:
        heading = "Answer saved."
    lines: list[str] = []
    until = None
    if next_up is not None and next_up.due_at is not None:
        when = local_when(next_up.due_at, tz)
        lines.append(f"{_email_name(next_up, library, delivery.sequence_key)} arrives "
                     f"{when} (your time, {tz}).")
        until = when
    elif next_up is not None and next_up.held:
        lines.append("Your program is paused for now, so the coach can check in with you "
                     "personally before anything more is sent.")
    if answer == NOT_YET and view.gate:
        lines.append("Until then, keep doing this week's sessions as written. The program "
                     "waits for you: it only moves on when you can answer \"Passed\".")
    elif answer == NOT_YET:
        lines.append("Until then, keep this week's sessions going at an effort that stays at "
                     "3/10 or less, and keep up your morning check.")
    return heading, lines, until

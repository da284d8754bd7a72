"""What the pages say after a subscriber acts: plain sentences, with dates in their own zone."""

from __future__ import annotations

from datetime import datetime, timedelta

from drip.addresses import zone, zones_by_region
from drip.checkpoints import CheckpointView, NextUp
from drip.pause_week import PauseView
from drip.planner import NOT_YET, PASSED, REPEAT_LAST, WAITING, base_variant
from drip.sequence import Sequence


def local_when(moment: datetime, timezone: str) -> str:
    """'Sunday 13 December at 06:30' in the subscriber's own timezone (24-hour clock, as
    the sequence files write send times)."""
    local = moment.astimezone(zone(timezone))
    return f"{local:%A} {local.day} {local:%B} at {local:%H:%M}"


def _weekly(sequence: Sequence) -> str:
    schedule = sequence.schedule
    day = f"every {schedule.weekday.capitalize()}" if schedule.weekday else "a week"
    return f"one {day} at {schedule.send_time:%H:%M} in the morning, your time"


def confirmed_lines(sequence: Sequence, email: str, timezone: str) -> list[str]:
    """What the page after confirming says comes, and when."""
    first = ("The first email is on its way now" if sequence.steps[0].immediate
             else f"The first email comes in about {sequence.steps[0].wait_days} days")
    return [f"{email} is signed up for {sequence.name}.",
            f"{first}; then {_weekly(sequence)} ({timezone}). Every email has a pause link "
            "and a one-click unsubscribe."]


def program_facts(sequence: Sequence) -> list[str]:
    """What a sign-up form says arrives, and when, from the sequence file itself."""
    when = _weekly(sequence)
    count = f"{len(sequence.steps)} weekly emails"
    if sequence.steps[0].immediate:
        facts = [f"{count}. The first comes as soon as you confirm your address, then {when}."]
    else:
        facts = [f"{count}, {when}, starting after you confirm your address."]
    checkpoints = [step.checkpoint for step in sequence.steps if step.checkpoint]
    if checkpoints:
        text = ("Each week ends with a one-tap checkpoint: your answer decides whether you "
                "move on or repeat the week.")
        if any(checkpoint.gate for checkpoint in checkpoints):
            text += " The weeks that start you running wait for your answer: silence never "
            text += "moves you on."
        facts.append(text)
    return facts


def zone_options() -> list[tuple[str, list[tuple[str, str]]]]:
    """The sign-up form's timezone choices: (region, [(IANA name, label)]), then UTC."""
    groups = [(region, [(name, name.replace("_", " ")) for name in names])
              for region, names in zones_by_region()]
    return [*groups, ("Other", [("UTC", "UTC (no timezone)")])]


def _email_name(next_up: NextUp) -> str:
    variant = base_variant(next_up.variant)
    if variant == "repeat":
        return f"Week {next_up.week} again"
    if variant == WAITING:
        return f"Your Week {next_up.week} plan, one more week"
    if variant == "graduated":
        return "Your graduation email"
    if variant == "see-a-clinician":
        return "An email about getting a clinician's eyes on this"
    return f"Week {next_up.week}"


def checkpoint_outcome(view: CheckpointView) -> tuple[str, list[str], str | None]:
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
        lines.append(_arrives(next_up, tz))
        until = local_when(next_up.due_at, tz)
    elif next_up is not None and next_up.held:
        lines.append("Your program is paused for now, so the coach can check in with you "
                     "personally before anything more is sent.")
    clinician = next_up is not None and base_variant(next_up.variant) == "see-a-clinician"
    if clinician:
        lines.append("Two weeks in a row of \"not yet\" is a sign to get a physical therapist "
                     "or doctor to look at this. Until then, don't push through: keep the "
                     "sessions gentle, and stop and seek care if pain is severe or getting "
                     "worse.")
    elif answer == NOT_YET and view.gate:
        lines.append("Until then, keep doing this week's sessions as written. The program "
                     "waits for you: it only moves on when you can answer \"Passed\".")
    elif (answer == PASSED and view.gate and next_up is not None
          and base_variant(next_up.variant) == "graduated"):
        lines.append("Until then, keep your runs easy and on the flat; that email says how to "
                     "bring back hills and speed, one at a time.")
    elif answer == PASSED and view.gate and next_up is not None:
        lines.append(f"Until then, keep this week's sessions going, and start running only "
                     f"as the Week {next_up.week} plan says.")
    elif answer == NOT_YET:
        lines.append("Until then, keep this week's sessions going at an effort that stays at "
                     "3/10 or less, and keep up your morning check.")
    return heading, lines, until


def _arrives(next_up: NextUp, timezone: str, verb: str = "arrives") -> str:
    assert next_up.due_at is not None
    return (f"{_email_name(next_up)} {verb} "
            f"{local_when(next_up.due_at, timezone)} (your time, {timezone}).")


def pause_outcome(view: PauseView) -> tuple[str, list[str]]:
    """(heading, sentences) for the pause page: what pausing would do, or what it did."""
    coming, tz = view.next_up, view.timezone
    planned = coming if coming is not None and coming.due_at is not None else None
    if view.state == "closed":
        return "Nothing to pause", [view.closed or ""]
    if view.state == "ready":
        if planned is None:
            return "Pause for a week?", ["Your next email, and every one after it, will come "
                                         "a week later than planned."]
        assert planned.due_at is not None
        later = planned.due_at.astimezone(zone(tz)) + timedelta(days=view.days)
        return "Pause for a week?", [
            _arrives(planned, tz, "is planned for"),
            f"Pausing moves it, and every email after it, one week later: to "
            f"{local_when(later, tz)}."]
    now_line = ([_arrives(planned, tz, "now arrives")] if planned else
                ["Your next email comes a week later than planned."])
    if view.state == "resumed":
        return "Back on plan", [
            *([_arrives(planned, tz)] if planned else []),
            "This email's pause is used; every weekly email brings its own pause link."]
    if view.changed:
        return "Paused for a week", now_line
    return "This email is already paused", [
        *now_line, "You pressed its pause link before, so nothing moved again."]

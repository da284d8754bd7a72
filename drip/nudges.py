"""Choosing the one nudge an email carries: pure rules over the sequence, offers and history."""

from __future__ import annotations

from collections.abc import Sequence as Seq
from collections.abc import Set

from drip.planner import NOT_YET, NUDGEABLE, PASSED, Sent, base_variant, progress
from drip.sequence import Offers, Sequence


def nudges_stopped(sequence: Sequence, owned: Set[str], offers_opt_out: bool) -> bool:
    """True when no offer may be shown: the subscriber opted out, or reached a goal."""
    if offers_opt_out:
        return True
    return any(goal.stops == "nudges" and goal.purchased in owned for goal in sequence.goals)


def sequence_goal_reached(sequence: Sequence, owned: Set[str]) -> str | None:
    """The product whose purchase ends this sequence for the subscriber, if they own it."""
    for goal in sequence.goals:
        if goal.stops == "sequence" and goal.purchased in owned:
            return goal.purchased
    return None


def choose_nudge(sequence: Sequence, offers: Offers, *, step_key: str, variant: str,
                 history: Seq[Sent], owned: Set[str], offers_opt_out: bool,
                 held_out: bool = False) -> str | None:
    """At most one offer for this email, by the rules in docs/writing-sequences.md:

    only in a main weekly email (never in a repeat, waiting, reminder, clinician or
    graduation email); at most `max_per_enrollment` in all; never one the subscriber owns;
    never one shown within `cooldown_weeks` emails; the `after_not_yet` offer first in the
    week after one that took `repeat_limit` or more "not yet" answers to pass; then the
    offer the coach placed in this step; then any offer that fits this week. An enrollment
    in the nudge holdout (`held_out`, drip.experiments.assignment) never gets one.
    """
    if held_out or base_variant(variant) not in NUDGEABLE:
        return None
    if nudges_stopped(sequence, owned, offers_opt_out):
        return None
    cap = sequence.nudges.max_per_enrollment
    if cap is not None and sum(1 for item in history if item.nudge) >= cap:
        return None
    cooldown = sequence.nudges.cooldown_weeks
    # weekly emails: a reminder between two of them does not shorten the cooldown
    recent = {item.nudge for item in progress(history)[-cooldown:]} if cooldown else set()
    eligible = [o.key for o in offers.offers if o.key not in owned and o.key not in recent]
    if not eligible:
        return None
    step = sequence.step(step_key)
    preferred = sequence.nudges.after_not_yet
    if preferred and preferred in eligible and _tries_before_pass(history) >= sequence.repeat_limit:
        return preferred
    if step.nudge in eligible:
        return step.nudge
    fitting = [o.key for o in offers.offers if o.key in eligible and step.week in o.weeks]
    return fitting[0] if fitting else None


def _tries_before_pass(history: Seq[Sent]) -> int:
    """How many "not yet" answers the step just passed took (0 if the last one was no pass)."""
    steps = progress(history)
    if not steps or steps[-1].answer != PASSED:
        return 0
    step_key = steps[-1].step_key
    tries = 0
    for item in reversed(steps):
        if item.step_key != step_key:
            break
        tries += item.answer == NOT_YET
    return tries

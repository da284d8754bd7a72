"""Choosing the one nudge an email carries: pure rules over the sequence, offers and history."""

from __future__ import annotations

from collections.abc import Sequence as Seq
from collections.abc import Set

from drip.planner import Sent
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


def choose_nudge(sequence: Sequence, offers: Offers, *, step_key: str, history: Seq[Sent],
                 owned: Set[str], offers_opt_out: bool, not_yet_streak: int) -> str | None:
    """At most one offer for this email, by the rules in docs/writing-sequences.md:

    never one the subscriber owns; never one shown within `cooldown_weeks` emails; the
    `after_not_yet` offer first after repeated "not yet"; then the offer the coach placed
    in this step; then any offer that fits this week.
    """
    if nudges_stopped(sequence, owned, offers_opt_out):
        return None
    cooldown = sequence.nudges.cooldown_weeks
    recent = {item.nudge for item in history[-cooldown:]} if cooldown else set()
    eligible = [o.key for o in offers.offers if o.key not in owned and o.key not in recent]
    if not eligible:
        return None
    step = sequence.step(step_key)
    preferred = sequence.nudges.after_not_yet
    if preferred and not_yet_streak >= sequence.repeat_limit and preferred in eligible:
        return preferred
    if step.nudge in eligible:
        return step.nudge
    fitting = [o.key for o in offers.offers if o.key in eligible and step.week in o.weeks]
    return fitting[0] if fitting else None

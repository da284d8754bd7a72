"""A subscriber's whole journey through a sequence, computed with the pure planner alone.

Used by property tests and by anyone who wants a quick calendar without a database. It
assumes each email goes out at its due time; the real engine adds dispatch lag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from drip.addresses import zone
from drip.experiments.assignment import Assignment, assignment, held_out
from drip.nudges import choose_nudge, sequence_goal_reached
from drip.planner import (
    CHECKPOINT_REMINDER,
    Decision,
    Sent,
    decide,
    email_after,
    first_email,
    is_checkpoint_reminder,
    progress,
)
from drip.schedule import slot_on
from drip.sequence import Offers, Sequence


@dataclass(frozen=True)
class Persona:
    """Who walks the journey: when they join, how they answer, what they buy, when they stop.

    `answers[i]` answers the checkpoint of the i-th weekly email ('passed', 'not-yet',
    'repeat-last' or None for silence); checkpoint reminders are not counted, since an
    answer to one counts for the email it reminds of. An answered email gets no reminder.
    `buys` maps an email index (reminders included) to what is bought just after it goes
    out. `pauses` maps an email index to weeks paused just after it. `unsubscribe_after`
    stops everything. `enrollment_id` decides the split-test variants and the nudge
    holdout, as the enrollment's id does in the database.
    """

    timezone: str
    joined_at: datetime
    answers: tuple[str | None, ...] = ()
    buys: Mapping[int, str] = field(default_factory=dict)
    pauses: Mapping[int, int] = field(default_factory=dict)
    unsubscribe_after: int | None = None
    enrollment_id: int = 1


@dataclass(frozen=True)
class Email:
    index: int
    step_key: str
    variant: str
    nudge: str | None
    at: datetime
    answer: str | None = None
    #: The split-test variant this email carries, if its step has a test.
    test: Assignment | None = None


@dataclass(frozen=True)
class Journey:
    emails: list[Email]
    ended: str


def walk(sequence: Sequence, offers: Offers, persona: Persona, limit: int = 60) -> Journey:
    tz = zone(persona.timezone)
    owned: set[str] = set()
    history: list[Sent] = []
    emails: list[Email] = []
    upcoming = first_email(sequence, persona.timezone, persona.joined_at)
    due, kind = upcoming.slot.due_at, upcoming.variant
    answered = 0
    holdout = held_out(sequence, persona.enrollment_id)
    while len(emails) < limit:
        goal = sequence_goal_reached(sequence, owned)
        if goal is not None:
            return Journey(emails, f"goal: bought {goal}")
        answer: str | None = None
        if is_checkpoint_reminder(kind):
            last = progress(history)[-1]
            if last.answer is not None:  # answered in time: no reminder; the week goes on
                following = email_after(sequence, persona.timezone, last.step_key, kind, due)
                if following is None:
                    return Journey(emails, "complete")
                due, kind = following.slot.due_at, following.variant
                continue
            decision = Decision(last.step_key, CHECKPOINT_REMINDER)
        else:
            next_decision = decide(sequence, history)
            if next_decision is None:
                return Journey(emails, "complete")
            if next_decision.hold is not None:
                return Journey(emails, "held for the coach")
            decision = next_decision
            answer = persona.answers[answered] if answered < len(persona.answers) else None
            answered += 1
        nudge = choose_nudge(sequence, offers, step_key=decision.step_key,
                             variant=decision.variant, history=history, owned=owned,
                             offers_opt_out=False, held_out=holdout)
        index = len(emails)
        tested = assignment(sequence, decision.step_key, decision.variant,
                            persona.enrollment_id)
        emails.append(Email(index, decision.step_key, decision.variant, nudge, due, answer,
                            tested))
        history.append(Sent(index + 1, decision.step_key, decision.variant, nudge, answer, due))
        if index in persona.buys:
            owned.add(persona.buys[index])
        if persona.unsubscribe_after is not None and index >= persona.unsubscribe_after:
            return Journey(emails, "unsubscribed")
        following = email_after(sequence, persona.timezone, decision.step_key,
                                decision.variant, due)
        if following is None:
            return Journey(emails, "complete")
        due, kind = following.slot.due_at, following.variant
        weeks = persona.pauses.get(index, 0)
        if weeks:  # resumed `weeks` later: the next email moves by the pause, to its send slot
            moved = (due + timedelta(weeks=weeks)).astimezone(tz).date()
            due = slot_on(moved, sequence.schedule, tz).due_at
    return Journey(emails, "limit")

"""The "pause a week" link in every email: what it would do, pausing once, resuming early.

A link acts once for the email it came in (`lifecycle.postpone`): a second press, or a
mail scanner replaying it, moves nothing and is told the email is already paused, with
the new date. "Resume now" undoes the pause, once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from drip import lifecycle
from drip.checkpoints import NextUp, next_up
from drip.errors import Conflict
from drip.sequence import Library
from drip.store import Store

PauseState = Literal["ready", "paused", "resumed", "closed"]


@dataclass(frozen=True)
class PauseView:
    """Where one email's pause link stands, and what the next weekly email is now."""

    state: PauseState
    sequence_key: str
    timezone: str
    next_up: NextUp | None
    #: Why the link can do nothing (state "closed"), in words for the subscriber.
    closed: str | None = None
    #: True on the answer to the POST that did it (a second press is False).
    changed: bool = False
    days: int = 7


def view(store: Store, library: Library, enrollment_id: int,
         from_delivery: int | None) -> PauseView:
    """What the link would do now; NotFound if the enrollment does not exist."""
    subscriber_id, sequence_key, state = store.enrollment_owner(enrollment_id)
    timezone = store.subscriber_by_id(subscriber_id).timezone
    latest = store.latest_sent_delivery(enrollment_id)
    closed = _closed(state, from_delivery, latest)
    if closed is not None:
        return PauseView("closed", sequence_key, timezone, None, closed=closed)
    used = store.used_markers([lifecycle.pause_marker(enrollment_id, latest, action)
                               for action in ("pause", "resume")])
    sequence = library.sequences.get(sequence_key)
    coming = None
    if sequence is not None and latest is not None:
        coming = next_up(store, sequence, store.answered_delivery(latest))
    if lifecycle.pause_marker(enrollment_id, latest, "resume") in used:
        return PauseView("resumed", sequence_key, timezone, coming)
    if lifecycle.pause_marker(enrollment_id, latest) in used:
        return PauseView("paused", sequence_key, timezone, coming)
    return PauseView("ready", sequence_key, timezone, coming)


def pause(store: Store, library: Library, enrollment_id: int, from_delivery: int | None,
          now: datetime) -> PauseView:
    """Press the link: pause once. Pressing again changes nothing and says so (state
    "paused", changed False); Conflict if the link cannot act at all."""
    return _act(store, library, enrollment_id, from_delivery, now, "pause")


def resume(store: Store, library: Library, enrollment_id: int, from_delivery: int | None,
           now: datetime) -> PauseView:
    """"Resume now": undo this email's pause, once; Conflict if there is none to undo."""
    return _act(store, library, enrollment_id, from_delivery, now, "resume")


def _act(store: Store, library: Library, enrollment_id: int, from_delivery: int | None,
         now: datetime, action: Literal["pause", "resume"]) -> PauseView:
    before = view(store, library, enrollment_id, from_delivery)
    if before.closed is not None:
        raise Conflict(before.closed)
    if action == "resume" and before.state == "ready":
        raise Conflict("This email is not paused, so there is nothing to resume.")
    changed = False
    if before.state == ("ready" if action == "pause" else "paused"):
        move = lifecycle.postpone if action == "pause" else lifecycle.resume_postponed
        try:
            move(store, library, enrollment_id, now, days=before.days,
                 from_delivery=from_delivery)
            changed = True
        except Conflict:  # pressed twice at once: the other press did it
            pass
    return replace(view(store, library, enrollment_id, from_delivery), changed=changed)


def _closed(state: str, from_delivery: int | None, latest: int | None) -> str | None:
    if state == "unsubscribed":  # from everything, or from this program only
        return ("You have unsubscribed from this program, so nothing more is coming and "
                "there is nothing to pause.")
    if state == "suppressed":
        return ("Email to you has stopped (an earlier one bounced or was reported), so there "
                "is nothing to pause. Reply to any earlier email if that was a mistake.")
    if state == "paused":
        return ("Your program is on hold already, so there is nothing to pause: the coach "
                "will be in touch before anything more is sent.")
    if state != "active":
        return "This program has ended for you, so there is nothing to pause."
    if from_delivery is not None and from_delivery != latest:
        return ("This pause link is from an earlier email; use the one in your latest "
                "email instead.")
    return None

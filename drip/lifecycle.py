"""Stopping and holding email: unsubscribe, suppress, pause and resume, and the kill switch.

The web app, the operator CLI and provider events all call these functions; the
rules live here once. Held email never goes out in a burst on release: each
enrollment's one pending email moves to its next send slot, shifted by the pause.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from drip.addresses import normalise_email, zone
from drip.errors import Conflict, InvalidAddress, InvalidInput
from drip.schedule import SendPreference, next_open_slot, personal, slot_on
from drip.sequence import Library, Schedule
from drip.store import PendingDelivery, Store

KILL_SWITCH = "all"


def sequence_scope(sequence_key: str) -> str:
    return f"sequence:{sequence_key}"


@dataclass(frozen=True)
class Change:
    """What a lifecycle action did, for the edge to report in one sentence."""

    changed: bool
    count: int = 0


UnsubscribeScope = Literal["all", "program", "offers"]


def unsubscribe(store: Store, subscriber_id: int, now: datetime, *, source: str,
                scope: UnsubscribeScope = "all", enrollment_id: int | None = None) -> Change:
    """Stop everything (cancelling any email already due), one program only (the
    enrollment `enrollment_id`: its pending email is cancelled, the person stays
    subscribed), or only the offers."""
    if scope == "offers":
        return Change(store.set_offers_opt_out(subscriber_id, now, source))
    if scope == "program":
        if enrollment_id is None:
            raise InvalidInput("Say which program to leave (its enrollment).")
        changed, cancelled = store.leave_enrollment(subscriber_id, enrollment_id, now, source)
        return Change(changed, cancelled)
    already, cancelled = store.set_unsubscribed(subscriber_id, now, source)
    return Change(not already, cancelled)


def unsubscribe_email(store: Store, email: str, now: datetime, *, source: str) -> Change:
    subscriber = store.subscriber_by_email(normalise_email(email))
    return unsubscribe(store, subscriber.id, now, source=source)


def suppress(store: Store, email: str, now: datetime, reason: str) -> Change:
    """Stop sending to an address that bounced, complained or was blocked by an operator."""
    subscriber = store.subscriber_by_email(normalise_email(email))
    if subscriber.suppressed_at is not None:
        return Change(False)
    held = store.hold_enrollments(subscriber.id, now, state="suppressed", reason=reason)
    return Change(True, held)


def suppress_many(store: Store, reasons: Mapping[str, str], now: datetime) -> int:
    """`suppress` for a burst of provider reports: {address: reason}, in one transaction.

    Addresses that are not valid or not known change nothing. Returns how many were
    suppressed now.
    """
    clean: dict[str, str] = {}
    for address, reason in reasons.items():
        try:
            clean.setdefault(normalise_email(address), reason)
        except InvalidAddress:
            continue
    return len(store.suppress_addresses(clean, now))


def unsuppress(store: Store, library: Library, email: str, now: datetime) -> Change:
    subscriber = store.subscriber_by_email(normalise_email(email))
    if subscriber.suppressed_at is None:
        return Change(False)
    held = store.release_enrollments(subscriber.id, state="suppressed")
    return Change(True, _move_released(store, library, held, now))


def pause_subscriber(store: Store, email: str, now: datetime,
                     sequence_key: str | None = None) -> Change:
    """Hold someone's email until they are resumed."""
    subscriber = store.subscriber_by_email(normalise_email(email))
    if subscriber.state != "active":
        raise Conflict(f"{subscriber.email} is {subscriber.state}; there is nothing to pause.")
    count = store.hold_enrollments(subscriber.id, now, state="paused", reason="paused",
                                   sequence_key=sequence_key)
    return Change(count > 0, count)


def resume_subscriber(store: Store, library: Library, email: str, now: datetime,
                      sequence_key: str | None = None) -> Change:
    subscriber = store.subscriber_by_email(normalise_email(email))
    if subscriber.suppressed_at is not None:
        # released now, the email would only be cancelled at dispatch for the suppression
        raise Conflict(f"{subscriber.email} is suppressed; `drip unsuppress` them first, "
                       "then resume.")
    held = store.release_enrollments(subscriber.id, state="paused", sequence_key=sequence_key)
    return Change(bool(held), _move_released(store, library, held, now))


def pause_marker(enrollment_id: int, latest: int | None, action: str = "pause") -> str:
    """The once-only key of a pause-a-week link's action ("pause" or "resume") for the email
    that is an enrollment's latest."""
    return f"{action}:{enrollment_id}:{latest or 0}"


def postpone(store: Store, library: Library, enrollment_id: int, now: datetime,
             days: int = 7, *, from_delivery: int | None = None) -> Change:
    """The "pause a week" link: the next email, and the ones after it, move `days` later.

    Once per email: pressing the link again (or replaying its POST) moves nothing, and the
    link in an email that a later one has superseded (`from_delivery`, the email the link
    was in) no longer acts. Both are Conflict.
    """
    latest = _pause_link_email(store, enrollment_id, from_delivery)
    pending = store.pending_deliveries(enrollment_id=enrollment_id)
    chosen = _preference(store, enrollment_id)
    moves = [_shifted(p, library, timedelta(days=days), now, chosen) for p in pending]
    moved = store.reschedule_once(pause_marker(enrollment_id, latest), enrollment_id,
                                  moves, now)
    if moved is None:
        raise Conflict("This email's pause is already used: your next email already comes a "
                       "week later.")
    return Change(bool(moves), moved)


def resume_postponed(store: Store, library: Library, enrollment_id: int, now: datetime,
                     days: int = 7, *, from_delivery: int | None = None) -> Change:
    """Undo `postpone` ("resume now"): the next email goes back to its planned slot, or the
    next open one if that has passed. Once, and only after a pause; else Conflict."""
    latest = _pause_link_email(store, enrollment_id, from_delivery)
    if not store.used_markers([pause_marker(enrollment_id, latest)]):
        raise Conflict("This email's pause was not used, so there is nothing to resume.")
    pending = store.pending_deliveries(enrollment_id=enrollment_id)
    chosen = _preference(store, enrollment_id)
    moves = [_shifted(p, library, timedelta(days=-days), now, chosen) for p in pending]
    moved = store.reschedule_once(pause_marker(enrollment_id, latest, "resume"), enrollment_id,
                                  moves, now, kind="resumed_early")
    if moved is None:
        raise Conflict("You already resumed; your next email comes as first planned.")
    return Change(bool(moves), moved)


def _preference(store: Store, enrollment_id: int) -> SendPreference | None:
    subscriber_id, _, _ = store.enrollment_owner(enrollment_id)
    return store.send_preference(subscriber_id).preference


def _pause_link_email(store: Store, enrollment_id: int, from_delivery: int | None) -> int | None:
    """The latest email of an active enrollment, which a pause link acts for; Conflict if
    the enrollment is not active or the link is from an earlier email."""
    _, _, state = store.enrollment_owner(enrollment_id)
    if state != "active":
        raise Conflict(f"This program is {state}, so there is nothing to pause.")
    latest = store.latest_sent_delivery(enrollment_id)
    if from_delivery is not None and from_delivery != latest:
        raise Conflict("This pause link is from an earlier email; use the one in your latest "
                       "email.")
    return latest


def pause_sequence(store: Store, sequence_key: str, now: datetime,
                   reason: str | None = None) -> Change:
    return Change(store.set_pause(sequence_scope(sequence_key), now, reason))


def resume_sequence(store: Store, library: Library, sequence_key: str, now: datetime) -> Change:
    """Lift a sequence pause; everyone's next email moves later by the length of the pause."""
    paused_at = store.clear_pause(sequence_scope(sequence_key))
    if paused_at is None:
        return Change(False)
    pending = store.pending_deliveries(sequence_key=sequence_key)
    moves = [_shifted(p, library, now - paused_at, now) for p in pending]
    return Change(True, store.reschedule(moves))


def pause_all(store: Store, now: datetime, reason: str | None = None) -> Change:
    """The kill switch: no dispatch sends anything until `resume_all`."""
    return Change(store.set_pause(KILL_SWITCH, now, reason))


def resume_all(store: Store) -> Change:
    """Lift the kill switch. Nothing is shifted: due email goes at its next open send slot."""
    return Change(store.clear_pause(KILL_SWITCH) is not None)


def _move_released(store: Store, library: Library, held: list[PendingDelivery],
                   now: datetime) -> int:
    moves = [_shifted(p, library, now - (p.held_since or now), now) for p in held]
    return store.reschedule(moves)


def _shifted(pending: PendingDelivery, library: Library, by: timedelta,
             now: datetime, preference: SendPreference | None = None
             ) -> tuple[int, datetime, datetime | None]:
    """The pending email moved later by `by`, landing on a send slot that is still open (at
    the subscriber's own send time and day, where they chose one)."""
    tz = zone(pending.timezone)
    sequence = library.sequences.get(pending.sequence_key)
    schedule = personal(sequence.schedule if sequence else Schedule(), preference)
    if pending.window_end_at is None:  # an "immediately" email: it goes at the next dispatch
        return pending.delivery_id, max(pending.due_at + by, now), None
    target = slot_on((pending.due_at + by).astimezone(tz).date(), schedule, tz)
    if target.window_end_at is not None and target.window_end_at <= now:
        target = next_open_slot(now, schedule, tz)
    return pending.delivery_id, target.due_at, target.window_end_at


def resume_enrollment(store: Store, library: Library, subscriber_id: int, sequence_key: str,
                      now: datetime) -> Change:
    """Resume one paused enrollment (a gate that paused it for silence has its answer): its
    held email moves on by the length of the pause, to a send slot that is still open."""
    held = store.release_enrollments(subscriber_id, state="paused", sequence_key=sequence_key)
    return Change(bool(held), _move_released(store, library, held, now))

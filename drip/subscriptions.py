"""Joining a sequence: validate the person, record consent, plan their first email."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from drip.addresses import clean_name, normalise_email, validate_timezone
from drip.errors import InvalidInput
from drip.planner import first_email
from drip.sequence import Library, RestartAfter, Sequence
from drip.store import ConsentRecord, EnrollOutcome, Store
from drip.tags import parse_tags

Source = Literal["purchase", "optin", "manual", "import"]
SOURCES: tuple[str, ...] = ("purchase", "optin", "manual", "import", "api")


def enroll(store: Store, library: Library, *, email: str, sequence_key: str, now: datetime,
           name: str = "", timezone: str = "UTC", source: str = "manual",
           consent: ConsentRecord | None = None, tags: object = None) -> EnrollOutcome:
    """Enroll someone; every input is checked before anything is written. `tags` (a list,
    from the API) are set on the subscriber too."""
    address = normalise_email(email)
    wanted = parse_tags(tags)
    zone_name = validate_timezone(timezone)
    if source not in SOURCES:
        raise InvalidInput(f"'{source}' is not a source; use one of {', '.join(SOURCES)}.")
    sequence = library.sequence(sequence_key)
    first = first_email(sequence, zone_name, now)
    outcome = store.enroll(
        email=address, name=clean_name(name), timezone=zone_name, sequence_key=sequence.key,
        source=source, now=now, first_step=first.step_key, first_due_at=first.slot.due_at,
        first_window_end_at=first.slot.window_end_at,
        consent=consent or ConsentRecord(source=source),
        restart_if=lambda state, finished_at: may_restart(sequence, source, state, finished_at,
                                                          now),
    )
    if wanted:
        store.add_tags(outcome.subscriber_id, wanted, now)
    return outcome


#: Enrollments that ended because the person left; a new opt-in or purchase starts afresh.
LEFT = ("unsubscribed", "suppressed")


def may_restart(sequence: Sequence, source: str, state: str, finished_at: datetime | None,
                now: datetime) -> bool:
    """The sequence's re-entry policy, for someone who joins again.

    `once` (the default): nothing changes. `restart`: a new cycle from the first step.
    `restart_after: N`: a new cycle if the last one finished at least N days ago. Whatever
    the policy, someone who had unsubscribed and now opts in or buys again starts afresh.
    """
    if state in LEFT and source in ("optin", "purchase"):
        return True
    policy = sequence.re_entry
    if policy == "restart":
        return True
    if isinstance(policy, RestartAfter):
        return finished_at is not None and now - finished_at >= timedelta(
            days=policy.restart_after)
    return False

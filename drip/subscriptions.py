"""Joining a sequence: validate the person, record consent, plan their first email."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from drip.addresses import normalise_email, validate_timezone
from drip.errors import InvalidInput
from drip.planner import first_email
from drip.sequence import Library
from drip.store import ConsentRecord, EnrollOutcome, Store

Source = Literal["purchase", "optin", "manual", "import"]
SOURCES: tuple[str, ...] = ("purchase", "optin", "manual", "import")


def enroll(store: Store, library: Library, *, email: str, sequence_key: str, now: datetime,
           name: str = "", timezone: str = "UTC", source: str = "manual",
           consent: ConsentRecord | None = None) -> EnrollOutcome:
    """Enroll someone; every input is checked before anything is written."""
    address = normalise_email(email)
    zone_name = validate_timezone(timezone)
    if source not in SOURCES:
        raise InvalidInput(f"'{source}' is not a source; use one of {', '.join(SOURCES)}.")
    sequence = library.sequence(sequence_key)
    first = first_email(sequence, zone_name, now)
    return store.enroll(
        email=address, name=name.strip(), timezone=zone_name, sequence_key=sequence.key,
        source=source, now=now, first_step=first.step_key, first_due_at=first.slot.due_at,
        first_window_end_at=first.slot.window_end_at,
        consent=consent or ConsentRecord(source=source),
    )

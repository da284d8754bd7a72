"""Time as a value: the core takes a Clock or a `now`, and never reads the wall clock itself."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that says what it is told: for `--now`, simulations and tests."""

    def __init__(self, at: datetime) -> None:
        self.at = as_utc(at)

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        from datetime import timedelta

        self.at = self.at + timedelta(**delta)


def as_utc(moment: datetime) -> datetime:
    """Aware UTC datetime; a naive one is taken to be UTC already (as SQLite returns them)."""
    if moment.tzinfo is UTC:
        return moment
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 instant such as 2026-03-01T06:30:00Z; naive means UTC."""
    try:
        return as_utc(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))
    except ValueError:
        from drip.errors import InvalidInput

        raise InvalidInput(
            f"'{text}' is not an ISO 8601 time; write it like 2026-03-01T06:30:00Z."
        ) from None

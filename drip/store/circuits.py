"""The provider circuit: whether dispatch may call a provider, shared by every worker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, select, update

from drip.clock import as_utc
from drip.models import Circuit
from drip.store._base import StoreBase


@dataclass(frozen=True)
class CircuitRow:
    provider: str
    state: str  # closed | open
    reason: str | None
    failures: int
    opened_at: datetime | None
    retry_at: datetime | None


class CircuitQueries(StoreBase):
    """Open, close and read the circuit of each provider."""

    def circuit(self, provider: str) -> CircuitRow:
        with self._session() as s:
            row = s.get(Circuit, provider)
            if row is None:
                return CircuitRow(provider, "closed", None, 0, None, None)
            return CircuitRow(row.provider, row.state, row.reason, row.failures,
                              as_utc(row.opened_at) if row.opened_at else None,
                              as_utc(row.retry_at) if row.retry_at else None)

    def circuits(self) -> list[CircuitRow]:
        with self._session() as s:
            names = list(s.scalars(select(Circuit.provider)))
        return [self.circuit(name) for name in names]

    def open_circuit(self, provider: str, reason: str, now: datetime,
                     retry_at: datetime) -> None:
        statement = self._insert(Circuit).values(
            provider=provider, state="open", reason=reason, failures=0, opened_at=now,
            retry_at=retry_at, updated_at=now)
        # Re-opened after a failed probe, it keeps the time the outage began: the wait
        # before the next probe is counted from it, so it doubles (Dispatcher._open_circuit).
        statement = statement.on_conflict_do_update(
            index_elements=["provider"],
            set_={"state": "open", "reason": reason, "retry_at": retry_at, "updated_at": now,
                  "opened_at": case((and_(Circuit.state == "open", Circuit.opened_at.is_not(None)),
                                     Circuit.opened_at),
                                    else_=statement.excluded.opened_at)},
        )
        with self._session() as s, s.begin():
            s.execute(statement)

    def close_circuit(self, provider: str, now: datetime) -> bool:
        """Close the circuit; True if it was open."""
        with self._session() as s, s.begin():
            result = s.execute(
                update(Circuit).where(Circuit.provider == provider)
                .values(state="closed", failures=0, retry_at=None, updated_at=now)
                .returning(Circuit.opened_at, Circuit.reason)
            ).first()
        return result is not None

    def count_transient_failure(self, provider: str, now: datetime) -> int:
        """One more batch in a row failed transiently; returns the run length."""
        statement = self._insert(Circuit).values(
            provider=provider, state="closed", failures=1, updated_at=now)
        statement = statement.on_conflict_do_update(
            index_elements=["provider"],
            set_={"failures": Circuit.failures + 1, "updated_at": now},
        )
        with self._session() as s, s.begin():
            s.execute(statement)
            return int(s.scalar(select(Circuit.failures).where(Circuit.provider == provider))
                       or 0)

    def reset_failures(self, provider: str, now: datetime) -> None:
        with self._session() as s, s.begin():
            s.execute(update(Circuit).where(Circuit.provider == provider, Circuit.failures > 0)
                      .values(failures=0, updated_at=now))

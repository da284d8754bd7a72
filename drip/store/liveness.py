"""Heartbeats and named leases: who is alive, who holds a periodic job."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import (
    and_,
    delete,
    or_,
    select,
)

from drip.clock import as_utc
from drip.models import (
    Heartbeat,
    Lease,
)
from drip.store._base import (
    StoreBase,
)


class LivenessQueries(StoreBase):
    """Scheduler heartbeats and leases."""

    def beat(self, worker: str, now: datetime, started_at: datetime, detail: str) -> None:
        statement = self._insert(Heartbeat).values(
            worker=worker, beat_at=now, started_at=started_at, detail=detail
        )
        statement = statement.on_conflict_do_update(
            index_elements=["worker"],
            set_={"beat_at": statement.excluded.beat_at, "detail": statement.excluded.detail},
        )
        with self._session() as s, s.begin():
            s.execute(statement)

    def acquire_lease(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Take or renew a named lease; True if `holder` now holds it."""
        statement = self._insert(Lease).values(name=name, holder=holder, expires_at=now + ttl)
        statement = statement.on_conflict_do_update(
            index_elements=["name"],
            set_={"holder": statement.excluded.holder,
                  "expires_at": statement.excluded.expires_at},
            where=or_(Lease.expires_at < now, Lease.holder == holder),
        )
        with self._session() as s, s.begin():
            s.execute(statement)
            current = s.scalar(select(Lease.holder).where(Lease.name == name))
        return current == holder

    def release_lease(self, name: str, holder: str) -> None:
        with self._session() as s, s.begin():
            s.execute(
                delete(Lease).where(and_(Lease.name == name, Lease.holder == holder))
            )

    def lease_holder(self, name: str, now: datetime) -> str | None:
        with self._session() as s:
            row = s.execute(
                select(Lease.holder, Lease.expires_at).where(Lease.name == name)
            ).first()
        if row is None or as_utc(row[1]) < now:
            return None
        return str(row[0])


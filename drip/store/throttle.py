"""The shared send budget: a token bucket in one row, so every worker obeys one rate."""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy import select, update

from drip.clock import as_utc
from drip.models import SendBudget
from drip.store._base import StoreBase


class ThrottleQueries(StoreBase):
    """Take and give back permission to send, under DRIP_MAX_PER_SECOND."""

    def take_allowance(self, name: str, want: int, now: datetime, rate: float) -> int:
        """Up to `want` emails that may go out now; 0 when the bucket is empty.

        The bucket holds at most one second of sending (at least one email) and refills
        at `rate` per second. The row is locked while it is read and written (FOR UPDATE
        on PostgreSQL; SQLite's BEGIN IMMEDIATE serialises writers), so concurrent
        workers never hand out the same tokens twice.
        """
        capacity = max(1.0, rate)
        seed = self._insert(SendBudget).values(name=name, tokens=capacity, refilled_at=now)
        with self._session() as s, s.begin():
            s.execute(seed.on_conflict_do_nothing(index_elements=["name"]))
            row = s.execute(select(SendBudget.tokens, SendBudget.refilled_at)
                            .where(SendBudget.name == name).with_for_update()).one()
            last = as_utc(row.refilled_at)
            elapsed = max(0.0, (now - last).total_seconds())
            tokens = min(capacity, float(row.tokens) + elapsed * rate)
            granted = min(want, math.floor(tokens))
            s.execute(update(SendBudget).where(SendBudget.name == name)
                      .values(tokens=tokens - granted, refilled_at=max(now, last)))
        return int(granted)

    def give_back_allowance(self, name: str, count: int, rate: float) -> None:
        """Return tokens that were taken but not used (fewer emails were due than granted)."""
        if count <= 0:
            return
        capacity = max(1.0, rate)
        with self._session() as s, s.begin():
            tokens = s.scalar(select(SendBudget.tokens).where(SendBudget.name == name)
                              .with_for_update())
            if tokens is not None:
                s.execute(update(SendBudget).where(SendBudget.name == name)
                          .values(tokens=min(capacity, tokens + count)))

    def seconds_until_allowance(self, name: str, now: datetime, rate: float) -> float:
        """How long until at least one email may go out."""
        with self._session() as s:
            row = s.execute(select(SendBudget.tokens, SendBudget.refilled_at)
                            .where(SendBudget.name == name)).one_or_none()
        if row is None:
            return 0.0
        elapsed = max(0.0, (now - as_utc(row.refilled_at)).total_seconds())
        missing = 1.0 - (float(row.tokens) + elapsed * rate)
        return max(0.0, missing / rate)

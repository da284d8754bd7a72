"""What an operator asks of drip: is it healthy, what went out, and steering single deliveries.

Pure rules over what the store reads; the CLI formats the answers. Every function
takes `now`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from drip.lifecycle import KILL_SWITCH
from drip.store import CircuitRow, HeartbeatRow, Overview, Store

#: Failed deliveries newer than this make `drip status --check` fail.
FAILED_WINDOW = timedelta(days=1)


def duration(seconds: float) -> str:
    """A short human duration: 45 s, 12 min, 3.5 h, 2.0 d."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


@dataclass(frozen=True)
class SchedulerHealth:
    """The newest heartbeat and what it says about the scheduler."""

    last_tick: datetime | None
    worker: str | None
    detail: str | None
    seconds_since_tick: float | None
    stale_after: float
    lag_seconds: float | None  # how long the oldest due, unsent email has waited

    @property
    def alive(self) -> bool:
        return self.seconds_since_tick is not None and self.seconds_since_tick <= self.stale_after

    @property
    def verdict(self) -> str:
        if self.last_tick is None:
            return "No scheduler has ever ticked: start `python scheduler.py`."
        assert self.seconds_since_tick is not None
        ago = duration(self.seconds_since_tick)
        if not self.alive:
            return (f"The scheduler looks dead: its last tick was {ago} ago "
                    f"({self.worker}); restart `python scheduler.py`.")
        return f"The scheduler is alive: last tick {ago} ago ({self.worker})."


@dataclass(frozen=True)
class Status:
    """One screen about the whole installation, with what needs a human."""

    now: datetime
    overview: Overview
    circuits: list[CircuitRow]
    pauses: list[tuple[str, datetime, str | None]]
    health: SchedulerHealth
    max_lag: float
    problems: list[str] = field(default_factory=list)

    @property
    def kill_switch(self) -> tuple[datetime, str | None] | None:
        for scope, since, reason in self.pauses:
            if scope == KILL_SWITCH:
                return since, reason
        return None

    def count(self, state: str) -> int:
        return next((c.total for c in self.overview.states if c.state == state), 0)


def scheduler_health(heartbeats: list[HeartbeatRow], oldest_due_at: datetime | None,
                     now: datetime, stale_after: timedelta) -> SchedulerHealth:
    newest = max(heartbeats, key=lambda b: b.beat_at, default=None)
    lag = (now - oldest_due_at).total_seconds() if oldest_due_at else None
    if newest is None:
        return SchedulerHealth(None, None, None, None, stale_after.total_seconds(), lag)
    return SchedulerHealth(newest.beat_at, newest.worker, newest.detail,
                           max((now - newest.beat_at).total_seconds(), 0.0),
                           stale_after.total_seconds(), lag)


def status(store: Store, now: datetime, *, stale_after: timedelta,
           max_lag: timedelta) -> Status:
    """Read everything `drip status` shows, and decide what needs a human."""
    overview = store.overview(now)
    health = scheduler_health(overview.heartbeats, overview.oldest_due_at, now, stale_after)
    current = Status(now=now, overview=overview, circuits=store.circuits(),
                     pauses=store.pauses(), health=health,
                     max_lag=max_lag.total_seconds())
    current.problems.extend(problems(current))
    return current


def problems(current: Status) -> list[str]:
    """Each thing that needs a human, as one sentence (empty when all is well)."""
    found: list[str] = []
    health = current.health
    if not health.alive:
        found.append(health.verdict)
    if health.lag_seconds is not None and health.lag_seconds > current.max_lag:
        found.append(f"Dispatch lag is {duration(health.lag_seconds)}: the oldest due email "
                     f"has waited longer than {duration(current.max_lag)}.")
    failed = next((c.last_day for c in current.overview.states if c.state == "failed"), 0)
    if failed:
        found.append(f"{failed} deliveries failed in the last 24 h; see "
                     "`drip sends --state failed`, then `drip retry`.")
    unknown = current.count("unknown")
    if unknown:
        found.append(f"{unknown} deliveries are unknown; see `drip sends --state unknown`, "
                     "then `drip resolve ID --as sent|resend`.")
    for circuit in current.circuits:
        if circuit.state == "open":
            found.append(f"The {circuit.provider} circuit is open: {circuit.reason}; "
                         "see `drip circuit show`.")
    return found

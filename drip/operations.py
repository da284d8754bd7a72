"""What an operator asks of drip: is it healthy, what went out, and steering single deliveries.

Pure rules over what the store reads; the CLI formats the answers. Every function
takes `now`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from drip import lifecycle
from drip.addresses import normalise_email
from drip.clock import parse_instant
from drip.errors import InvalidInput
from drip.lifecycle import KILL_SWITCH
from drip.reconcile import UnknownGroup, unknown_groups
from drip.sequence import Library
from drip.store import CircuitRow, HeartbeatRow, Overview, SendFilter, SendRow, Store, Timeline

#: Failed deliveries newer than this make `drip status --check` fail.
FAILED_WINDOW = timedelta(days=1)


def plural(count: int, word: str, many: str | None = None) -> str:
    """'1 delivery', '2 deliveries'."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def duration(seconds: float) -> str:
    """A short human duration: 45 s, 12 min, 3.5 h, 2.0 d."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


#: The heartbeat detail a scheduler writes when it stops cleanly (SIGTERM, SIGINT).
STOPPED_CLEANLY = "stopped cleanly"
#: The heartbeat detail a scheduler writes when a dispatch pass raised (it keeps ticking).
DISPATCH_FAILED = "dispatch failed; see the scheduler log"
#: Workers silent for longer than this are history, not news: status stops listing them.
WORKER_MEMORY = timedelta(days=1)


@dataclass(frozen=True)
class WorkerBeat:
    """One scheduler process as its heartbeats describe it."""

    worker: str
    last_tick: datetime
    seconds_since_tick: float
    detail: str | None
    #: alive (ticked recently), stopped (said goodbye), or silent (stopped ticking
    #: without saying goodbye: killed, crashed, or its machine is gone).
    state: str


@dataclass(frozen=True)
class SchedulerHealth:
    """The newest heartbeat and what it says about the scheduler, plus every worker heard
    from in the last day."""

    last_tick: datetime | None
    worker: str | None
    detail: str | None
    seconds_since_tick: float | None
    stale_after: float
    lag_seconds: float | None  # how long the oldest due, unsent email has waited
    workers: tuple[WorkerBeat, ...] = ()

    @property
    def alive(self) -> bool:
        """Some scheduler ticked recently and has not said it stopped."""
        return any(w.state == "alive" for w in self.workers)

    @property
    def stopped(self) -> bool:
        """The newest heartbeat is a clean goodbye (SIGINT, SIGTERM), and none is alive."""
        return not self.alive and self.detail == STOPPED_CLEANLY

    @property
    def silent(self) -> list[WorkerBeat]:
        """Workers that stopped ticking without stopping cleanly."""
        return [w for w in self.workers if w.state == "silent"]

    @property
    def verdict(self) -> str:
        if self.last_tick is None:
            return "No scheduler has ever ticked: start `python scheduler.py`."
        assert self.seconds_since_tick is not None
        ago = duration(self.seconds_since_tick)
        if self.stopped:
            return (f"The scheduler stopped at {self.last_tick:%Y-%m-%d %H:%M} UTC ({ago} ago, "
                    f"cleanly: {self.worker}); nothing is sent until `python scheduler.py` "
                    "runs again.")
        if not self.alive:
            return (f"The scheduler looks dead: its last tick was {ago} ago "
                    f"({self.worker}); restart `python scheduler.py`.")
        alive = sum(1 for w in self.workers if w.state == "alive")
        if alive > 1:
            return f"{alive} schedulers are alive: the last tick was {ago} ago ({self.worker})."
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
    #: Unknown emails by cause and age, and what will settle them (drip.reconcile).
    unknown: list[UnknownGroup] = field(default_factory=list)

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
    workers = []
    for b in sorted(heartbeats, key=lambda b: b.beat_at, reverse=True):
        since = max((now - b.beat_at).total_seconds(), 0.0)
        if b is not newest and since > WORKER_MEMORY.total_seconds():
            continue
        state = ("stopped" if b.detail == STOPPED_CLEANLY
                 else "alive" if since <= stale_after.total_seconds() else "silent")
        workers.append(WorkerBeat(b.worker, b.beat_at, since, b.detail, state))
    return SchedulerHealth(newest.beat_at, newest.worker, newest.detail,
                           max((now - newest.beat_at).total_seconds(), 0.0),
                           stale_after.total_seconds(), lag, tuple(workers))


def status(store: Store, now: datetime, *, stale_after: timedelta,
           max_lag: timedelta, activity: bool = False,
           settle_after: timedelta = timedelta(seconds=900)) -> Status:
    """Read everything `drip status` shows, and decide what needs a human."""
    overview = store.overview(now)
    health = scheduler_health(overview.heartbeats, overview.oldest_due_at, now, stale_after)
    unknown = (unknown_groups(store.unknown_since(), now, activity=activity,
                              settle_after=settle_after)
               if any(c.state == "unknown" and c.total for c in overview.states) else [])
    current = Status(now=now, overview=overview, circuits=store.circuits(),
                     pauses=store.pauses(), health=health,
                     max_lag=max_lag.total_seconds(), unknown=unknown)
    current.problems.extend(problems(current))
    return current


def problems(current: Status) -> list[str]:
    """Each thing that needs a human, as one sentence (empty when all is well)."""
    found: list[str] = []
    kill = current.kill_switch
    if kill is not None:  # a monitor must hear that nothing goes out, however it was meant
        since, reason = kill
        found.append(f"Sending is paused by the kill switch since {since:%Y-%m-%d %H:%M} UTC"
                     + (f" ({reason})" if reason else "")
                     + "; nothing is sent until `drip resume --all`.")
    health = current.health
    if not health.alive:
        found.append(health.verdict)
    else:  # some scheduler is alive: name any that went quiet without stopping cleanly
        for w in health.silent:
            found.append(f"The scheduler {w.worker} went silent {duration(w.seconds_since_tick)} "
                         "ago without stopping cleanly (killed, crashed or its machine is "
                         "down); the others carry on. Restart it, or ignore this if it was "
                         "retired: it is listed for a day.")
    for w in health.workers:
        if w.state == "alive" and w.detail == DISPATCH_FAILED:
            found.append(f"The last dispatch pass of the scheduler {w.worker} failed: it is "
                         "alive but sends nothing while its passes fail; see its log "
                         "('dispatch pass failed').")
    if health.lag_seconds is not None and health.lag_seconds > current.max_lag:
        found.append(f"Dispatch lag is {duration(health.lag_seconds)}: the oldest due email "
                     f"has waited longer than {duration(current.max_lag)}.")
    failed = next((c.last_day for c in current.overview.states if c.state == "failed"), 0)
    if failed:
        found.append(f"{plural(failed, 'delivery', 'deliveries')} failed in the last 24 h; see "
                     "`drip sends --state failed`, then `drip retry`.")
    unknown = current.count("unknown")
    if unknown:
        found.append(f"{plural(unknown, 'delivery is', 'deliveries are')} unknown; see "
                     "`drip sends --state unknown`, "
                     "then `drip resolve ID --as sent|resend`.")
    for circuit in current.circuits:
        if circuit.state == "open":
            found.append(f"The {circuit.provider} circuit is open: {circuit.reason}; "
                         "see `drip circuit show`.")
    return found


# --- listings --------------------------------------------------------------------------

DELIVERY_STATES = ("scheduled", "claimed", "sending", "sent", "failed", "unknown", "held",
                   "cancelled")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_moment(text: str, now: datetime) -> datetime:
    """An ISO 8601 time, or an age such as 30m, 24h, 7d or 2w (that long before `now`)."""
    value = text.strip().lower()
    if value[:-1].isdigit() and value[-1:] in _UNITS:
        try:
            return now - timedelta(seconds=int(value[:-1]) * _UNITS[value[-1]])
        except OverflowError:  # before the year 1
            raise InvalidInput(f"'{text}' reaches back before the year 1; give a shorter "
                               "age, such as 30d.") from None
    return parse_instant(text)


def find_sends(store: Store, now: datetime, *, states: Iterable[str] = (),
               sequence_key: str | None = None, step_key: str | None = None,
               email: str | None = None, since: str | None = None, until: str | None = None,
               limit: int | None = 50, offset: int = 0) -> list[SendRow]:
    """Deliveries matching an operator's filters, newest first."""
    wanted = tuple(states)
    unknown = [s for s in wanted if s not in DELIVERY_STATES]
    if unknown:
        raise InvalidInput(f"'{unknown[0]}' is not a delivery state; use one of "
                           f"{', '.join(DELIVERY_STATES)}.")
    if limit is not None and limit < 1:
        raise InvalidInput("--limit must be 1 or more.")
    if offset < 0:
        raise InvalidInput("--offset must be 0 or more.")
    return store.sends(SendFilter(
        states=wanted, sequence_key=sequence_key, step_key=step_key,
        email=normalise_email(email) if email else None,
        since=parse_moment(since, now) if since else None,
        until=parse_moment(until, now) if until else None, limit=limit, offset=offset,
    ))


def timeline(store: Store, email: str) -> Timeline:
    """Everything that happened to one person."""
    return store.timeline(normalise_email(email))


# --- steering --------------------------------------------------------------------------

RETRYABLE = ("failed",)


@dataclass(frozen=True)
class Retried:
    retried: list[int]
    skipped: list[tuple[int, str]]


def retry(store: Store, now: datetime, *, state: str = "failed",
          ids: Iterable[int] = ()) -> Retried:
    """Send failed deliveries again at the next dispatch (within their send window)."""
    if state not in RETRYABLE:
        hint = " Unknown deliveries are settled with `drip resolve`." if state == "unknown" else ""
        raise InvalidInput(f"Only {', '.join(RETRYABLE)} deliveries can be retried.{hint}")
    retried, skipped = store.retry_deliveries(now, state=state, ids=sorted(set(ids)))
    return Retried(retried, skipped)


RESOLUTIONS = ("sent", "resend")


def resolve(store: Store, now: datetime, ids: Iterable[int], resolution: str) -> int:
    """Settle unknown deliveries: `sent` (it went out) or `resend` (send it again now)."""
    if resolution not in RESOLUTIONS:
        raise InvalidInput(f"'{resolution}' is not a resolution; use --as sent or --as resend.")
    wanted = sorted(set(ids))
    if not wanted:
        raise InvalidInput("Name at least one delivery id (see `drip sends --state unknown`).")
    return store.resolve_unknown(wanted, now, resend=resolution == "resend")


@dataclass(frozen=True)
class Steered:
    """What a pause or resume did, in words the CLI prints as they are."""

    changed: bool
    sentence: str


def pause(store: Store, library: Library, now: datetime, *, email: str | None = None,
          sequence_key: str | None = None, everything: bool = False,
          reason: str | None = None) -> Steered:
    """Pause one subscriber (optionally in one sequence), a whole sequence, or all sending."""
    scope = _scope(library, email, sequence_key, everything)
    if scope == "all":
        change = lifecycle.pause_all(store, now, reason)
        return Steered(change.changed, "The kill switch is on: nothing is sent until "
                       "`drip resume --all`." if change.changed
                       else "The kill switch was already on.")
    if email is None:
        assert sequence_key is not None
        change = lifecycle.pause_sequence(store, sequence_key, now, reason)
        return Steered(change.changed, f"Paused the sequence {sequence_key}." if change.changed
                       else f"The sequence {sequence_key} was already paused.")
    change = lifecycle.pause_subscriber(store, email, now, sequence_key)
    where = f" in {sequence_key}" if sequence_key else ""
    held = plural(change.count, "enrollment")
    return Steered(change.changed, f"Paused {normalise_email(email)}{where} ({held} held)."
                   if change.changed else f"{normalise_email(email)} had nothing to pause{where}.")


def resume(store: Store, library: Library, now: datetime, *, email: str | None = None,
           sequence_key: str | None = None, everything: bool = False) -> Steered:
    """Undo `pause`. Held email moves to its next send slot: one email each, never a burst."""
    scope = _scope(library, email, sequence_key, everything)
    if scope == "all":
        change = lifecycle.resume_all(store)
        return Steered(change.changed, "The kill switch is off: the next dispatch sends "
                       "what is due." if change.changed else "The kill switch was not on.")
    if email is None:
        assert sequence_key is not None
        change = lifecycle.resume_sequence(store, library, sequence_key, now)
        moved = plural(change.count, "pending email")
        return Steered(change.changed, f"Resumed the sequence {sequence_key}; {moved} moved "
                       "later by the length of the pause." if change.changed
                       else f"The sequence {sequence_key} was not paused.")
    change = lifecycle.resume_subscriber(store, library, email, now, sequence_key)
    held = plural(change.count, "held email goes", "held emails go")
    return Steered(change.changed, f"Resumed {normalise_email(email)}; {held} out at the next "
                   "send slot." if change.changed else f"{normalise_email(email)} was not paused.")


def _scope(library: Library, email: str | None, sequence_key: str | None,
           everything: bool) -> str:
    if everything and (email or sequence_key):
        raise InvalidInput("--all pauses everything; give it without an email or --sequence.")
    if not everything and not email and not sequence_key:
        raise InvalidInput("Say what: an EMAIL, --sequence KEY, or --all for the kill switch.")
    if sequence_key:
        library.sequence(sequence_key)  # an unknown key is an error, not a silent no-op
    return "all" if everything else "subscriber" if email else "sequence"

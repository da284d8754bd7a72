"""One dispatch pass: claim what is due, render it, hand it to the provider, record the result.

The order of commits is the delivery guarantee (docs/delivery.md): a delivery is
committed as `sending` before the provider is called and as `sent` right after,
so a crash in between leaves it `unknown`, never silently lost or sent twice.
"""

from __future__ import annotations

import gc
import logging
import os
import random
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence, Set
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, NamedTuple

from drip.addresses import zone
from drip.clock import Clock
from drip.daily_limit import LOOK_BACK, over_the_limit
from drip.errors import DripError, SendingHalted, TemplateError
from drip.experiments.assignment import assignment, held_out
from drip.experiments.clicks import LinkTracker, click_values
from drip.links import Links
from drip.message import Message, recipient_values
from drip.nudges import choose_nudge, sequence_goal_reached
from drip.planner import (
    CHECKPOINT_REMINDER,
    NOT_YET,
    PASSED,
    REPEAT_LAST,
    NextEmail,
    Sent,
    base_variant,
    decide,
    email_after,
    is_checkpoint_reminder,
    late_repeat_step,
    progress,
)
from drip.providers.base import Provider, SendResult, batch_key, send_probe
from drip.render import Renderer, Sender
from drip.schedule import SendPreference, next_open_slot, personal
from drip.sequence import Library, Schedule
from drip.sequence import Sequence as LibrarySequence
from drip.store import (
    CircuitRow,
    ClaimedDelivery,
    DueBatch,
    Move,
    Outcome,
    PlannedDelivery,
    Sending,
    SplitSent,
    Store,
    WentOut,
)
from drip.store.preferences import preference_of
from drip.tags import branch_variant, exit_tag, tags_stop_nudges

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
#: Batches in a row that fail transiently before the circuit opens.
TRANSIENT_RUN = 3
CIRCUIT_WAIT = timedelta(seconds=60)
CIRCUIT_WAIT_CAP = timedelta(hours=1)


SEND_BUDGET = "send"  # the one shared token bucket's name
REAPER_LEASE = "reaper"  # who returns expired claims and moves missed windows this period


#: During a pass, the cyclic garbage collector looks at young objects after this many new
#: ones instead of Python's 700. A batch allocates tens of thousands of objects, almost all
#: freed by reference counting, and each collection walks every young object still alive.
PASS_GC_THRESHOLD = 20_000
#: How long a thread may hold the interpreter lock during a pass, in seconds.
PASS_SWITCH_INTERVAL = 0.001
_switch_interval = 0.005
_gc_lock = threading.Lock()
_gc_passes = 0  # passes running in this process (a scheduler runs one; tests may run more)
_gc_threshold: tuple[int, int, int] | None = None


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Keep the garbage collector's work in a pass small: the objects alive when the pass
    starts (modules, sequences, compiled templates, the connection pool) are left out of
    its walks (`gc.freeze`), and young objects are collected less often. Measured on a
    50,000-email pass: 0.13 s in the collector instead of 1.08 s. Both are undone when
    the last pass in the process ends, so garbage cycles among older objects are still
    collected between passes. The interpreter's switch interval is shortened for the pass
    and restored the same way."""
    global _gc_passes, _gc_threshold, _switch_interval
    with _gc_lock:
        _gc_passes += 1
        if _gc_passes == 1:
            _gc_threshold = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(PASS_GC_THRESHOLD, _gc_threshold[1], _gc_threshold[2])
            # The pass's two threads each wait on sockets; a thread whose answer has come
            # waited up to the 5 ms default for the lock after every statement (measured:
            # the first statement of a transaction waited 16-24 ms). 1 ms: the database
            # timer of a 100,000-email pass 13 s -> 11 s.
            _switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(PASS_SWITCH_INTERVAL)
    try:
        yield
    finally:
        with _gc_lock:
            _gc_passes -= 1
            if _gc_passes == 0 and _gc_threshold is not None:
                gc.set_threshold(*_gc_threshold)
                sys.setswitchinterval(_switch_interval)
                gc.unfreeze()


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{random.randbytes(2).hex()}"


def backoff(attempts: int, *, base: float = 30.0, cap: float = 3600.0) -> float:
    """Seconds to wait before attempt `attempts + 1`: exponential, capped, with full jitter."""
    return random.uniform(base / 2, min(cap, base * 2 ** max(attempts - 1, 0)))


@dataclass
class SentItem:
    email: str
    step_key: str
    variant: str
    timezone: str
    at: datetime
    nudge: str | None = None


#: A pass lists at most this many sent emails one by one; beyond it, only counts grow,
#: so a pass over a million due emails keeps its memory flat.
SENT_DETAIL_LIMIT = 1000


@dataclass
class DispatchReport:
    #: The first SENT_DETAIL_LIMIT emails sent in this pass; `sent_count` counts them all.
    sent: list[SentItem] = field(default_factory=list)
    sent_count: int = 0
    failed: int = 0
    retried: int = 0
    unknown: int = 0
    cancelled: int = 0
    held: int = 0
    released: int = 0
    rescheduled: int = 0
    planned: int = 0
    expired_leases: int = 0
    #: How often this pass waited for the shared send budget (DRIP_MAX_PER_SECOND).
    throttled: int = 0
    paused: bool = False
    halted: str | None = None
    circuit_open: bool = False
    #: Seconds spent in the database, in rendering and in the provider during this pass.
    timings: dict[str, float] = field(default_factory=dict)
    #: How many sent emails this report may still list (a batch's part gets what is left).
    sent_room: int = SENT_DETAIL_LIMIT

    @property
    def lists_more(self) -> bool:
        return len(self.sent) < self.sent_room

    def add_sent(self, item: SentItem) -> None:
        self.sent_count += 1
        if len(self.sent) < self.sent_room:
            self.sent.append(item)

    def add_time(self, part: str, seconds: float) -> None:
        self.timings[part] = self.timings.get(part, 0.0) + seconds

    def merge(self, other: DispatchReport) -> None:
        """Add what another thread counted for one batch into this pass's report."""
        for item in other.sent:
            self.add_sent(item)
        self.sent_count += other.sent_count - len(other.sent)
        for name in ("failed", "retried", "unknown", "cancelled", "held", "released", "planned"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for part, seconds in other.timings.items():
            self.add_time(part, seconds)

    @contextmanager
    def timed(self, part: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[part] = self.timings.get(part, 0.0) + time.perf_counter() - started

    @property
    def nothing_happened(self) -> bool:
        return not (self.sent_count or self.failed or self.retried or self.unknown or self.cancelled
                    or self.rescheduled or self.expired_leases)


@dataclass(frozen=True)
class BatchTally:
    accepted: int
    transient: int
    reason: str | None
    #: The provider refused to take any email (a bad API key): sending must stop.
    halted: SendingHalted | None = None
    #: Emails the provider refused one by one (it answered: it is up).
    refused: int = 0
    #: Emails sent without an answer (timeouts, dropped connections).
    unknown: int = 0


class _Abandon(Exception):
    """Leave the batch in hand unsent: its transaction rolls back and it stays scheduled."""


def stranded_reason(sequence_key: str, step_key: str) -> str:
    return (f"The step '{step_key}' is no longer in '{sequence_key}' (removed or renamed "
            "while this subscriber was on it); put the step back under its old key (`drip "
            "lint` lists stranded enrollments), then resume the subscriber.")


def missing_sequence_reason(sequence_key: str) -> str:
    return (f"The sequence '{sequence_key}' no longer exists; restore "
            f"sequences/{sequence_key}.yaml, then resume the subscriber.")


def stranded(claimed: ClaimedDelivery, step_key: str) -> Outcome:
    """Hold, never drop, an enrollment whose step was removed or renamed in its sequence."""
    return Outcome(claimed.id, "held", error=stranded_reason(claimed.sequence_key, step_key))


class _Stop(NamedTuple):
    """Why a claimed email must not go: its outcome's state and reason."""

    state: Literal["cancelled", "held"]
    reason: str


class _Later(NamedTuple):
    """A checkpoint reminder whose question was answered in time: no email; the row moves on
    to the weekly slot the reminded email would have had."""


_LATER = _Later()
#: What a claimed email becomes: (step, variant, nudge) to send, why it must not go, or
#: (for a reminder no longer needed) that it moves to its weekly slot instead.
_Choice = tuple[str, str, str | None] | _Stop | _Later
_NOTHING_OWNED: frozenset[str] = frozenset()


class Courier:
    """Carries one batch at a time to the provider and records the answers.

    On PostgreSQL it works on a second thread and a second connection: while it waits for
    the provider and records batch N, the dispatcher claims and renders batch N+1, and
    marks N+1 `sending` only once N's answer is in. So a batch is never handed to the
    provider before the previous answer has been judged (a halt or an open circuit stops
    the next one), at most one batch is in the provider's hands, and memory stays flat.
    SQLite has one writer at a time, so there the courier works in line.
    """

    def __init__(self, background: bool) -> None:
        self.background = background
        self._pool = (ThreadPoolExecutor(1, thread_name_prefix="drip-courier")
                      if background else None)
        self._pending: Future[tuple[BatchTally, DispatchReport]] | None = None

    def start(self, deliver: Callable[[DispatchReport], BatchTally], sent_room: int) -> None:
        """Carry one batch; its report may list `sent_room` more sent emails."""
        if self._pending is not None:
            raise RuntimeError("the courier carries one batch at a time")
        if self._pool is not None:
            self._pending = self._pool.submit(_carry, deliver, sent_room)
            return
        done: Future[tuple[BatchTally, DispatchReport]] = Future()
        try:
            done.set_result(_carry(deliver, sent_room))
        except BaseException as exc:  # surfaced by result(), as from the thread
            done.set_exception(exc)
        self._pending = done

    def result(self, report: DispatchReport) -> BatchTally | None:
        """Wait for the batch being carried (None if there is none) and add its counts to
        `report`; raise what carrying it raised."""
        pending, self._pending = self._pending, None
        if pending is None:
            return None
        tally, part = pending.result()
        report.merge(part)
        return tally

    def close(self) -> None:
        """Let a batch still being carried finish (its error is logged, not raised)."""
        pending, self._pending = self._pending, None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if pending is not None and pending.exception() is not None:
            log.error("carrying the last batch failed; its emails stay in flight until their "
                      "lease ends, then show as unknown", exc_info=pending.exception())


def _carry(deliver: Callable[[DispatchReport], BatchTally],
           sent_room: int) -> tuple[BatchTally, DispatchReport]:
    part = DispatchReport(sent_room=max(sent_room, 0))
    return deliver(part), part


@dataclass
class _PassState:
    """What one pass knows of the provider's circuit."""

    circuit: CircuitRow
    probing: bool
    #: The run of failed batches as this pass last knew it (it resets on a success).
    failures: int = 0


class Dispatcher:
    """Runs dispatch passes against one store and one provider."""

    def __init__(self, *, store: Store, library: Library, renderer: Renderer,
                 provider: Provider, links: Links, sender: Sender, clock: Clock,
                 batch_size: int = 500, lease_seconds: int = 300,
                 worker: str | None = None, max_per_second: float = 0.0,
                 settle: Callable[[datetime], None] | None = None,
                 circuit_wait: timedelta = CIRCUIT_WAIT) -> None:
        self.store = store
        self.library = library
        self.renderer = renderer
        self.provider = provider
        self.links = links
        self.sender = sender
        self.clock = clock
        self.batch_size = batch_size
        self.lease = timedelta(seconds=lease_seconds)
        self.worker = worker or worker_name()
        self.max_per_second = max_per_second
        #: Housekeeping that settles unknown emails by asking the provider (drip.reconcile).
        self.settle = settle
        #: The first wait of an open circuit (DRIP_CIRCUIT_WAIT_SECONDS); each failed probe
        #: doubles it, up to CIRCUIT_WAIT_CAP.
        self.circuit_wait = circuit_wait
        self._stop = threading.Event()
        self._tracker = LinkTracker()
        #: The split tests whose leader goes to everyone now (`winner: auto`), per pass.
        self._leaders: dict[tuple[str, str], str] = {}

    def stop(self) -> None:
        """Finish the batch in hand, then return from `run_once`."""
        self._stop.set()

    def run_once(self, *, last: bool = False) -> DispatchReport:
        """One pass. `last`: this process makes no other (`drip dispatch`), so it gives
        the reaper lease back when done: housekeeping is then the next pass's, not held
        for a lease's length, or until a `--now` that may be years ahead."""
        try:
            with fewer_collections():
                return self._pass()
        finally:
            if last:
                try:
                    self.store.release_lease(REAPER_LEASE, self.worker)
                except Exception:  # the pass's own error matters more; the lease runs out
                    log.warning("could not give the reaper lease back", exc_info=True)

    def _pass(self) -> DispatchReport:
        report = DispatchReport()
        now = self.clock.now()
        self._leaders = {(r.sequence_key, r.test_name): r.variant
                         for r in self.store.split_leaders()}
        # Housekeeping runs in one worker at a time: whoever holds the reaper lease. The
        # lease lasts as long as a delivery's lease, so when a dead worker's claims expire
        # its reaper lease has expired too and a live worker takes over. It sends nothing,
        # so it goes on under the kill switch: a dead worker's sends still become unknown.
        if self.store.acquire_lease(REAPER_LEASE, self.worker, now, self.lease):
            expired = self.store.expire_leases(now, self._next_steps)
            report.expired_leases = len(expired.went_out)
            report.planned += expired.planned
            report.rescheduled = self._reschedule_missed(now)
            if self.settle is not None:
                try:
                    self.settle(now)
                except DripError:  # asking the provider never stops a pass from sending
                    log.warning("settling unknown emails failed", exc_info=True)
        if "all" in self.store.paused_scopes():
            report.paused = True
            return report
        circuit = self.store.circuit(self.provider.name)
        if circuit.state == "open" and circuit.retry_at is not None and now < circuit.retry_at:
            report.circuit_open = True
            report.halted = (f"The {self.provider.name} circuit is open until "
                             f"{circuit.retry_at:%Y-%m-%d %H:%M} UTC: {circuit.reason}")
            return report
        state = _PassState(circuit, probing=circuit.state == "open", failures=circuit.failures)
        courier = Courier(background=self.store.dialect == "postgresql")
        try:
            while not self._stop.is_set():
                now = self.clock.now()
                # a probe risks one email, not a batch
                limit = 1 if state.probing else self.batch_size
                if self.max_per_second:
                    with report.timed("database"):
                        limit = self.store.take_allowance(SEND_BUDGET, limit, now,
                                                          self.max_per_second)
                    if limit == 0:
                        if not self._wait_for_allowance(now, report):
                            break
                        continue
                if not self._batch(limit, state, report, courier):
                    break
            last = courier.result(report)
            if last is not None:
                self._judge(last, state, report)
        finally:
            courier.close()
        return report

    def _judge(self, tally: BatchTally, state: _PassState, report: DispatchReport) -> bool:
        """Act on a batch's answer: open or close the circuit. True to end the pass."""
        if tally.halted is not None:
            self._open_circuit(str(tally.halted),
                               state.circuit.opened_at if state.probing else None)
            report.halted = str(tally.halted)
            report.circuit_open = True
            return True
        if tally.accepted or tally.refused:  # the provider answered for an email: it is up
            if state.probing:
                self.store.close_circuit(self.provider.name, self.clock.now())
                log.info("the %s circuit closed: a probe succeeded", self.provider.name)
                state.probing = False
            elif state.failures:
                self.store.reset_failures(self.provider.name, self.clock.now())
                state.failures = 0
        elif tally.transient or tally.unknown or state.probing:
            # A probe that was not answered (a timeout counts) re-opens the circuit at once,
            # with a longer wait: a probe risks one email, never a pass of them.
            run = state.failures = self.store.count_transient_failure(self.provider.name,
                                                                      self.clock.now())
            if state.probing or run >= TRANSIENT_RUN:
                reason = f"{run} batches in a row failed: {tally.reason}"
                self._open_circuit(reason, state.circuit.opened_at if state.probing else None)
                report.halted = reason
                report.circuit_open = True
                return True
        return False

    def _wait_for_allowance(self, now: datetime, report: DispatchReport) -> bool:
        """Sleep until the shared send budget refills; False to end the pass instead.

        The pass ends when asked to stop, or when the clock did not move while we slept
        (a frozen clock in a simulation would otherwise wait forever).
        """
        report.throttled += 1
        delay = self.store.seconds_until_allowance(SEND_BUDGET, now, self.max_per_second)
        if self._stop.wait(min(max(delay, 0.01), 1.0)):
            return False
        return self.clock.now() > now

    def _open_circuit(self, reason: str, opened_at: datetime | None) -> None:
        """Stop calling the provider for a while; each failed probe doubles the wait."""
        now = self.clock.now()
        wait = self.circuit_wait if opened_at is None else min(
            max(now - opened_at, self.circuit_wait), CIRCUIT_WAIT_CAP)
        self.store.open_circuit(self.provider.name, reason, now, now + wait)
        log.error("the %s circuit is open until %s: %s", self.provider.name, now + wait, reason)

    # --- steps of a pass -------------------------------------------------------------------

    def _reschedule_missed(self, now: datetime) -> int:
        """Deliveries whose local send window closed move to the next open slot, never to night."""
        total = 0
        while True:
            missed = self.store.missed_windows(now, 1000)
            if not missed:
                return total
            moves = []
            for m in missed:
                sequence = self.library.sequences.get(m.sequence_key)
                schedule = sequence.schedule if sequence else None
                if schedule is None:
                    schedule = Schedule()
                # at the subscriber's own send time, if they chose one
                preference = preference_of(m.send_time, m.send_weekday)
                slot = next_open_slot(now, personal(schedule, preference), zone(m.timezone))
                moves.append((m.delivery_id, slot.due_at, slot.window_end_at))
            self.store.move_due(moves)
            total += len(moves)

    def _batch(self, limit: int, state: _PassState, report: DispatchReport,
               courier: Courier) -> bool:
        """Claim and decide one batch, judge the answer to the batch before it, then mark
        this one `sending` and give it to the courier. False when the pass should end.

        The claim, the decisions and the `sending` marks are one transaction: if this
        worker dies, or the previous answer stops the pass, before it commits, the emails
        are still scheduled and are sent later. The provider's answers and the next emails
        are recorded in a second transaction, by the courier.
        """
        now = self.clock.now()
        outcomes: list[Outcome] = []
        messages: list[Message] = []
        by_id: dict[int, ClaimedDelivery] = {}
        moves: list[Move] = []
        preferences: dict[int, SendPreference] = {}
        handed = 0  # emails committed as `sending`: the rest of `limit` goes back to the budget
        try:
            started = time.perf_counter()
            # The claim reads the pauses in its own transaction: the kill switch also acts
            # between the batches of a long pass, and a paused sequence is never claimed.
            with self.store.claim_batch(now, limit, self.worker, now + self.lease) as due:
                report.add_time("database", time.perf_counter() - started)
                if due.kill_switch:
                    report.paused = True
                    return False
                batch = due.rows
                if batch:
                    with report.timed("database"):
                        allowed = self._within_daily_limits(batch, due, now, moves)
                        histories = due.histories()
                        owned = due.ownership()
                        tags = due.tags()
                        preferences = due.preferences()
                    with report.timed("rendering"):
                        finished = self._decide(allowed, histories, owned, outcomes, messages,
                                                by_id, moves, tags, preferences)
                    with report.timed("database"):
                        due.settle(outcomes, finished, moves)
                with report.timed("waiting"):  # for the courier: the batch before this one
                    previous = courier.result(report)
                if previous is not None and self._judge(previous, state, report):
                    raise _Abandon
                if previous is not None and due.kill_switch_now():
                    # pulled while the batch before was out: this one stays scheduled
                    report.paused = True
                    raise _Abandon
                if self._stop.is_set():  # asked to stop: nothing more goes out
                    report.released += len(batch)
                    raise _Abandon
                if not batch:
                    return False
                with report.timed("database"):
                    sending_at = self.clock.now()
                    held = due.send([Sending(m.delivery_id, m.step_key, m.variant, m.nudge,
                                             m.content.content_hash) for m in messages],
                                    sending_at, sending_at + self.lease,
                                    batch_key(m.delivery_id for m in messages),
                                    tests=self._tests(messages))
                committing = time.perf_counter()
            report.add_time("database", time.perf_counter() - committing)
            handed = len(held)
        except _Abandon:
            return False
        finally:
            if self.max_per_second and limit > handed:
                self.store.give_back_allowance(SEND_BUDGET, limit - handed, self.max_per_second)
        if len(held) < len(messages):  # cannot happen while the rows are held; be safe
            log.warning("%d emails were no longer held when marked sending; not sending them",
                        len(messages) - len(held))
            messages = [m for m in messages if m.delivery_id in held]
        report.rescheduled += len(moves)
        for o in outcomes:
            if o.state == "cancelled":
                report.cancelled += 1
            elif o.state == "failed":
                report.failed += 1
            elif o.state == "held":
                report.held += 1
        if messages:
            courier.start(lambda part: self._deliver(messages, by_id, part, state, preferences),
                          report.sent_room - len(report.sent))
            if not courier.background:
                # In line (SQLite), the answer is in already: judge it now, outside any
                # transaction, since the circuit's writes would wait for the claim's lock.
                answered = courier.result(report)
                if answered is not None and self._judge(answered, state, report):
                    return False
        return True

    def _deliver(self, messages: list[Message], by_id: dict[int, ClaimedDelivery],
                 report: DispatchReport, state: _PassState,
                 preferences: Mapping[int, SendPreference] | None = None) -> BatchTally:
        """Hand a batch marked `sending` to the provider, then record the answers and plan
        the next emails in one transaction. Runs on the courier's thread."""
        ids = [m.delivery_id for m in messages]
        halted: SendingHalted | None = None
        try:
            with report.timed("provider"):
                results = (send_probe(self.provider, messages) if state.probing
                           else self.provider.send_batch(messages))
        except SendingHalted as exc:
            # Refused midway: what it answered before is recorded below; the rest was
            # never handed over and goes back to the queue.
            halted, results = exc, list(exc.answered)
            answered_ids = {r.delivery_id for r in results}
            report.released += self.store.release_claims(
                [i for i in ids if i not in answered_ids], self.worker)
            if not results:
                return BatchTally(accepted=0, transient=0, reason=str(exc), halted=exc)
            messages = [m for m in messages if m.delivery_id in answered_ids]
        except Exception as exc:  # a provider bug: we cannot know what went out
            log.exception("the %s provider failed unexpectedly", self.provider.name)
            results = [SendResult(i, "unknown", reason=f"provider error: {exc!r}",
                                  batch_key=batch_key(ids)) for i in ids]
        answered = self._outcomes(
            results, by_id, {m.delivery_id: m for m in messages} if report.lists_more else {},
            report, spend=not self._provider_wide(results, state))
        report.failed += sum(1 for o in answered if o.state == "failed")
        # What the ledger would read back for each email that went out (or may have):
        # the dispatcher knows it already, so the recording transaction need not ask.
        sent_at = self.clock.now()
        went_out = {}
        for m in messages:
            c = by_id[m.delivery_id]
            went_out[c.id] = WentOut(c.id, c.enrollment_id, c.subscriber_id, m.sequence_key,
                                     c.seq_no, m.step_key, m.variant, c.timezone, sent_at)
        with report.timed("database"):
            report.planned += self.store.record_outcomes(
                answered, sent_at, went_out=went_out,
                next_steps=lambda w: self._next_steps(w, preferences)).planned
        transient = [o for o in answered if o.state == "scheduled"]
        unknown = [o for o in answered if o.state == "unknown"]
        return BatchTally(
            accepted=sum(1 for o in answered if o.state == "sent"),
            transient=len(transient),
            reason=(str(halted) if halted else transient[-1].error if transient
                    else unknown[-1].error if unknown else None),
            halted=halted,
            refused=sum(1 for r in results if r.verdict == "permanent"),
            unknown=len(unknown),
        )

    def _provider_wide(self, results: Sequence[SendResult], state: _PassState) -> bool:
        """Whether a batch failed because the provider was failing for everyone, so its
        emails keep their attempts and simply wait: no email in it was answered, and the
        circuit was open (this was a probe), or the provider rate-limited us, or the
        batch before it failed too (in any worker)."""
        if not results or any(r.verdict in ("accepted", "permanent") for r in results):
            return False
        if state.probing or any(r.retry_after is not None for r in results):
            return True
        return self.store.circuit(self.provider.name).failures > 0

    def _within_daily_limits(self, batch: list[ClaimedDelivery], due: DueBatch,
                             now: datetime, moves: list[Move]) -> list[ClaimedDelivery]:
        """The claimed emails that may go today (schedule.max_per_day); the others are
        moved to the next day's slot. Asks the database only when a sequence has a limit."""
        limited = {key for key, s in self.library.sequences.items()
                   if s.schedule.max_per_day is not None}
        if not any(c.sequence_key in limited for c in batch):
            return batch
        already = due.went_out_since((c.subscriber_id for c in batch), now - LOOK_BACK)
        waiting = over_the_limit(batch, already, self.library, now)
        moves.extend(Move(c.id, waiting[c.id].due_at, waiting[c.id].window_end_at,
                          c.step_key, c.variant) for c in batch if c.id in waiting)
        return [c for c in batch if c.id not in waiting]

    def _decide(self, batch: list[ClaimedDelivery], histories: dict[int, list[Sent]],
                owned: dict[int, set[str]], outcomes: list[Outcome], messages: list[Message],
                by_id: dict[int, ClaimedDelivery], moves: list[Move],
                tags: Mapping[int, set[str]] | None = None,
                preferences: Mapping[int, SendPreference] | None = None) -> list[int]:
        """Decide each claimed email: a message to send, an outcome saying why not, or a
        move to a later slot. Returns the enrollments that have nothing left to send."""
        finished: list[int] = []
        # A batch holds many subscribers at the same point of the same sequence: what an
        # email becomes depends only on the key below, so each distinct case is worked out
        # once per batch.
        choices: dict[tuple[str, tuple[tuple[str, str, str | None, str | None], ...],
                            frozenset[str], bool, bool, bool, frozenset[str]], _Choice] = {}
        for claimed in batch:
            refusal = self._refusal(claimed)
            if refusal is not None:
                outcomes.append(refusal)
                continue
            history = histories.get(claimed.enrollment_id, [])
            bought = owned.get(claimed.subscriber_id)
            tagged = (tags or {}).get(claimed.subscriber_id)
            reminder_slot = is_checkpoint_reminder(claimed.variant)
            holdout = held_out(self.library.sequence(claimed.sequence_key),
                               claimed.enrollment_id)
            key = (claimed.sequence_key,
                   tuple([(h.step_key, h.variant, h.nudge, h.answer) for h in history])
                   if history else (),
                   frozenset(bought) if bought else _NOTHING_OWNED, claimed.offers_opt_out,
                   reminder_slot, holdout, frozenset(tagged) if tagged else _NOTHING_OWNED)
            choice = choices.get(key)
            if choice is None:
                choice = choices[key] = self._choose(claimed.sequence_key, history,
                                                     bought or _NOTHING_OWNED,
                                                     claimed.offers_opt_out, reminder_slot,
                                                     holdout, tagged or _NOTHING_OWNED)
            if isinstance(choice, _Later):
                move = self._weekly_instead(claimed, (preferences or {}).get(
                    claimed.subscriber_id))
                if move is None:
                    outcomes.append(Outcome(claimed.id, "cancelled", error=(
                        "The program is complete; no further email is needed.")))
                    finished.append(claimed.enrollment_id)
                else:
                    moves.append(move)
                continue
            if isinstance(choice, _Stop):
                outcomes.append(Outcome(claimed.id, choice.state, error=choice.reason))
                if choice.state == "cancelled":
                    finished.append(claimed.enrollment_id)
                continue
            try:
                messages.append(self._message(claimed, *choice, history=history))
            except TemplateError as exc:
                outcomes.append(Outcome(claimed.id, "failed",
                                        error=f"Could not render: {exc}"))
                continue
            by_id[claimed.id] = claimed
        return finished

    def _choose(self, sequence_key: str, history: list[Sent], owned: Set[str],
                offers_opt_out: bool, reminder_slot: bool, holdout: bool = False,
                tags: Set[str] = _NOTHING_OWNED) -> _Choice:
        """What an email becomes now that the answers are in: (step, variant, nudge), why
        it must not go (the program is over, or a goal was reached), or, in a reminder's
        slot whose question has been answered, that the weekly email takes it later."""
        sequence = self.library.sequence(sequence_key)
        goal = sequence_goal_reached(sequence, owned)
        if goal is not None:
            return _Stop("cancelled", f"Bought {goal}, which ends {sequence.key}; "
                                      "nothing more is sent.")
        exit_on = exit_tag(sequence, tags)
        if exit_on is not None:
            return _Stop("cancelled", f"Tagged {exit_on}, which ends {sequence.key}; "
                                      "nothing more is sent.")
        if history and history[-1].step_key not in sequence.step_keys:
            return _Stop("held", stranded_reason(sequence_key, history[-1].step_key))
        if reminder_slot:
            return self._reminder(sequence, history)
        decision = decide(sequence, history)
        if decision is None:
            return _Stop("cancelled", "The program is complete; no further email is needed.")
        if decision.hold is not None:
            return _Stop("held", decision.hold)
        # a tag may change what the main email says, never which step it is
        variant = branch_variant(sequence, decision.step_key, decision.variant, tags)
        nudge = choose_nudge(
            sequence, self.library.offers, step_key=decision.step_key,
            variant=variant, history=history, owned=owned,
            offers_opt_out=offers_opt_out or tags_stop_nudges(sequence, tags), held_out=holdout,
        )
        return decision.step_key, variant, nudge

    @staticmethod
    def _reminder(sequence: LibrarySequence, history: list[Sent]) -> _Choice:
        """The checkpoint reminder, if its question is still open: never a second one, never
        after an answer, never once the coach took the reminder out of the files."""
        steps = progress(history)
        last = steps[-1] if steps else None
        if (last is None or last.answer is not None or is_checkpoint_reminder(history[-1].variant)
                or sequence.checkpoint_reminder is None):
            return _LATER
        checkpoint = sequence.step(last.step_key).checkpoint
        if checkpoint is None or checkpoint.remind_days is None:
            return _LATER
        return last.step_key, CHECKPOINT_REMINDER, None

    def _weekly_instead(self, claimed: ClaimedDelivery,
                        preference: SendPreference | None = None) -> Move | None:
        """Where a reminder's slot moves when no reminder is needed: to the weekly email the
        reminded one would have had (counted from the reminder's slot, so a pause since
        still counts); None if nothing follows."""
        sequence = self.library.sequence(claimed.sequence_key)
        following = email_after(sequence, claimed.timezone, claimed.step_key, claimed.variant,
                                claimed.due_at, preference)
        if following is None:
            return None
        return Move(claimed.id, following.slot.due_at, following.slot.window_end_at,
                    following.step_key, following.variant)

    def _refusal(self, claimed: ClaimedDelivery) -> Outcome | None:
        """Why this claimed delivery must not go out, as a visible outcome; None if it may."""
        if claimed.unsubscribed:
            return Outcome(claimed.id, "cancelled", error="The subscriber unsubscribed.")
        if claimed.enrollment_state in ("paused", "suppressed"):
            # Paused (or suppressed) after this email was planned: hold it, as the pause
            # held the others, so `drip resume` (or lifting the suppression) sends it.
            return Outcome(claimed.id, "held", error=(
                f"The enrollment was {claimed.enrollment_state} after this email was "
                "planned; it goes when the enrollment is resumed."))
        if claimed.suppressed:
            return Outcome(claimed.id, "cancelled", error="The address is suppressed.")
        if claimed.enrollment_state != "active":
            return Outcome(claimed.id, "cancelled",
                           error=f"The enrollment is {claimed.enrollment_state}.")
        sequence = self.library.sequences.get(claimed.sequence_key)
        if sequence is None:
            return Outcome(claimed.id, "held", error=missing_sequence_reason(claimed.sequence_key))
        if claimed.step_key not in sequence.step_keys:
            return stranded(claimed, claimed.step_key)
        return None

    def _message(self, claimed: ClaimedDelivery, step_key: str, variant: str,
                 nudge: str | None, *, history: Sequence[Sent] = ()) -> Message:
        sequence = self.library.sequence(claimed.sequence_key)
        tested = assignment(sequence, step_key, variant, claimed.enrollment_id, self._leaders)
        content = self.renderer.content(claimed.sequence_key, step_key, variant, nudge,
                                        test_variant=tested.variant if tested else None)
        # Offer and program links go through the click redirect (drip.experiments.clicks).
        tracked = self._tracker.track(content)
        content = tracked.content
        first_name = claimed.name.split()[0] if claimed.name.strip() else sequence.greeting_fallback
        # A reminder's buttons answer the email it reminds of.
        asked = claimed.id
        if is_checkpoint_reminder(variant):
            steps = progress(history)
            asked = steps[-1].delivery_id if steps else claimed.id
        raw = {
            "first_name": first_name,
            "email": claimed.email,
            "unsubscribe_url": self.links.unsubscribe(claimed.subscriber_id,
                                                      claimed.enrollment_id),
            "pause_url": self.links.pause(claimed.enrollment_id, claimed.id),
            "preferences_url": self.links.preferences(claimed.subscriber_id),
            "checkpoint_passed_url": self.links.checkpoint(asked, PASSED),
            "checkpoint_not_yet_url": self.links.checkpoint(asked, NOT_YET),
        }
        if late_repeat_step(sequence, step_key, variant) is not None:
            raw["checkpoint_repeat_url"] = self.links.checkpoint(claimed.id, REPEAT_LAST)
        values = recipient_values(raw)
        if tracked.urls:
            values.update(click_values(self.links, claimed.id, tracked.urls))
        return Message(
            delivery_id=claimed.id, enrollment_id=claimed.enrollment_id,
            sequence_key=claimed.sequence_key, step_key=step_key,
            variant=variant, to_email=claimed.email, to_name=claimed.name,
            from_email=self.sender.email, from_name=self.sender.name,
            content=content, values=values, nudge=nudge,
        )

    def _tests(self, messages: Sequence[Message]) -> list[SplitSent]:
        """The split-test variant each message carries, to record with its `sending` mark."""
        tests = []
        for m in messages:
            tested = assignment(self.library.sequence(m.sequence_key), m.step_key, m.variant,
                                m.enrollment_id, self._leaders)
            if tested is not None:
                tests.append(SplitSent(m.delivery_id, m.enrollment_id, m.sequence_key,
                                      tested.test, tested.variant))
        return tests

    def _outcomes(self, results: list[SendResult], by_id: dict[int, ClaimedDelivery],
                  messages: dict[int, Message], report: DispatchReport, *,
                  spend: bool = True) -> list[Outcome]:
        """Each result as an outcome. `spend`: a transient failure counts against the
        email's attempts; when the provider was failing for everyone it does not, and the
        email waits as long as the outage lasts."""
        now = self.clock.now()
        outcomes = []
        for result in results:
            claimed = by_id[result.delivery_id]
            if result.verdict == "accepted":
                outcomes.append(Outcome(result.delivery_id, "sent", provider=self.provider.name,
                                        message_id=result.message_id))
                if report.lists_more:
                    message = messages[result.delivery_id]
                    report.add_sent(SentItem(claimed.email, message.step_key, message.variant,
                                             claimed.timezone, now, message.nudge))
                else:
                    report.sent_count += 1
            elif result.verdict == "unknown":
                report.unknown += 1
                outcomes.append(Outcome(result.delivery_id, "unknown",
                                        provider=self.provider.name, error=result.reason,
                                        batch_key=result.batch_key))
            elif result.verdict == "transient" and not spend:
                report.retried += 1
                wait = result.retry_after or backoff(max(claimed.attempts, 1))
                outcomes.append(Outcome(result.delivery_id, "scheduled", error=result.reason,
                                        retry_at=now + timedelta(seconds=wait),
                                        refund_attempt=True))
            elif result.verdict == "transient" and claimed.attempts + 1 < MAX_ATTEMPTS:
                report.retried += 1
                wait = result.retry_after or backoff(claimed.attempts + 1)
                outcomes.append(Outcome(result.delivery_id, "scheduled", error=result.reason,
                                        retry_at=now + timedelta(seconds=wait)))
            else:
                reason = result.reason or "the provider refused it"
                if result.verdict == "transient":
                    reason = f"Gave up after {MAX_ATTEMPTS} attempts: {reason}"
                outcomes.append(Outcome(result.delivery_id, "failed",
                                        provider=self.provider.name, error=reason))
        return outcomes

    def _next_steps(self, went_out: Sequence[WentOut],
                    preferences: Mapping[int, SendPreference] | None = None,
                    ) -> tuple[list[PlannedDelivery], list[int]]:
        """The next email of every enrollment whose current one went out, and the
        enrollments with nothing left to send. Pure: the store calls it inside the
        transaction that records the sends."""
        planned: list[PlannedDelivery] = []
        finished: list[int] = []
        # A batch goes out at one moment to a few time zones: compute each distinct slot once.
        # The subscriber's own send time and day, where they set one (the preferences page).
        slots: dict[tuple[str, str, str, str, datetime, SendPreference | None],
                    NextEmail | None] = {}
        for w in went_out:
            sequence = self.library.sequences.get(w.sequence_key)
            preference = preferences.get(w.subscriber_id) if preferences else None
            key = (w.sequence_key, w.timezone, w.step_key, w.variant, w.went_out_at, preference)
            if key not in slots:
                slots[key] = (email_after(sequence, w.timezone, w.step_key, w.variant,
                                          w.went_out_at, preference) if sequence else None)
            following = slots[key]
            if following is None:
                if (base_variant(w.variant) == "graduated"
                        or (sequence is not None and w.step_key in sequence.step_keys)):
                    finished.append(w.enrollment_id)
                    continue
                # The step (or its sequence) vanished between claim and send, as when a
                # worker running the edited files reaps a send of one running the old
                # ones: nothing can be planned from it. Hold the enrollment with a reason
                # instead of leaving it active with nothing pending; the held email takes
                # the step's place, and `drip lint` counts it as stranded. Once the step is
                # back, `drip resume` sends what follows it (dispatch decides from the
                # history, not from the held row's step).
                reason = (stranded_reason(w.sequence_key, w.step_key) if sequence is not None
                          else missing_sequence_reason(w.sequence_key))
                log.error("enrollment %d got %s/%s, which is no longer there; it is held: %s",
                          w.enrollment_id, w.sequence_key, w.step_key, reason)
                planned.append(PlannedDelivery(
                    enrollment_id=w.enrollment_id, subscriber_id=w.subscriber_id,
                    sequence_key=w.sequence_key, seq_no=w.seq_no + 1, step_key=w.step_key,
                    due_at=w.went_out_at, window_end_at=None, variant=w.variant, hold=reason))
                continue
            planned.append(PlannedDelivery(
                enrollment_id=w.enrollment_id, subscriber_id=w.subscriber_id,
                sequence_key=w.sequence_key, seq_no=w.seq_no + 1, step_key=following.step_key,
                due_at=following.slot.due_at, window_end_at=following.slot.window_end_at,
                variant=following.variant,
            ))
        return planned, finished


__all__ = ["DispatchReport", "Dispatcher", "DripError", "Sender", "SentItem"]

"""The scheduler process: an APScheduler ticker that runs a dispatch pass every minute.

APScheduler only ticks; the database is the queue. Its job store holds one job
per periodic task, never a job per subscriber.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from drip.digest import send_digest
from drip.dispatch import worker_name
from drip.errors import ConfigError
from drip.operations import DISPATCH_FAILED, STOPPED_CLEANLY
from drip.optin import send_unsent
from drip.runtime import Drip

log = logging.getLogger("drip.scheduler")

SQLITE_LEASE = "scheduler:sqlite"
#: How long after a failed digest the scheduler tries again.
DIGEST_RETRY = timedelta(minutes=15)


class Ticker:
    """Owns the BlockingScheduler, the dispatcher and a clean shutdown on SIGINT/SIGTERM."""

    def __init__(self, drip: Drip, interval_seconds: float = 60.0) -> None:
        self.drip = drip
        self.worker = worker_name()
        self.interval = interval_seconds
        self.started_at = drip.clock.now()
        self.provider = drip.provider()
        self.dispatcher = drip.dispatcher(self.provider, worker=self.worker)
        self.scheduler = BlockingScheduler(timezone="UTC")
        self._stopping = threading.Event()
        self._lost: str | None = None  # why this scheduler gave up the SQLite file

    def run(self) -> None:
        # APScheduler's "Running job ... executed successfully" lines, four a tick, say
        # nothing drip's own line per pass does not; its warnings (a missed run) still show.
        logging.getLogger("apscheduler").setLevel(max(logging.WARNING, log.getEffectiveLevel()))
        if self.drip.settings.is_sqlite:
            self._hold_sqlite_lease()
            # Renewed in its own job, so a pass longer than the lease keeps the file.
            self.scheduler.add_job(
                self._keep_sqlite_lease, IntervalTrigger(seconds=self.interval, timezone="UTC"),
                id="sqlite-lease", name="hold the SQLite file", coalesce=True,
                max_instances=1, misfire_grace_time=None, replace_existing=True,
            )
        self.scheduler.add_job(
            self.tick, IntervalTrigger(seconds=self.interval, timezone="UTC"),
            id="dispatch", name=f"dispatch every {_every(self.interval)}", coalesce=True,
            max_instances=1,
            misfire_grace_time=None, next_run_time=self.drip.clock.now(),
            replace_existing=True,
        )
        # always: receivers may be added at any time with `drip webhook add`
        self.scheduler.add_job(
            self.webhooks, IntervalTrigger(seconds=5, timezone="UTC"), id="webhooks",
            name="outgoing webhooks", coalesce=True, max_instances=1,
            misfire_grace_time=None, replace_existing=True)
        if self.drip.settings.coach_email:
            self.scheduler.add_job(
                self.digest, CronTrigger(day_of_week="mon", hour=7,
                                         timezone=self.drip.settings.coach_timezone),
                id="digest", name="the coach's weekly digest", coalesce=True,
                max_instances=1, misfire_grace_time=None, replace_existing=True,
            )
        if any(step.test is not None and step.test.winner == "auto"
               for sequence in self.drip.library.sequences.values() for step in sequence.steps):
            self.scheduler.add_job(
                self.split_tests, CronTrigger(hour=5, minute=30, timezone="UTC"),
                id="split-tests", name="send split-test leaders to everyone (winner: auto)",
                coalesce=True, max_instances=1, misfire_grace_time=None,
                replace_existing=True)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        log.info("scheduler %s started; dispatching every %s", self.worker,
                 _every(self.interval))
        try:
            self.scheduler.start()
        finally:
            self.provider.close()
            if self.drip.settings.is_sqlite and self._lost is None:
                self.drip.store.release_lease(SQLITE_LEASE, self.worker)
            if self._lost is not None:
                self._beat(self._lost)
            elif self._stopping.is_set():  # tell `drip status` this one was not killed
                self._beat(STOPPED_CLEANLY)
            log.info("scheduler %s stopped", self.worker)
        if self._lost is not None:
            raise ConfigError(self._lost)

    def tick(self) -> None:
        started = time.monotonic()
        try:
            report = self.dispatcher.run_once()
        except Exception:  # keep ticking: the next pass retries, the heartbeat tells operators
            log.exception("dispatch pass failed")
            self._beat(DISPATCH_FAILED)
            return
        self.confirmations()
        detail = (f"sent {report.sent_count} failed {report.failed} retried {report.retried} "
                  f"unknown {report.unknown}" + (" paused" if report.paused else ""))
        # One line per pass, the scheduler's own: what went out and how long it took.
        log.info("pass: %s%s in %.2f s", detail,
                 f" expired {report.expired_leases}" if report.expired_leases else "",
                 time.monotonic() - started)
        if report.halted:
            log.error("sending halted: %s", report.halted)
        self._beat(detail)

    def confirmations(self) -> None:
        """The opt-in confirmation emails the provider did not take when they were asked for."""
        drip = self.drip
        try:
            sent = send_unsent(drip.store, drip.library, self.provider, drip.links, drip.sender,
                               drip.clock.now())
        except Exception:  # the next tick tries again
            log.exception("could not send the queued confirmation emails")
            return
        if sent:
            log.info("sent %d queued confirmation email(s)", sent)

    def webhooks(self) -> None:
        """Post the outgoing webhooks that are due (drip.webhooks), every few seconds."""
        from drip.webhooks import deliver_due

        settings = self.drip.settings
        try:
            deliver_due(self.drip.store, settings.webhook_targets,
                        settings.webhook_signing_secret, self.drip.clock.now())
        except Exception:  # keep ticking: messages stay queued and are retried
            log.exception("outgoing webhook pass failed")

    def split_tests(self) -> None:
        """Look at the split tests once a day, as `drip stats --tests` does: a `winner: auto`
        test whose leader is clear sends it to everyone after (recording it is idempotent,
        so every scheduler may look). The decision stays valid however often it is made."""
        from drip.experiments.report import split_results

        try:
            results = split_results(self.drip.store, self.drip.library, self.drip.clock.now())
        except Exception:  # tomorrow's look tries again
            log.exception("could not look at the split tests")
            return
        for result in results:
            if result.sent_to_everyone:
                log.info("split test %s/%s: everyone gets %s", result.sequence_key,
                         result.name, result.sent_to_everyone)

    def digest(self) -> None:
        """Send the weekly digest once per week, however many schedulers are running."""
        now = self.drip.clock.now()
        year, week, _ = now.isocalendar()
        lease = f"digest:{year}-W{week:02d}"
        held = False
        try:
            held = self.drip.store.acquire_lease(lease, self.worker, now, timedelta(days=8))
            if not held:
                return  # another worker sent (or is sending) this week's digest
            send_digest(self.drip.store, self.drip.library, self.provider, self.drip.sender,
                        self.drip.settings.coach_email, now)
            log.info("sent the weekly digest to %s", self.drip.settings.coach_email)
        except Exception:
            # The cron fires once a week: try again in a while, on whichever worker gets
            # the lease then, until it goes. The database may be what failed: then the
            # lease stays with this worker, whose retry may renew it.
            log.exception("could not send the weekly digest; trying again in %s",
                          DIGEST_RETRY)
            if held:
                try:
                    self.drip.store.release_lease(lease, self.worker)
                except Exception:
                    log.exception("could not release this week's digest lease")
            self.scheduler.add_job(
                self.digest, DateTrigger(datetime.now(UTC) + DIGEST_RETRY),
                id="digest-retry", name="the coach's weekly digest, again",
                replace_existing=True, misfire_grace_time=None)

    def _beat(self, detail: str) -> None:
        try:
            self.drip.store.beat(self.worker, self.drip.clock.now(), self.started_at, detail)
        except Exception:
            log.exception("could not write the heartbeat")

    def _hold_sqlite_lease(self) -> None:
        """SQLite has one writer: a second scheduler on the same file refuses to start."""
        ttl = timedelta(seconds=max(self.interval * 3, 180))
        store = self.drip.store
        if not store.acquire_lease(SQLITE_LEASE, self.worker, self.drip.clock.now(), ttl):
            holder = store.lease_holder(SQLITE_LEASE, self.drip.clock.now())
            if holder is not None and _gone_from_this_machine(holder):
                # Killed (SIGKILL, OOM) without releasing it: a restart need not wait out
                # the lease, and must not say a dead process is running.
                log.warning("taking over from scheduler %s, which is no longer running",
                            holder)
                store.release_lease(SQLITE_LEASE, holder)
                if store.acquire_lease(SQLITE_LEASE, self.worker, self.drip.clock.now(), ttl):
                    return
                holder = store.lease_holder(SQLITE_LEASE, self.drip.clock.now())
            raise ConfigError(
                f"Another scheduler ({holder}) is already running on this SQLite database; "
                "run one scheduler per SQLite file, or use PostgreSQL for several."
            )

    def _keep_sqlite_lease(self) -> None:
        try:
            self._hold_sqlite_lease()
        except ConfigError as exc:  # another scheduler has the file now: two must not run
            self._lost = str(exc)
            self._stop("another scheduler has taken the SQLite file")
        except Exception:  # the database is busy or away: the lease lasts a few ticks
            log.exception("could not renew the SQLite lease")

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stop(f"received {signal.Signals(signum).name}")

    def _stop(self, why: str) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        log.info("%s: finishing the batch in hand, then stopping", why)
        self.dispatcher.stop()
        threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True},
                         daemon=True).start()


def _every(seconds: float) -> str:
    """'every minute', 'every 5 s': the tick as the log and the job name say it."""
    if seconds == 60:
        return "minute"
    if seconds % 60 == 0:
        return f"{seconds / 60:g} minutes"
    return f"{seconds:g} s"


def _gone_from_this_machine(worker: str) -> bool:
    """True if `worker` (host:pid:tag, as dispatch.worker_name makes it) ran on this host
    and its process has ended; a worker on another host is never judged."""
    host, _, rest = worker.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by someone else
        return False
    return False

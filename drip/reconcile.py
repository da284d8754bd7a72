"""Settling unknown emails by asking the provider what it holds of each unanswered request.

With DRIP_SENDGRID_ACTIVITY=1 the reaper asks about one batch at a time, spread out to
respect the Email Activity API's rate limit, once the batch is older than the settle delay
(the activity feed lags); `drip reconcile` asks on demand. What the provider holds is
`sent`; the rest of that batch it never took, so it goes back to the queue for one more try.
A batch that cannot be asked about now (rate limited, provider down) stays unknown: nothing
is sent again while a batch is in doubt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from drip.errors import ConfigError, ProviderError
from drip.providers.base import ActivityFeed, Provider
from drip.store import Store, UnknownBatch

log = logging.getLogger(__name__)

#: The Email Activity API allows a few requests a minute: by default one every 20 s, shared
#: by workers (DRIP_SENDGRID_ACTIVITY_PER_MINUTE).
ACTIVITY_RATE = 1 / 20
ACTIVITY_BUDGET = "sendgrid-activity"

#: Asks the provider which recipients it holds of one request (by batch key).
Ask = Callable[[str], set[str]]


@dataclass(frozen=True)
class BatchReport:
    batch_key: str
    since: datetime
    unknown: int
    held: int = 0
    not_held: int = 0
    resent: int = 0
    left: int = 0
    #: Why the provider could not be asked (the batch stays unknown).
    error: str | None = None


@dataclass(frozen=True)
class UnknownGroup:
    """Unknown emails of one cause, by age, and what will settle them (`drip status`)."""

    cause: str
    under_hour: int
    under_day: int
    older: int
    settled_by: str


def unknown_groups(unknown: list[tuple[bool, bool, datetime]], now: datetime, *,
                   activity: bool, settle_after: timedelta) -> list[UnknownGroup]:
    """Unknown emails by cause (the request got no answer; the worker stopped mid-request)
    and age, each with what will settle it (only those with a batch key can be asked
    about). Pure: takes what `Store.unknown_since` read."""
    groups = []
    for stopped, keyed in ((False, True), (True, True), (False, False), (True, False)):
        ages = [now - at for k, w, at in unknown if k is keyed and w is stopped]
        if not ages:
            continue
        cause = "the worker stopped mid-request" if stopped else "no answer from the provider"
        if keyed and activity:
            minutes = int(settle_after.total_seconds() // 60)
            how = (f"SendGrid's Email Activity API, asked once a batch is {minutes} min old "
                   "(or a provider event)")
        else:
            how = "a provider event (processed, delivered, bounce...) or `drip resolve`"
        groups.append(UnknownGroup(
            cause, sum(1 for a in ages if a < timedelta(hours=1)),
            sum(1 for a in ages if timedelta(hours=1) <= a < timedelta(days=1)),
            sum(1 for a in ages if a >= timedelta(days=1)), how))
    return groups


def reconcile(store: Store, ask: Ask, now: datetime, *, settle_after: timedelta,
              limit: int = 100, dry_run: bool = False) -> list[BatchReport]:
    """Ask about each unknown batch older than `settle_after` (oldest first, at most
    `limit`) and settle it, unless `dry_run`. Stops at the first batch the provider
    cannot answer for: it is rate limited or down, and the next answer would be too."""
    reports = []
    for batch in store.unknown_batches(now - settle_after, limit):
        report = settle(store, ask, batch, now, dry_run=dry_run)
        reports.append(report)
        if report.error is not None:
            break
    return reports


def asker(provider: Provider) -> Ask:
    """How to ask `provider` what it holds; ConfigError if it cannot be asked."""
    if not isinstance(provider, ActivityFeed):
        raise ConfigError(f"The {provider.name} backend cannot say what it holds; unknown "
                          "emails are settled by events or `drip resolve`. Set "
                          "DRIP_BACKEND=sendgrid (with the Email Activity API add-on).")
    return provider.held


def settle(store: Store, ask: Ask, batch: UnknownBatch, now: datetime, *,
           dry_run: bool = False, how: str = "Email Activity API") -> BatchReport:
    try:
        holds = ask(batch.batch_key)
    except ProviderError as exc:
        return BatchReport(batch.batch_key, batch.since, len(batch.members), error=str(exc))
    held = {i for i, email in batch.members if email.lower() in holds}
    base = BatchReport(batch.batch_key, batch.since, len(batch.members), held=len(held),
                       not_held=len(batch.members) - len(held))
    if dry_run:
        return base
    done = store.settle_unknown(batch.batch_key, held, now, how)
    return BatchReport(base.batch_key, base.since, base.unknown, held=len(done.sent),
                       not_held=base.not_held, resent=len(done.resent), left=len(done.left))


def settle_next(store: Store, ask: Ask, now: datetime, *, settle_after: timedelta,
                rate: float = ACTIVITY_RATE) -> None:
    """The reaper's share: one batch, when the shared activity budget allows a query now.
    It never waits for the budget, and a failed query is logged, not raised: dispatch
    goes on whatever the activity API does."""
    batches = store.unknown_batches(now - settle_after, 1)
    if not batches or not store.take_allowance(ACTIVITY_BUDGET, 1, now, rate):
        return
    report = settle(store, ask, batches[0], now)
    if report.error is not None:
        log.warning("could not settle unknown batch %s yet: %s", report.batch_key, report.error)
    else:
        log.info("settled unknown batch %s: %d held (sent), %d sent again, %d left",
                 report.batch_key, report.held, report.resent, report.left)

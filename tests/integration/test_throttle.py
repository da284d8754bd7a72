"""DRIP_MAX_PER_SECOND: one send budget in the database, obeyed by every worker."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from drip.clock import FixedClock, SystemClock
from drip.runtime import Drip
from drip.subscriptions import enroll
from tests.conftest import make_settings


def _enroll(drip: Drip, count: int) -> None:
    for i in range(count):
        enroll(drip.store, drip.library, email=f"runner{i}@example.com",
               sequence_key="pht-7-week", now=drip.clock.now(), timezone="Europe/London")


def test_a_pass_sends_only_what_the_budget_allows(tmp_path: Path, database_url: str,
                                                  clock: FixedClock) -> None:
    drip = Drip.from_settings(make_settings(tmp_path, database_url, max_per_second=5), clock)
    try:
        _enroll(drip, 30)
        dispatcher = drip.dispatcher()
        first = dispatcher.run_once()
        assert len(first.sent) == 5  # one second's worth: the bucket starts full
        assert first.throttled >= 1  # it waited, saw a frozen clock, and ended the pass
        assert dispatcher.run_once().sent == []  # no time passed, no new budget
        clock.advance(seconds=1)
        assert len(dispatcher.run_once().sent) == 5
        clock.advance(seconds=0.4)
        assert len(dispatcher.run_once().sent) == 2  # 0.4 s at 5/s
        clock.advance(seconds=60)  # a long idle does not bank more than one second
        assert len(dispatcher.run_once().sent) == 5
        week1 = [r.state for r in drip.store.deliveries()
                 if (r.step_key, r.variant) == ("week-1", "main")]
        assert week1.count("sent") == 17 and week1.count("scheduled") == 13
    finally:
        drip.close()


def test_unused_budget_is_given_back(tmp_path: Path, database_url: str,
                                     clock: FixedClock) -> None:
    drip = Drip.from_settings(make_settings(tmp_path, database_url, max_per_second=10), clock)
    try:
        _enroll(drip, 3)
        assert len(drip.dispatcher().run_once().sent) == 3
        _enroll_more = [f"late{i}@example.com" for i in range(10)]
        for email in _enroll_more:
            enroll(drip.store, drip.library, email=email, sequence_key="pht-7-week",
                   now=clock.now(), timezone="Europe/London")
        # Only 3 of the 10 tokens were used; the other 7 are still there.
        assert len(drip.dispatcher().run_once().sent) == 7
    finally:
        drip.close()


def test_two_workers_share_one_rate(tmp_path: Path, database_url: str) -> None:
    """Two dispatchers with real clocks, side by side: together they stay within the rate."""
    rate = 20
    drip = Drip.from_settings(make_settings(tmp_path, database_url, max_per_second=rate),
                              SystemClock())
    try:
        _enroll(drip, 80)
        workers = [drip.dispatcher(worker=f"worker-{n}") for n in range(2)]
        reports = []
        threads = [threading.Thread(target=lambda w=w: reports.append(w.run_once()))
                   for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        sent = sorted(r.sent_at for r in drip.store.deliveries() if r.sent_at is not None)
        assert len(sent) == 80  # nothing lost: both passes ran until nothing was due
        assert sum(len(r.sent) for r in reports) == 80
        # Whatever the machine's speed, no second-long window holds more than the bucket
        # (one second of sending) plus one second of refill, give or take the time between
        # taking the budget and recording the send. Unthrottled, all 80 go in well under 1 s.
        for i, start in enumerate(sent):
            in_window = sum(1 for t in sent[i:] if t - start < timedelta(seconds=1))
            assert in_window <= 2 * rate + rate // 2, (in_window, start)
        span = (sent[-1] - sent[0]).total_seconds()
        assert span >= (80 - rate) / rate * 0.9  # 60 emails beyond the first second took ~3 s
    finally:
        drip.close()

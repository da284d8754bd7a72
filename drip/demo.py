"""The README demo: three runners in three timezones, seven weeks of dispatch in simulated time.

It runs the real engine (store, planner, renderer, outbox) against its own SQLite
database. Its clock jumps from one send time to the next, so each email goes out at the
minute it is due, as under `scheduler.py`, which makes a pass every minute.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from drip.clock import FixedClock
from drip.db import upgrade
from drip.runtime import Drip
from drip.settings import Settings
from drip.subscriptions import enroll

#: (email, name, timezone, local join time). The dates straddle the 2026 DST changes of
#: all three zones: Los Angeles on 8 March, London on 29 March, Sydney on 5 April.
PERSONAS = (
    ("maria@example.com", "Maria Lopez", "America/Los_Angeles", datetime(2026, 3, 6, 22, 45)),
    ("tom@example.com", "Tom Hughes", "Europe/London", datetime(2026, 3, 7, 9, 15)),
    ("aisha@example.com", "Aisha Khan", "Australia/Sydney", datetime(2026, 3, 7, 5, 40)),
)


#: How often `scheduler.py` makes a pass (DRIP_TICK_SECONDS, 60 by default).
TICK = timedelta(minutes=1)


@dataclass(frozen=True)
class Received:
    email: str
    timezone: str
    step_key: str
    variant: str
    sent_at: datetime

    @property
    def local(self) -> datetime:
        return self.sent_at.astimezone(ZoneInfo(self.timezone))


def run_demo(base: Settings, directory: Path, weeks: int = 7) -> tuple[list[Received], Path]:
    """Run the simulation from scratch in `directory`; return what each persona received."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    settings = base.model_copy(update={
        "database_url": f"sqlite:///{directory / 'drip.db'}",
        "backend": "outbox",
        "outbox_dir": directory / "outbox",
    })
    joins = sorted((local.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC), email, name, tz)
                   for email, name, tz, local in PERSONAS)
    clock = FixedClock(joins[0][0])
    drip = Drip.from_settings(settings, clock)
    try:
        upgrade(drip.store.engine)
        dispatcher = drip.dispatcher()
        pending = list(joins)
        end = joins[0][0] + timedelta(weeks=weeks, days=2)
        while clock.now() <= end:
            while pending and pending[0][0] <= clock.now():
                at, email, name, tz = pending.pop(0)
                enroll(drip.store, drip.library, email=email, sequence_key="pht-7-week",
                       now=at, name=name, timezone=tz, source="optin")
            dispatcher.run_once()
            # On to the next thing that happens (a send falling due, a runner joining),
            # at least a minute on: a scheduler's next pass would come no sooner.
            upcoming = [t for t in (drip.store.next_due_at(), pending[0][0] if pending
                                    else None) if t is not None]
            if not upcoming:
                break
            clock.at = max(min(upcoming), clock.now() + TICK)
        rows = [
            Received(r.email, r.timezone, r.step_key, r.variant, r.sent_at)
            for r in drip.store.deliveries(states=["sent"])
            if r.sent_at is not None
        ]
    finally:
        drip.close()
    return rows, settings.outbox_dir

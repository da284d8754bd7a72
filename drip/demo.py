"""The README demo: three runners in three timezones, seven weeks of dispatch in simulated time.

It runs the real engine (store, planner, renderer, outbox) against its own SQLite
database, with a clock that jumps an hour at a time.
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


@dataclass(frozen=True)
class Received:
    email: str
    timezone: str
    step_key: str
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
            clock.advance(hours=1)
        rows = [
            Received(r.email, r.timezone, r.step_key, r.sent_at)
            for r in drip.store.deliveries(states=["sent"])
            if r.sent_at is not None
        ]
    finally:
        drip.close()
    return rows, settings.outbox_dir

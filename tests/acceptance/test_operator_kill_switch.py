"""The kill switch against a running `scheduler.py`: `drip pause --all` stops sending within
one tick; `drip resume --all` sends what was held, once each, with no burst and no loss."""

from __future__ import annotations

import os
import signal
from collections import Counter
from datetime import datetime
from email import message_from_bytes
from pathlib import Path

from drip.runtime import Drip
from tests.acceptance.test_scheduler_process import start_scheduler, wait_for
from tests.support.cli import Cli


def recipients(outbox: Path) -> Counter[str]:
    return Counter(str(message_from_bytes(p.read_bytes())["To"]).split("<")[-1].rstrip(">")
                   for p in outbox.glob("*.eml"))


class Ticks:
    """Watches the scheduler's heartbeat: each tick rewrites it with what the pass did."""

    def __init__(self, drip: Drip) -> None:
        self.drip = drip
        self.seen: list[tuple[datetime, str]] = []

    def poll(self) -> None:
        beats = self.drip.store.overview(self.drip.clock.now()).heartbeats
        if beats and (not self.seen or beats[0].beat_at > self.seen[-1][0]):
            self.seen.append((beats[0].beat_at, beats[0].detail or ""))

    def after(self, moment: datetime) -> list[str]:
        return [detail for at, detail in self.seen if at > moment]

    def wait(self, count: int, since: datetime) -> list[str]:
        def enough() -> bool:
            self.poll()
            return len(self.after(since)) >= count

        wait_for(enough, timeout=60)
        return self.after(since)


def test_pause_all_stops_a_running_scheduler_and_resume_all_loses_nothing(
        cli: Cli, live: Drip, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
    scheduler = start_scheduler({**env, **cli.env})
    try:
        ticks = Ticks(live)
        cli("enroll", "ana@example.com", "--sequence", "basic")
        wait_for(lambda: recipients(outbox) == {"ana@example.com": 1})

        paused_at = live.clock.now()
        cli("pause", "--all")
        after_pause = ticks.wait(2, since=paused_at)
        # a pass already running when the switch flipped may finish; the next one stops
        assert after_pause[1].endswith("paused"), after_pause

        held_at = live.clock.now()
        for email in ("ben@example.com", "cy@example.com", "dee@example.com"):
            cli("enroll", email, "--sequence", "basic")
        assert all(d.endswith("paused") for d in ticks.wait(3, since=held_at))
        assert recipients(outbox) == {"ana@example.com": 1}
        assert cli.json("status")["due"]["now"] == 3

        resumed_at = live.clock.now()
        cli("resume", "--all")
        wait_for(lambda: sum(recipients(outbox).values()) == 4)
        ticks.wait(3, since=resumed_at)  # a few more passes: nothing else may go
        assert recipients(outbox) == {"ana@example.com": 1, "ben@example.com": 1,
                                      "cy@example.com": 1, "dee@example.com": 1}
        for email in ("ben@example.com", "cy@example.com", "dee@example.com"):
            pending = cli.json("sends", "--email", email)
            assert [(d["step_key"], d["state"]) for d in pending] == [
                ("week-2", "scheduled"), ("week-1", "sent")]
        scheduler.send_signal(signal.SIGTERM)
        output, _ = scheduler.communicate(timeout=30)
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
            scheduler.wait()
    assert scheduler.returncode == 0, output
    assert "Traceback" not in output

"""`drip demo` as a newcomer runs it: calm, with the times a real scheduler would send at,
and what to try next."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def run_demo(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
    env.update(DRIP_VAR_DIR=str(tmp_path / "var"), DRIP_LOG_LEVEL="INFO", COLUMNS="160")
    return subprocess.run([sys.executable, "-m", "drip", "demo", "--dir",
                           str(tmp_path / "demo")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)


def test_the_demo_sends_at_the_sequence_s_time_and_says_what_to_try_next(
        tmp_path: Path) -> None:
    first = run_demo(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    rows = [line for line in first.stdout.splitlines() if "@example.com" in line]
    assert len(rows) >= 30
    for row in rows:
        cells = [c.strip() for c in row.strip("│ ").split("│")]
        step, kind, local = cells[2], cells[3], cells[4]
        if (step, kind) != ("week-1", "weekly"):  # week 1 answers the joining, at once
            assert re.search(r" 06:30 [A-Z]{3,4}$", local), row  # the sequence's send time
    said = " ".join(first.stdout.split())
    assert "The clock jumps from one send time to the next" in said
    assert "Silence never moves anyone into running." in said
    for command in ("drip preview --serve", "drip serve", "drip simulate"):
        assert command in said
    # a calm first screen: the generated key said once, no migration chatter
    noise = first.stderr
    assert "alembic" not in noise and "INFO" not in noise, noise
    assert noise.count("DRIP_SECRET_KEY is not set") == 1 and "fine for trying" in noise
    again = run_demo(tmp_path)
    assert again.returncode == 0 and "DRIP_SECRET_KEY" not in again.stderr

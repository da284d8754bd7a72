"""`drip subscriber` on a real terminal: the timeline fits its width; --wide shows all."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from tests.acceptance.conftest import Run
from tests.conftest import ROOT
from tests.support.terminal import run_in_terminal

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def screen(process_env: dict[str, str], *args: str, columns: int) -> list[str]:
    code, drawn = run_in_terminal([sys.executable, "-m", "drip", *args], env=process_env,
                                  cwd=ROOT, columns=columns)
    assert code == 0, drawn
    return [line.rstrip() for line in ANSI.sub("", drawn).replace("\r", "").splitlines()]


def test_the_timeline_fits_the_terminal_and_wide_shows_every_column(
        drip_cli: Run, process_env: dict[str, str], tmp_path: Path) -> None:
    drip_cli("enroll", "ana.lopez.runs@example.com", "--name", "Ana Lopez",
             "--timezone", "America/Los_Angeles", check=True)
    drip_cli("dispatch", check=True)
    drip_cli("dispatch", "--now", "2099-01-01T15:00:00Z", check=True)
    lines = screen(process_env, "subscriber", "ana.lopez.runs@example.com", columns=100)
    assert max(len(line) for line in lines) <= 100
    text = "\n".join(lines)
    assert "…" not in text, text  # no cell is cut short
    rows = [line.split() for line in lines if re.match(r"^\s*\d+\s+week-\d", line)]
    assert [r[1] for r in rows] == ["week-1", "week-2", "week-3"], text
    assert "Message id" not in text  # the long provider id waits for --wide
    wide = "\n".join(screen(process_env, "subscriber", "ana.lopez.runs@example.com",
                            "--wide", columns=100))
    ids = [p.name for p in sorted((tmp_path / "outbox").glob("*.eml"))]
    assert "Message id" in wide and "UTC" in wide
    assert all(name in wide for name in ids), wide  # whole, on one line each

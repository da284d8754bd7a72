"""`drip import` as a person sees it on a terminal: its progress, and a Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from drip.runtime import Drip
from drip.settings import load_settings
from tests.conftest import ROOT
from tests.support.terminal import run_in_terminal


def people(path: Path, count: int) -> Path:
    path.write_text("email,name\n" + "".join(f"runner{n}@example.com,Runner {n}\n"
                                              for n in range(count)))
    return path


def enrolled(env: dict[str, str]) -> int:
    drip = Drip.from_settings(load_settings(env))
    try:
        return drip.store.overview(drip.clock.now()).subscribers.get("active", 0)
    finally:
        drip.close()


def test_the_progress_bar_counts_rows_not_the_header(process_env: dict[str, str],
                                                     tmp_path: Path) -> None:
    csv = people(tmp_path / "people.csv", 3000)
    code, screen = run_in_terminal([sys.executable, "-m", "drip", "import", str(csv)],
                                   env=process_env, cwd=ROOT)
    assert code == 0, screen
    counts = set(re.findall(r"\d+/(\d+)", screen))
    assert counts == {"3000"}, screen  # never 3001/3001
    assert "Enrolled 3000 of 3000 people" in screen


def test_ctrl_c_while_importing_says_nothing_was_imported(process_env: dict[str, str],
                                                          tmp_path: Path) -> None:
    csv = people(tmp_path / "people.csv", 60000)
    code, screen = run_in_terminal([sys.executable, "-m", "drip", "import", str(csv)],
                                   env=process_env, cwd=ROOT, interrupt_on="Checking rows")
    assert code == 130, screen
    assert "Traceback" not in screen and "KeyboardInterrupt" not in screen
    assert "Interrupted (Ctrl-C): nothing was imported" in screen
    assert enrolled(process_env) == 0


def test_ctrl_c_while_drip_starts_is_one_line_not_a_traceback(
        process_env: dict[str, str], tmp_path: Path) -> None:
    csv = people(tmp_path / "people.csv", 10)
    process = subprocess.Popen([sys.executable, "-m", "drip", "import", str(csv)], cwd=ROOT,
                               env=process_env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    time.sleep(0.15)  # drip's modules take about a second to load
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, out + err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "Interrupted (Ctrl-C)" in err
    assert enrolled(process_env) == 0

"""`./dev test` without PostgreSQL: skips are counted by reason, one line each, not listed
one line per test above the summary."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def test_skips_are_one_line_per_reason_with_a_count() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DRIP_TEST_DATABASE_URL"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                          "tests/integration/test_schema.py"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:]
    lines = run.stdout.splitlines()
    reason = "PostgreSQL tests need DRIP_TEST_DATABASE_URL (CI sets it)"
    counted = [line for line in lines if line.startswith("SKIPPED")]
    assert len(counted) == 1 and counted[0].endswith(f"tests: {reason}"), run.stdout
    assert int(counted[0].split()[1]) > 1  # several tests, one line

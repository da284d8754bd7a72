"""`drip reconcile [--dry-run]`, the real command, against the SendGrid stand-in."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from drip.runtime import Drip
from drip.settings import load_settings
from tests.acceptance.conftest import Run
from tests.conftest import ROOT
from tests.support.sendgrid_standin import SendGridStandIn

KEY = "SG.test-key"


def states(database_url: str, tmp_path: Path) -> dict[str, str]:
    settings = load_settings({}, database_url=database_url, var_dir=tmp_path / "var",
                             secret_key="x")
    drip = Drip.from_settings(settings)
    try:
        return {r.email: r.state for r in drip.store.deliveries() if r.step_key == "week-1"}
    finally:
        drip.close()


def test_reconcile_dry_run_says_per_batch_what_sendgrid_holds_then_reconcile_settles(
    drip_cli: Run, process_env: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    emails = [f"runner{n}@example.com" for n in range(6)]
    for address in emails:
        drip_cli("enroll", address, "--sequence", "basic", check=True)
    with SendGridStandIn(api_key=KEY) as standin:
        env = {**process_env, "DRIP_BACKEND": "sendgrid", "DRIP_SENDGRID_HOST": standin.url,
               "SENDGRID_API_KEY": KEY, "DRIP_BATCH_SIZE": "4",
               "DRIP_SENDGRID_TIMEOUT": "5", "DRIP_SENDGRID_SETTLE_SECONDS": "0"}

        def drip(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "drip", *args], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=60,
                                  stdin=subprocess.DEVNULL)

        standin.drop_next(count=1, record=True)  # took the first four, answered nothing
        standin.drop_next(count=1, record=False)  # never took the other two
        drip("dispatch")
        assert set(states(database_url, tmp_path).values()) == {"unknown"}
        said = json.loads(drip("status", "--json").stdout)["unknown"]
        assert [(g["cause"], g["under_hour"], g["older"]) for g in said] == [
            ("no answer from the provider", 6, 0)]
        assert "drip resolve" in said[0]["settled_by"]  # DRIP_SENDGRID_ACTIVITY is off
        shown = drip("status").stdout
        assert "Unknown (no answer from the provider): 6 under an hour old" in " ".join(
            shown.split())
        dry = drip("reconcile", "--dry-run", "--json")
        assert dry.returncode == 0, dry.stdout + dry.stderr
        batches = sorted((b["held"], b["not_held"]) for b in json.loads(dry.stdout))
        assert batches == [(0, 2), (4, 0)]
        assert set(states(database_url, tmp_path).values()) == {"unknown"}  # nothing changed
        table = drip("reconcile", "--dry-run")
        assert "SendGrid holds" in table.stdout and "dry run" in table.stdout
        done = drip("reconcile")
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(drip("reconcile", "--dry-run", "--json").stdout) == []  # settled
        final = states(database_url, tmp_path)
        assert Counter(final.values()) == {"sent": 4, "scheduled": 2}
        again = drip("dispatch")
        assert again.returncode == 0, again.stdout + again.stderr
        assert set(states(database_url, tmp_path).values()) == {"sent"}
        accepted = standin.accepted_counts()
        standin.assert_no_violations()
    assert sorted(accepted) == sorted(emails) and set(accepted.values()) == {1}

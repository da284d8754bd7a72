"""Kill a dispatching process with SIGKILL while a batch is in flight, then restart it.

No recipient may receive a step twice, every email not in flight at the kill must be
sent, and the in-flight ones must be listed as unknown, until SendGrid, asked about their
batch (`drip reconcile`), says it holds them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from drip.runtime import Drip
from drip.settings import load_settings
from tests.acceptance.conftest import Run
from tests.conftest import ROOT
from tests.support.sendgrid_standin import SendGridStandIn

KEY = "SG.test-key"


def test_sigkill_mid_batch_leaves_unknowns_and_no_duplicates(
    drip_cli: Run, process_env: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    emails = [f"runner{n:02d}@example.com" for n in range(20)]
    for address in emails:
        drip_cli("enroll", address, "--sequence", "basic", check=True)
    with SendGridStandIn(api_key=KEY) as standin:
        env = {**process_env, "DRIP_BACKEND": "sendgrid", "DRIP_SENDGRID_HOST": standin.url,
               "SENDGRID_API_KEY": KEY, "DRIP_BATCH_SIZE": "5", "DRIP_LEASE_SECONDS": "5",
               "DRIP_SENDGRID_TIMEOUT": "30"}
        standin.delay_next(8.0, count=1)  # SendGrid takes the first batch but answers late
        victim = subprocess.Popen([sys.executable, "-m", "drip", "dispatch"], cwd=ROOT,
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not standin.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert standin.requests, "the dispatcher never reached SendGrid"
        os.kill(victim.pid, signal.SIGKILL)  # the batch is in flight
        victim.wait(timeout=10)
        in_flight = {p["to_email"] for p in standin.personalizations}
        assert len(in_flight) == 5
        time.sleep(5.5)  # let the dead worker's lease expire
        restarted = subprocess.run([sys.executable, "-m", "drip", "dispatch", "--json"],
                                   cwd=ROOT, env=env, capture_output=True, text=True,
                                   timeout=60, stdin=subprocess.DEVNULL)
        # It sends the rest, marks the dead worker's five unknown, says so and exits 1
        # (EXIT_FAILED): a human should look at them.
        assert restarted.returncode == 1, restarted.stdout + restarted.stderr
        said = json.loads(restarted.stdout)
        assert said["expired_leases"] == 5 and said["sent_count"] == len(emails) - 5
        status = subprocess.run([sys.executable, "-m", "drip", "status", "--json"], cwd=ROOT,
                                env=env, capture_output=True, text=True, timeout=60,
                                stdin=subprocess.DEVNULL)
        assert [(g["cause"], g["under_hour"]) for g in json.loads(status.stdout)["unknown"]] \
            == [("the worker stopped mid-request", 5)]
        accepted = Counter(standin.accepted_emails())
        standin.assert_no_violations()
        assert [e for e, n in accepted.items() if n > 1] == [], "a recipient got week-1 twice"
        assert sorted(accepted) == sorted(emails)  # the in-flight five were taken once
        rows = week_one(database_url, tmp_path)
        unknown = {r.email for r in rows if r.state == "unknown"}
        sent = {r.email for r in rows if r.state == "sent"}
        assert unknown == in_flight
        assert sent == set(emails) - in_flight
        assert all("may or may not have gone out" in (r.last_error or "")
                   for r in rows if r.state == "unknown")
        # The dead worker recorded the batch key with `sending`: SendGrid can be asked.
        settled = subprocess.run(
            [sys.executable, "-m", "drip", "reconcile", "--json"], cwd=ROOT,
            env={**env, "DRIP_SENDGRID_SETTLE_SECONDS": "0"}, capture_output=True, text=True,
            timeout=60, stdin=subprocess.DEVNULL)
        assert settled.returncode == 0, settled.stdout + settled.stderr
        assert [(b["held"], b["not_held"]) for b in json.loads(settled.stdout)] == [(5, 0)]
        assert {r.state for r in week_one(database_url, tmp_path)} == {"sent"}
        assert Counter(standin.accepted_emails()) == accepted  # nothing sent again


def week_one(database_url: str, tmp_path: Path) -> list[Any]:
    settings = load_settings({}, database_url=database_url, var_dir=tmp_path / "var",
                             secret_key="x")
    drip = Drip.from_settings(settings)
    try:
        return [r for r in drip.store.deliveries() if r.step_key == "week-1"]
    finally:
        drip.close()

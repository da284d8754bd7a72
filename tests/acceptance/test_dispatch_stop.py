"""Ctrl-C or SIGTERM to a real `drip dispatch` mid-pass: the batch in hand is finished,
the rest stays scheduled, and the operator is told what was sent and what was released."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from drip.models import Delivery
from tests.acceptance.conftest import Run
from tests.conftest import ROOT
from tests.support.sendgrid_standin import SendGridStandIn

KEY = "SG.test-key"


def states(database_url: str) -> dict[str, int]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(Delivery.state, func.count()).group_by(Delivery.state))
            return {state: count for state, count in rows}
    finally:
        engine.dispose()


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_finishes_the_batch_in_hand_and_releases_the_rest(
    drip_cli: Run, process_env: dict[str, str], database_url: str, tmp_path: Path,
    stop_signal: signal.Signals,
) -> None:
    emails = [f"runner{n:02d}@example.com" for n in range(12)]
    (tmp_path / "runners.csv").write_text("email\n" + "\n".join(emails) + "\n")
    drip_cli("import", str(tmp_path / "runners.csv"), check=True)
    with SendGridStandIn(api_key=KEY) as standin:
        env = {**process_env, "DRIP_BACKEND": "sendgrid", "DRIP_SENDGRID_HOST": standin.url,
               "SENDGRID_API_KEY": KEY, "DRIP_BATCH_SIZE": "4"}
        standin.delay_next(3.0, count=1)  # the first batch is in flight when the signal comes
        # --now a week ahead: a lease left behind would outlive the pass by a week
        dispatch = subprocess.Popen(
            [sys.executable, "-m", "drip", "dispatch", "--now", "2099-01-01T07:00:00Z"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not standin.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        assert standin.requests, "the dispatcher never reached SendGrid"
        dispatch.send_signal(stop_signal)
        out, err = dispatch.communicate(timeout=60)
        assert dispatch.returncode == 128 + stop_signal, out + err
        assert "Traceback" not in out + err
        said = " ".join(out.split())
        assert f"Stopped by {stop_signal.name} after the batch in hand: sent 4, released" in said
        assert "stays scheduled for the next pass" in said
        # nothing is left `sending` (it would turn unknown); the other 8 wait their turn
        left = states(database_url)
        assert left.get("sending", 0) == 0 and left.get("unknown", 0) == 0, left
        assert left["sent"] == 4 and left["scheduled"] == 8 + 4, left  # +4: their week 2
        again = subprocess.run([sys.executable, "-m", "drip", "dispatch", "--json", "--now",
                                "2099-01-01T07:01:00Z"], cwd=ROOT,
                               env=env, capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
        assert again.returncode == 0, again.stdout + again.stderr
        assert json.loads(again.stdout)["sent_count"] == 8
        assert Counter(standin.accepted_emails()) == Counter(emails)  # each one, once

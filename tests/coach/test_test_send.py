"""`drip test-send` (the real command) delivers one step marked [TEST] to the outbox and to the
SendGrid stand-in on loopback, and records no delivery in the database."""

from __future__ import annotations

import email
import email.policy
import os
import subprocess
import sys
from pathlib import Path

from drip.db import make_engine
from drip.store import Store
from tests.conftest import ROOT
from tests.support.sendgrid_standin import SendGridStandIn

KEY = "SG.test-key"
SUBJECT = "[TEST] Week 3: slow eccentrics, hips still low"


def run(tmp_path: Path, database_url: str, *args: str, **env: str) -> str:
    environment = {**os.environ, "DRIP_SECRET_KEY": "k", "DRIP_VAR_DIR": str(tmp_path / "var"),
                   "DRIP_DATABASE_URL": database_url,
                   "DRIP_OUTBOX_DIR": str(tmp_path / "outbox"), "COLUMNS": "200", **env}
    done = subprocess.run(
        [sys.executable, "-m", "drip", "test-send", "week-3", "--sequence", "pht-7-week",
         "--to", "Coach.Dayna@Example.org", *args],
        env=environment, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_test_send_to_the_outbox(tmp_path: Path, database_url: str) -> None:
    output = run(tmp_path, database_url, "--nudge", "12-week-program")
    assert "not recorded as a delivery" in output
    (eml,) = (tmp_path / "outbox").glob("*.eml")
    parsed = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == SUBJECT
    assert parsed["To"] == "Alexandra Sample <coach.dayna@example.org>"
    assert parsed["List-Unsubscribe"].startswith("<https://localhost:8000/u/")
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert text.startswith("7-Week Proximal Hamstring Strength Program for Runners")
    assert "Hi Alexandra," in text and "12-week strength program" in text
    assert "https://www.example.com/12-week-strength?utm_source=drip" in html
    engine = make_engine(database_url)
    try:
        assert Store(engine).count_deliveries() == 0
    finally:
        engine.dispose()


def test_test_send_through_sendgrid(tmp_path: Path, database_url: str) -> None:
    with SendGridStandIn(api_key=KEY) as standin:
        output = run(tmp_path, database_url, "--variant", "repeat", DRIP_BACKEND="sendgrid",
                     DRIP_SENDGRID_HOST=standin.url, SENDGRID_API_KEY=KEY)
        standin.assert_no_violations()
    assert "through sendgrid" in output
    (body,) = standin.requests
    assert body["subject"] == "[TEST] Week 3 again: same lifts, less load"
    assert standin.accepted_emails() == ["coach.dayna@example.org"]
    (personalization,) = body["personalizations"]
    assert personalization["substitutions"]["%%first_name%%"] == "Alexandra"
    assert not (tmp_path / "outbox").exists()

"""The run-readiness gate of the shipped program, end to end through the real `drip` command
and the real web app (`drip serve` on loopback): a runner who passes weeks 1-4 and stays
silent at week 5 gets the reminder on day 5 and the week-5 waiting email, never week 6;
answering "passed" by POST on the reminder's button makes week 6 the next email."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT

RUNNER = "gate-runner@example.com"
START = datetime(2027, 3, 1, 5, 0, tzinfo=UTC)  # a Monday, 05:00 UTC


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    port = free_port()
    values = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
    values.update({"DRIP_DATABASE_URL": database_url, "DRIP_VAR_DIR": str(tmp_path / "var"),
                   "DRIP_OUTBOX_DIR": str(tmp_path / "outbox"),
                   "DRIP_SECRET_KEY": "gate-acceptance-secret",
                   "DRIP_SEQUENCES_DIR": str(ROOT / "sequences"),
                   "DRIP_TEMPLATES_DIR": str(ROOT / "templates"),
                   "DRIP_BASE_URL": f"http://127.0.0.1:{port}", "DRIP_LOG_LEVEL": "WARNING",
                   "DRIP_PORT_FOR_TEST": str(port), "PYTHONUNBUFFERED": "1"})
    return values


@pytest.fixture
def server(env: dict[str, str]) -> Iterator[str]:
    base = env["DRIP_BASE_URL"]
    process = subprocess.Popen(
        [sys.executable, "-m", "drip", "serve", "--port", env["DRIP_PORT_FOR_TEST"]],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"drip serve exited: {output}")
            time.sleep(0.1)
        else:
            pytest.fail("drip serve did not start listening")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
        if process.stdout:
            process.stdout.close()


class Journey:
    def __init__(self, env: dict[str, str], web: httpx.Client) -> None:
        self.env, self.web = env, web
        self.outbox = Path(env["DRIP_OUTBOX_DIR"])
        self.seen: set[str] = set()

    def drip(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "drip", *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (
            done.stdout + done.stderr)
        return done.stdout

    def dispatch(self, at: datetime) -> list[tuple[str, str]]:
        """One `drip dispatch --now AT`; the (step, variant) of each email it sent."""
        report = json.loads(self.drip("dispatch", "--now", at.isoformat(), "--json"))
        return [(s["step"], s["variant"]) for s in report["sent"]]

    def new_mail(self) -> list[email.message.EmailMessage]:
        mails = []
        for path in sorted(self.outbox.glob("*.eml")):
            if path.name not in self.seen:
                self.seen.add(path.name)
                mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                assert isinstance(mail, email.message.EmailMessage)
                mails.append(mail)
        return mails

    @staticmethod
    def text(mail: email.message.EmailMessage) -> str:
        body = mail.get_body(("plain",))
        assert body is not None
        return str(body.get_content())  # type: ignore[attr-defined]

    def answer(self, mail: email.message.EmailMessage, choice: str) -> str:
        """Tap the answer's button (GET: nothing saved), then the page's one Save (POST)."""
        (link,) = set(re.findall(r"http://127\.0\.0\.1:\d+/c/\S+\?answer=" + choice,
                                 self.text(mail)))
        page = self.web.get(link)
        assert page.status_code == 200 and "Not saved yet" in page.text
        saved = self.web.post(link, data={"answer": choice})
        assert saved.status_code == 200 and "Saved" in saved.text, saved.text
        return saved.text


def test_silent_at_the_run_readiness_test_waits_then_a_passed_post_moves_to_week_6(
        env: dict[str, str], server: str) -> None:
    with httpx.Client(timeout=30) as web:
        journey = Journey(env, web)
        journey.drip("enroll", RUNNER, "--sequence", "pht-7-week", "--name", "Rae",
                     "--timezone", "UTC", "--source", "purchase", "--now", START.isoformat())
        week_start = START
        for week in range(1, 5):  # weeks 1-4, each answered "passed" the day after
            assert journey.dispatch(week_start + timedelta(hours=2)) == [
                (f"week-{week}", "main")]
            (mail,) = journey.new_mail()
            journey.answer(mail, "passed")
            week_start += timedelta(days=7)

        # Week 5: the run-readiness test, and then silence.
        assert journey.dispatch(week_start + timedelta(hours=2)) == [("week-5", "main")]
        (week_5,) = journey.new_mail()
        assert "run-readiness" in str(week_5["Subject"]).lower()
        assert journey.dispatch(week_start + timedelta(days=4, hours=2)) == []
        # Day 5, inside the send window: one short reminder with the answer buttons.
        assert journey.dispatch(week_start + timedelta(days=5, hours=2)) == [
            ("week-5", "checkpoint-reminder")]
        (reminder,) = journey.new_mail()
        assert "answer=passed" in journey.text(reminder)
        assert journey.dispatch(week_start + timedelta(days=6, hours=2)) == []  # never twice
        # A week on, still silent: the waiting email, not week 6.
        assert journey.dispatch(week_start + timedelta(days=7, hours=2)) == [
            ("week-5", "waiting")]
        (waiting,) = journey.new_mail()
        assert "week 6" not in str(waiting["Subject"]).lower()
        assert "answer=passed" in journey.text(waiting)
        status = journey.drip("subscriber", RUNNER)
        assert "week-5" in status

        # The runner answers "passed" on the waiting email's button: week 6 is next.
        saved = journey.answer(waiting, "passed")
        assert "Week 6" in saved
        next_week = week_start + timedelta(days=14, hours=2)
        assert journey.dispatch(next_week) == [("week-6", "main")]

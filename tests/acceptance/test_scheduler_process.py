"""`python scheduler.py` as a real process: it dispatches, beats, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, update

from drip.models import Heartbeat, Lease
from tests.acceptance.conftest import Run
from tests.conftest import ROOT


def start_scheduler(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "scheduler.py"], cwd=ROOT, env={**env, "DRIP_TICK_SECONDS": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
    )


def wait_for(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_scheduler_dispatches_and_stops_cleanly(
    drip_cli: Run, process_env: dict[str, str], tmp_path: Path, database_url: str,
    stop_signal: signal.Signals,
) -> None:
    drip_cli("enroll", "ana@example.com", "--sequence", "basic", check=True)
    scheduler = start_scheduler(process_env)
    try:
        outbox = tmp_path / "outbox"
        wait_for(lambda: len(list(outbox.glob("*.eml"))) == 1)
        engine = create_engine(database_url)
        with engine.connect() as conn:
            wait_for(lambda: conn.execute(select(Heartbeat.worker)).first() is not None)
        engine.dispose()
        scheduler.send_signal(stop_signal)
        output, _ = scheduler.communicate(timeout=30)
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
            scheduler.wait()
    assert scheduler.returncode == 0, output
    assert "stopped" in output
    assert "Traceback" not in output
    # drip's one line per pass, APScheduler only at WARNING, the tick named as it is
    assert "dispatching every 1 s" in output
    assert re.search(r"drip.scheduler: pass: sent 1 failed 0 retried 0 unknown 0 in \d+\.\d\d s",
                     output), output
    assert "apscheduler" not in output and "dispatch every minute" not in output
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
    # Its last heartbeat says it stopped cleanly, so `drip status` does not report it as
    # a scheduler that went silent.
    engine = create_engine(database_url)
    with engine.connect() as conn:
        details = list(conn.execute(select(Heartbeat.detail)).scalars())
    engine.dispose()
    assert details == ["stopped cleanly"]
    # ... and `drip status` says when it stopped, neither "alive" nor "looks dead".
    shown = drip_cli("status")
    verdict = " ".join(shown.stdout.split())
    assert "The scheduler stopped at" in verdict and "cleanly" in verdict, shown.stdout
    assert "alive" not in verdict and "looks dead" not in verdict
    assert json.loads(drip_cli("status", "--json").stdout)["scheduler"]["stopped"] is True


def test_a_second_scheduler_on_one_sqlite_file_refuses_to_start(
    process_env: dict[str, str], database_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("only SQLite limits itself to one scheduler")
    first = start_scheduler(process_env)
    try:
        time.sleep(3)
        assert first.poll() is None
        second = start_scheduler(process_env)
        output, _ = second.communicate(timeout=60)
        assert second.returncode != 0
        assert "Another scheduler" in output and "already running" in output
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)
    assert first.returncode == 0


@pytest.mark.parametrize(("variable", "value"), [
    # a claim held for 31,700 years: every pass would fail adding it to the clock
    ("DRIP_LEASE_SECONDS", "1000000000000"),
    # no TCP port: with DRIP_BACKEND=smtp every email would be retried for ever
    ("DRIP_SMTP_PORT", "99999"),
    # a SendGrid request that may hang for a day, holding its emails' fate
    ("DRIP_SENDGRID_TIMEOUT", "86400"),
    # a port that is not a number, and a driver drip does not ship
    ("DRIP_DATABASE_URL", "postgresql://postgres@127.0.0.1:54x2/drip"),
    ("DRIP_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1/drip"),
])
def test_bad_settings_are_refused_at_start_up_naming_the_variable(
    process_env: dict[str, str], variable: str, value: str
) -> None:
    scheduler = start_scheduler({**process_env, variable: value})
    try:
        output, _ = scheduler.communicate(timeout=60)
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
            scheduler.wait()
    assert scheduler.returncode == 5, output  # EXIT_CONFIG
    assert "Traceback" not in output, output
    assert f"Invalid configuration: {variable}" in output, output
    assert "started" not in output, output


def test_a_scheduler_restarted_after_sigkill_takes_over_the_sqlite_file(
    process_env: dict[str, str], database_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("only SQLite limits itself to one scheduler")
    killed = start_scheduler(process_env)
    engine = create_engine(database_url)
    with engine.connect() as conn:
        wait_for(lambda: conn.execute(select(Heartbeat.worker)).first() is not None)
    engine.dispose()
    killed.kill()  # OOM, kill -9: it never releases the file
    killed.communicate(timeout=30)
    restarted = start_scheduler(process_env)
    try:
        time.sleep(3)
        assert restarted.poll() is None, restarted.communicate()[0]
        restarted.send_signal(signal.SIGTERM)
        output, _ = restarted.communicate(timeout=30)
    finally:
        if restarted.poll() is None:
            restarted.kill()
            restarted.wait()
    assert restarted.returncode == 0, output
    assert "which is no longer running" in output, output
    assert "Another scheduler" not in output, output


def test_a_scheduler_that_loses_the_sqlite_file_stops_and_says_why(
    process_env: dict[str, str], database_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("only SQLite limits itself to one scheduler")
    scheduler = start_scheduler(process_env)
    try:
        engine = create_engine(database_url)
        with engine.begin() as conn:
            wait_for(lambda: conn.execute(select(Heartbeat.worker)).first() is not None)
            # Another scheduler took the file while this one could not renew its lease
            # (a pass longer than the lease, a suspended machine).
            conn.execute(update(Lease).where(Lease.name == "scheduler:sqlite").values(
                holder="elsewhere:1:abcd", expires_at=datetime(2099, 1, 1, tzinfo=UTC)))
        engine.dispose()
        output, _ = scheduler.communicate(timeout=120)
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
            scheduler.wait()
    # It does not idle on, failing every tick: it stops, says why, and exits non-zero.
    assert scheduler.returncode == 5, output  # EXIT_CONFIG
    assert "Another scheduler (elsewhere:1:abcd)" in output, output
    assert "Traceback" not in output, output

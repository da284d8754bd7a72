"""Renaming or removing a step while people are on it: lint says how many it would strand, and
dispatch holds them with the reason instead of dropping them (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drip.clock import FixedClock
from drip.runtime import Drip
from drip.subscriptions import enroll
from tests.coach.conftest import lint_project, replace
from tests.conftest import ROOT, make_settings

YAML = "sequences/basic.yaml"
RUNNERS = ("ana@example.com", "ben@example.com", "cy@example.com")


@pytest.fixture
def started(tmp_path: Path, database_url: str, clock: FixedClock,
            broken: Callable[..., Path]) -> Iterator[tuple[Drip, Path]]:
    """Three runners who got week 1 of the basic sequence; week 2 is scheduled."""
    root = broken()
    drip = Drip.from_settings(make_settings(tmp_path, database_url,
                                            sequences_dir=root / "sequences",
                                            templates_dir=root / "templates"), clock)
    for email in RUNNERS:
        enroll(drip.store, drip.library, email=email, sequence_key="basic", now=clock.now(),
               timezone="Europe/London")
    assert len(drip.dispatcher().run_once().sent) == 3
    try:
        yield drip, root
    finally:
        drip.close()


def edited(drip: Drip, clock: FixedClock, root: Path, old: str, new: str) -> Drip:
    replace(YAML, old, new)(root)
    return Drip.from_settings(drip.settings, clock)  # a new process reads the edited file


def test_positions_show_the_last_and_next_step(started: tuple[Drip, Path]) -> None:
    drip, _ = started
    positions = drip.store.enrollment_positions()
    assert [(p.last_step_key, p.next_step_key) for p in positions] == [("week-1", "week-2")] * 3


def test_lint_counts_the_enrollments_a_renamed_step_strands(started: tuple[Drip, Path]) -> None:
    drip, root = started
    assert lint_project(root, positions=drip.store.enrollment_positions()) == []
    replace(YAML, "key: week-2", "key: week-two")(root)
    found = lint_project(root, positions=drip.store.enrollment_positions())
    (warning,) = found
    assert warning.severity == "warning" and warning.file.endswith(YAML) and warning.line == 6
    assert "3 enrollments under way would be stranded" in warning.message
    assert "(week-2: 3)" in warning.message


def test_dispatch_holds_an_email_whose_step_was_renamed(started: tuple[Drip, Path],
                                                       clock: FixedClock) -> None:
    drip, root = started
    later = edited(drip, clock, root, "key: week-2", "key: week-two")
    try:
        clock.advance(days=8)
        report = later.dispatcher().run_once()
        assert report.sent == [] and report.held == 3 and report.cancelled == 0
        rows = [r for r in later.store.deliveries() if r.seq_no == 2]
        assert {r.state for r in rows} == {"held"}
        assert all("'week-2' is no longer in 'basic'" in (r.last_error or "") for r in rows)
        states = {e.state for e in later.store.enrollments_of("basic")}
        assert states == {"paused"}  # waiting for the coach, not finished
    finally:
        later.close()


def test_dispatch_holds_when_the_step_just_sent_was_removed(started: tuple[Drip, Path],
                                                           clock: FixedClock) -> None:
    drip, root = started
    # week-1 is renamed after it went out; week-2 (the next email) still exists
    later = edited(drip, clock, root, "key: week-1", "key: week-one")
    try:
        clock.advance(days=8)
        report = later.dispatcher().run_once()
        assert report.sent == [] and report.held == 3 and report.cancelled == 0
        rows = [r for r in later.store.deliveries() if r.seq_no == 2]
        assert {r.state for r in rows} == {"held"}
        assert all("'week-1' is no longer in 'basic'" in (r.last_error or "") for r in rows)
    finally:
        later.close()


def test_the_command_reads_the_configured_database(started: tuple[Drip, Path],
                                                   database_url: str, tmp_path: Path) -> None:
    _, root = started
    replace(YAML, "key: week-2", "key: week-two")(root)
    env = {**os.environ, "DRIP_SECRET_KEY": "k", "DRIP_DATABASE_URL": database_url,
           "DRIP_VAR_DIR": str(tmp_path / "var")}
    done = subprocess.run([sys.executable, "-m", "drip", "lint", str(root), "--json"],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr  # a warning, not an error
    (finding,) = json.loads(done.stdout)["findings"]
    assert finding["severity"] == "warning" and finding["line"] == 6
    assert finding["message"].startswith("3 enrollments under way would be stranded")


def test_without_a_database_lint_skips_the_check(broken: Callable[..., Path],
                                                 tmp_path: Path) -> None:
    root = broken()
    missing = tmp_path / "no" / "drip.db"
    env = {**os.environ, "DRIP_SECRET_KEY": "k", "DRIP_DATABASE_URL": f"sqlite:///{missing}",
           "DRIP_VAR_DIR": str(tmp_path / "var")}
    done = subprocess.run([sys.executable, "-m", "drip", "lint", str(root)],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not missing.exists(), "lint must not create a database"

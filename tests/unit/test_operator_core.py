"""The operator's pure rules: reading a CSV file, ages like 24h, and the scheduler's health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from drip.errors import InvalidInput
from drip.imports import InvalidFile, parse_csv
from drip.operations import (
    DISPATCH_FAILED,
    Status,
    duration,
    parse_moment,
    problems,
    scheduler_health,
)
from drip.store import HeartbeatRow, Overview

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_a_csv_with_a_bom_crlf_quotes_and_blank_lines() -> None:
    data = ('\ufeffEMAIL , Name,timezone\r\n'
            '"ana@example.com","Lopez, Ana",Europe/London\r\n'
            '\r\n'
            'Ben@Example.com,,\r\n').encode()
    parsed = parse_csv(data)
    assert parsed.problems == [] and parsed.lines == 4
    assert [(r.line, r.email, r.name, r.timezone, r.source) for r in parsed.rows] == [
        (2, "ana@example.com", "Lopez, Ana", "Europe/London", "import"),
        (4, "ben@example.com", "", "UTC", "import")]


def test_duplicates_fill_each_other_in_or_clash() -> None:
    parsed = parse_csv(b"email,name,timezone,joined_at\n"
                       b"ana@example.com,,Europe/London,\n"
                       b"ANA@example.com,Ana,,2026-02-01\n"
                       b"ana@example.com,Anna,,\n")
    [ana] = parsed.rows
    assert (ana.line, ana.name, ana.timezone) == (2, "Ana", "Europe/London")
    assert ana.joined_at == datetime(2026, 2, 1, tzinfo=UTC)
    assert [str(m) for m in parsed.merged] == [
        "line 3: ana@example.com repeats line 2; merged"]
    assert [str(p) for p in parsed.problems] == [
        "line 4: ana@example.com is also on line 2, with a different name (Anna, not Ana)"]


def test_bad_rows_name_their_line() -> None:
    parsed = parse_csv(b"email,joined_at\nana@example.com,someday\nben@,\n\xe9@x.com,\n")
    assert [p.line for p in parsed.problems] == [2, 3, 4]
    assert "ISO 8601" in parsed.problems[0].message
    error = InvalidFile(parsed.problems, shown=1)
    assert str(error).startswith("3 invalid rows, so nothing was imported")
    assert str(error).endswith("; and 2 more.")


def test_a_file_without_an_email_column_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no 'email' column"):
        parse_csv(b"name\nAna\n")


def test_moments_are_instants_or_ages() -> None:
    assert parse_moment("24h", NOW) == NOW - timedelta(hours=24)
    assert parse_moment("2w", NOW) == NOW - timedelta(days=14)
    assert parse_moment("30m", NOW) == NOW - timedelta(minutes=30)
    assert parse_moment("2026-03-01T06:30:00Z", NOW) == datetime(2026, 3, 1, 6, 30, tzinfo=UTC)
    with pytest.raises(InvalidInput):
        parse_moment("h", NOW)


def test_the_scheduler_is_dead_when_its_newest_heartbeat_is_stale() -> None:
    stale = timedelta(minutes=3)
    assert not scheduler_health([], None, NOW, stale).alive
    beats = [HeartbeatRow("old", NOW - timedelta(hours=2), NOW - timedelta(days=1), None),
             HeartbeatRow("new", NOW - timedelta(seconds=30), NOW - timedelta(hours=1), None)]
    health = scheduler_health(beats, NOW - timedelta(minutes=5), NOW, stale)
    assert health.alive and health.worker == "new" and health.lag_seconds == 300
    dead = scheduler_health(beats[:1], None, NOW, stale)
    assert not dead.alive and "looks dead: its last tick was 2.0 h ago (old)" in dead.verdict
    assert [duration(s) for s in (5, 600, 7200, 3 * 86400)] == ["5 s", "10 min", "2.0 h",
                                                                  "3.0 d"]


def test_check_names_a_live_scheduler_whose_passes_fail() -> None:
    """A worker that keeps ticking while every pass raises (the database refuses it, a bug)
    is alive, sends nothing, and until now passed `drip status --check` whenever no email
    was overdue yet."""
    stale = timedelta(minutes=3)
    beats = [HeartbeatRow("w1", NOW - timedelta(seconds=30), NOW - timedelta(hours=1),
                          DISPATCH_FAILED),
             HeartbeatRow("w2", NOW - timedelta(seconds=40), NOW - timedelta(hours=1),
                          "sent 0 failed 0 retried 0 unknown 0")]

    def found(heartbeats: list[HeartbeatRow]) -> list[str]:
        health = scheduler_health(heartbeats, None, NOW, stale)
        return problems(Status(NOW, Overview([], 0, 0, 0, None, {}, heartbeats), [], [],
                               health, 900.0))

    (problem,) = found(beats)
    assert "w1" in problem and "failed" in problem
    assert found(beats[1:]) == []

"""`drip simulate` plays a persona through the shipped program in simulated time: the calendar
shows each email at 06:30 local time in three timezones, across DST changes, without a database."""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from drip.clock import parse_instant
from drip.errors import InvalidInput
from drip.render import Renderer
from drip.sequence import Library, load_library
from drip.simulation import parse_answers, parse_buys, simulate
from tests.coach.conftest import SENDER
from tests.conftest import ROOT

ALL_PASS = "pass,pass,pass,pass,pass,pass,pass"


@pytest.fixture(scope="module")
def library() -> Library:
    return load_library(ROOT / "sequences")


@pytest.fixture(scope="module")
def renderer(library: Library) -> Renderer:
    return Renderer(ROOT / "templates", library, SENDER)


def calendar(library: Library, renderer: Renderer, timezone: str, joined: str,
             answers: str = ALL_PASS, **kwargs: object) -> list[tuple[str, str, str, str]]:
    result = simulate(library, renderer, sequence_key="pht-7-week", timezone=timezone,
                      joined_at=parse_instant(joined), answers=parse_answers(answers),
                      **kwargs)  # type: ignore[arg-type]
    return [(f"{e.local:%a %d %b %H:%M %Z}", f"{e.at:%d %b %H:%M}Z", e.step_key, e.variant)
            for e in result.emails]


def test_london_across_the_spring_clock_change(library: Library, renderer: Renderer) -> None:
    assert calendar(library, renderer, "Europe/London", "2026-03-16T10:00:00Z") == [
        ("Mon 16 Mar 10:00 GMT", "16 Mar 10:00Z", "week-1", "main"),
        ("Mon 23 Mar 06:30 GMT", "23 Mar 06:30Z", "week-2", "main"),
        ("Mon 30 Mar 06:30 BST", "30 Mar 05:30Z", "week-3", "main"),  # clocks went forward
        ("Mon 06 Apr 06:30 BST", "06 Apr 05:30Z", "week-4", "main"),
        ("Mon 13 Apr 06:30 BST", "13 Apr 05:30Z", "week-5", "main"),
        ("Mon 20 Apr 06:30 BST", "20 Apr 05:30Z", "week-6", "main"),
        ("Mon 27 Apr 06:30 BST", "27 Apr 05:30Z", "week-7", "main"),
        ("Mon 04 May 06:30 BST", "04 May 05:30Z", "week-7", "graduated"),
    ]


def test_sydney_fails_week_3_twice_as_its_clocks_go_back(library: Library,
                                                        renderer: Renderer) -> None:
    answers = "pass,pass,notyet,notyet,pass"
    assert calendar(library, renderer, "Australia/Sydney", "2026-03-22T09:00:00Z",
                    answers)[:6] == [
        ("Sun 22 Mar 20:00 AEDT", "22 Mar 09:00Z", "week-1", "main"),
        ("Sun 29 Mar 06:30 AEDT", "28 Mar 19:30Z", "week-2", "main"),
        ("Sun 05 Apr 06:30 AEST", "04 Apr 20:30Z", "week-3", "main"),  # daylight saving ended
        ("Sun 12 Apr 06:30 AEST", "11 Apr 20:30Z", "week-3", "repeat"),
        ("Sun 19 Apr 06:30 AEST", "18 Apr 20:30Z", "week-3", "see-a-clinician"),
        ("Sun 26 Apr 06:30 AEST", "25 Apr 20:30Z", "week-4", "main"),
    ]


def test_new_york_pauses_and_buys(library: Library, renderer: Renderer) -> None:
    result = simulate(library, renderer, sequence_key="pht-7-week", timezone="America/New_York",
                      joined_at=parse_instant("2026-03-02T15:00:00Z"),
                      answers=parse_answers(ALL_PASS), buys=parse_buys(["12-week-program@3"]),
                      pauses=[2])
    got = [(f"{e.local:%a %d %b %H:%M %Z}", e.step_key, e.nudge) for e in result.emails]
    assert got == [
        ("Mon 02 Mar 10:00 EST", "week-1", "strength-assessment"),
        ("Mon 09 Mar 06:30 EDT", "week-2", None),  # the day after DST began; no offer in week 2
        ("Mon 23 Mar 06:30 EDT", "week-3", "12-week-program"),  # a week later: the pause
        ("Mon 30 Mar 06:30 EDT", "week-4", None),  # bought the program: no more nudges
        ("Mon 06 Apr 06:30 EDT", "week-5", None),
        ("Mon 13 Apr 06:30 EDT", "week-6", None),
        ("Mon 20 Apr 06:30 EDT", "week-7", None),
        ("Mon 27 Apr 06:30 EDT", "week-7", None),
    ]
    assert result.ended == "complete"
    assert result.events == ["buys 12-week-program after email 3",
                             "pauses a week after email 2"]


def test_bad_persona_input_is_explained(library: Library, renderer: Renderer) -> None:
    with pytest.raises(InvalidInput, match="'maybe' is not an answer"):
        parse_answers("pass,maybe")
    with pytest.raises(InvalidInput, match="OFFER@WEEK"):
        parse_buys(["12-week-program"])
    with pytest.raises(InvalidInput, match="'12-week-programme' is not an offer or a goal"):
        calendar(library, renderer, "UTC", "2026-03-02T09:00:00Z",
                 buys=parse_buys(["12-week-programme@3"]))
    with pytest.raises(InvalidInput, match="never gets a week 5 email"):
        calendar(library, renderer, "UTC", "2026-03-02T09:00:00Z", "pass,notyet,notyet,notyet",
                 pauses=[5])


def test_the_command_prints_the_calendar_and_writes_the_emails(tmp_path: Path) -> None:
    out = tmp_path / "emails"
    database = tmp_path / "never.db"
    env = {**os.environ, "COLUMNS": "220", "DRIP_SECRET_KEY": "k",
           "DRIP_DATABASE_URL": f"sqlite:///{database}", "DRIP_VAR_DIR": str(tmp_path / "var")}
    done = subprocess.run(
        [sys.executable, "-m", "drip", "simulate", "--sequence", "pht-7-week",
         "--timezone", "Australia/Sydney", "--joined", "2026-03-22T09:00:00Z",
         "--answers", "pass,pass,notyet,notyet,pass", "--out", str(out)],
        capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    row = next(line for line in lines if "Sun 19 Apr 2026 06:30 AEST" in line)
    assert "week-3" in row and "see-a-clinician" in row
    # the answers run out before the week-5 gate: silence there waits, then holds for the coach
    assert "waiting" in done.stdout and "Ends: held for the coach." in done.stdout
    assert not database.exists(), "simulate must not touch the database"
    emls = sorted(out.glob("*.eml"))
    assert [p.name for p in emls][:3] == ["01-week-1-main.eml", "02-week-2-main.eml",
                                          "03-week-3-main.eml"]
    parsed = email.message_from_bytes(emls[4].read_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == "Time to get a clinician's eyes on this"
    assert parsed["To"] == "Alexandra Sample <alexandra@example.com>"
    sent = parsedate_to_datetime(parsed["Date"])
    assert sent == datetime.fromisoformat("2026-04-18T20:30:00+00:00")
    assert (out / "05-week-3-see-a-clinician.html").read_text().count("Unsubscribe") >= 1


def simulate_command(tmp_path: Path, sequences: Path, templates: Path,
                     *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "220", "DRIP_SECRET_KEY": "k",
           "DRIP_VAR_DIR": str(tmp_path / "var"), "DRIP_SEQUENCES_DIR": str(sequences),
           "DRIP_TEMPLATES_DIR": str(templates)}
    return subprocess.run([sys.executable, "-m", "drip", "simulate", *args],
                          capture_output=True, text=True, env=env, cwd=tmp_path)


def copy_of_the_sample(tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(ROOT / "sequences", tmp_path / "sequences")
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    return tmp_path / "sequences", tmp_path / "templates"


def test_the_command_needs_no_sequence_when_there_is_one(tmp_path: Path) -> None:
    sequences, templates = copy_of_the_sample(tmp_path)
    done = simulate_command(tmp_path, sequences, templates, "--answers", ALL_PASS)
    assert done.returncode == 0, done.stderr
    assert "pht-7-week for someone in UTC" in done.stdout and "graduated" in done.stdout
    other = (sequences / "pht-7-week.yaml").read_text().replace("key: pht-7-week", "key: other")
    (sequences / "other.yaml").write_text(other)
    done = simulate_command(tmp_path, sequences, templates)
    assert done.returncode == 2
    assert "Give --sequence: there are 2 sequences (other, pht-7-week)." \
        in " ".join(done.stderr.split())


def test_the_command_reports_every_template_mistake_as_lint_does(tmp_path: Path) -> None:
    sequences, templates = copy_of_the_sample(tmp_path)
    signoff = templates / "pht-7-week" / "_signoff.md.j2"
    signoff.write_text(signoff.read_text().replace("Happy running,",
                                                   "Happy running, {{ subscriber.firstname }}"))
    week = templates / "pht-7-week" / "week-6.md.j2"
    week.write_text(week.read_text() + "\n{% if step.week > 5 %}Nearly there.\n")
    out = tmp_path / "emails"
    done = simulate_command(tmp_path, sequences, templates, "--out", str(out))
    assert done.returncode == 2
    said = done.stderr
    assert "_signoff.md.j2:1: error: Unknown variable: 'firstname'" in said
    lines = len(week.read_text().splitlines())
    assert f"week-6.md.j2:{lines}: error: The {{% if %}} on line {lines} is never closed." \
        in said
    assert "dict object" not in said and "2 errors" in said
    assert not out.exists()


def test_written_emails_link_each_answer_to_the_email_it_brings(tmp_path: Path) -> None:
    # the buttons used to be sample links that led nowhere: now the coach clicks through
    sequences, templates = copy_of_the_sample(tmp_path)
    out = tmp_path / "emails"
    done = simulate_command(tmp_path, sequences, templates, "--answers", "pass,notyet,pass,-",
                            "--out", str(out))
    assert done.returncode == 0, done.stderr

    def buttons(name: str) -> list[str]:
        html = (out / name).read_text()
        return re.findall(r'href="([^"]+)"', html)

    first = buttons("01-week-1-main.html")
    assert "02-week-2-main.html" in first            # passed: what the persona did
    assert "01-if-not-yet-week-1-repeat.html" in first  # not yet: the branch, written too
    assert not [h for h in first if "/c/" in h]
    branch = (out / "01-if-not-yet-week-1-repeat.html").read_text()
    assert "Week 1 again" in branch
    # two "not yet"s on week 2 would bring the clinician email; one more pass, week 3
    assert "03-if-not-yet-week-2-see-a-clinician.html" in buttons("03-week-2-repeat.html")
    assert "04-week-3-main.html" in buttons("03-week-2-repeat.html")
    # the no-answer note's "Repeat Week 3 instead" leads to week 3's repeat
    assert "06-if-repeat-last-week-3-repeat.html" in buttons("06-week-4-main-reminder.html")
    for name in {h for p in out.glob("*.html") for h in buttons(p.name)
                 if not h.startswith("https://")}:
        assert (out / name).is_file(), name
    parsed = email.message_from_bytes((out / "01-week-1-main.eml").read_bytes(),
                                      policy=email.policy.default)
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"Passed:  {(out / '02-week-2-main.html').resolve().as_uri()}" in text

"""`drip preview`: files for one email, and the live page served by the real `drip preview --serve`
process, rendered in headless Chromium at phone and desktop widths (screenshots kept)."""

from __future__ import annotations

import html as html_lib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.support import browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the shipped sequences and templates the test may edit."""
    root = tmp_path / "coach"
    shutil.copytree(ROOT / "sequences", root / "sequences")
    shutil.copytree(ROOT / "templates", root / "templates")
    return root


def env_for(project: Path, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "DRIP_SECRET_KEY": "k", "DRIP_VAR_DIR": str(tmp_path / "var"),
            "DRIP_SEQUENCES_DIR": str(project / "sequences"),
            "DRIP_TEMPLATES_DIR": str(project / "templates"),
            "DRIP_OUTBOX_DIR": str(tmp_path / "outbox")}


@pytest.fixture
def server(project: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "drip", "preview", "--serve", "--port", str(port)],
        env=env_for(project, tmp_path), cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):  # wait until it listens (not a timing assertion)
            if process.poll() is not None:
                raise AssertionError(process.stdout.read().decode() if process.stdout else "")
            try:
                httpx.get(f"{url}/changes", timeout=1.0)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


def preview(project: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real `drip preview ARGS` on the project's files."""
    return subprocess.run([sys.executable, "-m", "drip", "preview", *args],
                          env={**env_for(project, tmp_path), "COLUMNS": "200"}, cwd=tmp_path,
                          capture_output=True, text=True)


def test_preview_writes_the_html_and_text_of_one_email(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "preview"
    done = subprocess.run(
        [sys.executable, "-m", "drip", "preview", "week-3", "--sequence", "pht-7-week",
         "--nudge", "running-assessment", "--out", str(out)],
        env=env_for(project, tmp_path), cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    html = (out / "week-3-main-running-assessment.html").read_text()
    text = (out / "week-3-main-running-assessment.txt").read_text()
    assert text.startswith("Subject: Week 3: slow eccentrics, hips still low\n")
    assert "https://www.example.com/running-assessment?utm_source=drip" in text
    assert 'href="https://www.example.com/running-assessment?utm_source=drip' in html
    assert "Hi Alexandra," in text


def test_preview_of_an_unknown_step_says_which_steps_exist(project: Path,
                                                           tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "drip", "preview", "week-9", "--sequence", "pht-7-week",
         "--out", str(tmp_path / "x")],
        env=env_for(project, tmp_path), cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 3
    assert "has no step 'week-9'" in done.stderr and "week-7" in done.stderr


def test_the_page_lists_steps_and_shows_each_email(server: str) -> None:
    page = httpx.get(f"{server}/").text
    assert page.count("href='/email/pht-7-week/week-") == 7
    email = httpx.get(f"{server}/email/pht-7-week/week-3",
                      params={"variant": "main", "nudge": "running-assessment"}).text
    assert "Week 3: slow eccentrics, hips still low" in email
    assert "<option value='running-assessment' selected>" in email
    assert "<option value='main+reminder'>" in email
    assert email.count("<iframe") == 2
    raw = httpx.get(f"{server}/raw/pht-7-week/week-3.html",
                    params={"variant": "main", "nudge": "running-assessment"})
    assert raw.status_code == 200
    assert "https://www.example.com/running-assessment?utm_source=drip" in raw.text
    # a repeat email never carries an offer: the page shows it as it is sent, whatever the
    # nudge menu said before the variant changed
    repeat = httpx.get(f"{server}/email/pht-7-week/week-3",
                       params={"variant": "repeat", "nudge": "12-week-program"}).text
    assert "Week 3 again: same lifts, less load" in repeat
    assert "<option value='repeat' selected>" in repeat
    assert "only main weekly emails carry an offer" in repeat
    raw = httpx.get(f"{server}/raw/pht-7-week/week-3.html",
                    params={"variant": "repeat", "nudge": "12-week-program"})
    assert raw.status_code == 200 and "12-week-strength" not in raw.text
    missing = httpx.get(f"{server}/email/pht-7-week/week-3", params={"variant": "encore"})
    assert "has no &#x27;encore&#x27; variant" in missing.text


def test_preview_of_a_misspelt_variant_suggests_the_right_one(project: Path,
                                                               tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "drip", "preview", "week-3", "--sequence", "pht-7-week",
         "--variant", "repaet", "--out", str(tmp_path / "x")],
        env=env_for(project, tmp_path), cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 3, done.stderr
    said = " ".join(done.stderr.split())
    assert "Step 'week-3' has no 'repaet' variant" in said
    assert "Did you mean 'repeat'?" in said and "main+reminder" in said
    assert not (tmp_path / "x").exists()


def test_the_page_notices_a_changed_template(server: str, project: Path) -> None:
    before = httpx.get(f"{server}/changes").json()["version"]
    assert httpx.get(f"{server}/changes").json()["version"] == before
    template = project / "templates" / "pht-7-week" / "week-2.md.j2"
    template.write_text(template.read_text() + "\nA line the coach just added.\n")
    assert httpx.get(f"{server}/changes").json()["version"] != before
    assert "A line the coach just added." in httpx.get(f"{server}/email/pht-7-week/week-2").text
    broken = project / "sequences" / "pht-7-week.yaml"
    broken.write_text(broken.read_text().replace("week: 2\n", "week: two\n", 1))
    assert "class='error'" in httpx.get(f"{server}/email/pht-7-week/week-2").text


def misspell_two_variables(project: Path) -> None:
    """subscriber.firstname in the sign-off every email includes (line 1), step.weeks in
    week 5 (line 3): two mistakes, in two files."""
    signoff = project / "templates" / "pht-7-week" / "_signoff.md.j2"
    signoff.write_text(signoff.read_text().replace("Happy running,",
                                                   "Happy running, {{ subscriber.firstname }}"))
    week = project / "templates" / "pht-7-week" / "week-5.md.j2"
    week.write_text(week.read_text().replace("Week {{ step.week }}!", "Week {{ step.weeks }}!"))


def test_the_page_shows_every_mistake_in_lints_words(server: str, project: Path) -> None:
    misspell_two_variables(project)
    page = httpx.get(f"{server}/email/pht-7-week/week-2").text
    assert "_signoff.md.j2:1</b>: Unknown variable: &#x27;firstname&#x27;" in page
    assert "week-5.md.j2:3</b>: Unknown variable: &#x27;weeks&#x27;" in page
    assert "dict object" not in page and page.count("<li><b>") == 2
    index = httpx.get(f"{server}/").text
    assert "_signoff.md.j2:1" not in index  # the files load: the index still lists the weeks
    assert index.count("href='/email/pht-7-week/week-") == 7


def test_the_index_names_each_week_once(server: str) -> None:
    page = httpx.get(f"{server}/").text
    assert "Week 1: settle the tendon with isometric holds</a>" in page
    assert "Week 1: Week 1" not in page and page.count("Week 5:") == 1


def test_the_page_shows_the_offer_the_step_names_by_default(server: str) -> None:
    email = httpx.get(f"{server}/email/pht-7-week/week-1").text
    assert "<option value='strength-assessment' selected>" in email
    assert "src='/raw/pht-7-week/week-1.html?variant=main&nudge=strength-assessment'" in email
    assert "strength-assessment?utm_source=drip" in html_lib.unescape(email)
    none = httpx.get(f"{server}/email/pht-7-week/week-1", params={"nudge": ""}).text
    assert "' selected>strength-assessment" not in none and "strength-assessment?utm" not in none
    assert "src='/raw/pht-7-week/week-1.html?variant=main&nudge='" in none


def test_preview_shows_the_offer_the_step_names_by_default(project: Path,
                                                           tmp_path: Path) -> None:
    out = tmp_path / "preview"
    assert preview(project, tmp_path, "week-1", "--out", str(out)).returncode == 0
    assert preview(project, tmp_path, "week-2", "--out", str(out)).returncode == 0
    assert preview(project, tmp_path, "week-3", "--no-nudge", "--out", str(out)).returncode == 0
    assert sorted(p.name for p in out.glob("*.txt")) == [
        "week-1-main-strength-assessment.txt",  # the step's own nudge
        "week-2-main.txt",                      # none: week 1's offer is still cooling down
        "week-3-main.txt"]
    text = (out / "week-1-main-strength-assessment.txt").read_text()
    assert "Find out more: https://www.example.com/strength-assessment?utm_source=drip" in text


def test_preview_refuses_an_offer_in_an_email_that_never_carries_one(project: Path,
                                                                      tmp_path: Path) -> None:
    done = preview(project, tmp_path, "week-3", "--variant", "see-a-clinician", "--nudge",
                   "12-week-program", "--out", str(tmp_path / "x"))
    assert done.returncode == 2, done.stderr
    assert "A see-a-clinician email never carries an offer" in " ".join(done.stderr.split())
    assert not (tmp_path / "x").exists()


def test_preview_reports_every_mistake_as_lint_does(project: Path, tmp_path: Path) -> None:
    misspell_two_variables(project)
    done = preview(project, tmp_path, "week-1", "--out", str(tmp_path / "x"))
    assert done.returncode == 2
    said = done.stderr
    assert "_signoff.md.j2:1: error: Unknown variable: 'firstname' is not one of the " \
           "variables a template can use." in said
    assert "week-5.md.j2:3: error: Unknown variable: 'weeks'" in said
    assert "dict object" not in said and "2 errors, 0 warnings." in said
    assert not (tmp_path / "x").exists()


def test_preview_reports_a_broken_sequence_file_at_its_line(project: Path,
                                                            tmp_path: Path) -> None:
    path = project / "sequences" / "pht-7-week.yaml"
    subject = 'subject: "Week 1: settle the tendon with isometric holds"'
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if subject in text)
    path.write_text(path.read_text().replace(subject, 'subject: "Week 1: settle the tendon'))
    done = preview(project, tmp_path, "week-1", "--out", str(tmp_path / "x"))
    assert done.returncode == 2
    said = " ".join(done.stderr.split())
    assert f"pht-7-week.yaml:{line}: error: The double quote (\") that opens the value on " \
           f"line {line} is never closed" in said
    assert "<block end>" not in said


def test_the_variant_help_lists_every_variant(project: Path, tmp_path: Path) -> None:
    said = " ".join(preview(project, tmp_path, "--help").stdout.replace("│", " ").split())
    for variant in ("main", "repeat", "waiting", "checkpoint-reminder", "graduated",
                    "see-a-clinician", "main+reminder"):
        assert variant in said, variant


def test_preview_needs_no_sequence_when_there_is_one(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "preview"
    assert preview(project, tmp_path, "week-2", "--out", str(out)).returncode == 0
    assert (out / "week-2-main.txt").exists()
    other = (project / "sequences" / "pht-7-week.yaml").read_text().replace(
        "key: pht-7-week", "key: other", 1)
    (project / "sequences" / "other.yaml").write_text(other)
    done = preview(project, tmp_path, "week-2", "--out", str(out))
    assert done.returncode == 2
    assert "Give --sequence: there are 2 sequences (other, pht-7-week)." \
        in " ".join(done.stderr.split())


def test_the_page_in_chromium_at_phone_and_desktop_widths(server: str) -> None:
    browser.require_chromium()
    url = f"{server}/email/pht-7-week/week-1?variant=main&nudge=strength-assessment"
    for name, size in (("phone", browser.PHONE), ("desktop", browser.DESKTOP)):
        shot = browser.screenshot(url, f"coach-preview-{name}", size)
        assert shot.stat().st_size > 10_000
        browser.screenshot(f"{server}/", f"coach-preview-index-{name}", size)
    dom = browser.dom(url, browser.DESKTOP)
    assert "class=\"phone\"" in dom and "class=\"desktop\"" in dom
    assert "Week 1: settle the tendon with isometric holds" in dom
    assert "Unsubscribe: https://localhost:8000/u/" in dom

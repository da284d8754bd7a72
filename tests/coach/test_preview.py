"""`drip preview`: files for one email, and the live page served by the real `drip preview --serve`
process, rendered in headless Chromium at phone and desktop widths (screenshots kept)."""

from __future__ import annotations

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


def test_preview_writes_the_html_and_text_of_one_email(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "preview"
    done = subprocess.run(
        [sys.executable, "-m", "drip", "preview", "week-3", "--sequence", "pht-7-week",
         "--variant", "repeat", "--nudge", "running-assessment", "--out", str(out)],
        env=env_for(project, tmp_path), cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    html = (out / "week-3-repeat-running-assessment.html").read_text()
    text = (out / "week-3-repeat-running-assessment.txt").read_text()
    assert text.startswith("Subject: Week 3 again: same lifts, less load\n")
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
                      params={"variant": "repeat", "nudge": "12-week-program"}).text
    assert "Week 3 again: same lifts, less load" in email
    assert "<option value='repeat' selected>" in email
    assert "<option value='12-week-program' selected>" in email
    assert "<option value='main+reminder'>" in email
    assert email.count("<iframe") == 2
    raw = httpx.get(f"{server}/raw/pht-7-week/week-3.html",
                    params={"variant": "repeat", "nudge": "12-week-program"})
    assert raw.status_code == 200
    assert "https://www.example.com/12-week-strength?utm_source=drip" in raw.text
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

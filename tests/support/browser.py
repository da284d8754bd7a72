"""Headless Chromium (Debian's `chromium` package) for page tests: screenshots and the DOM.

Drives the real browser binary with its own headless flags, so page tests need no
WebDriver bindings. Tests that need it call `require_chromium()`, which skips with a
visible reason when the binary is missing (`.ci/run` installs it). Screenshots go to
`tests/artifacts/` (kept by CI as test artifacts; ignored by git).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PHONE = (390, 844)
DESKTOP = (1280, 900)


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    binary = chromium_binary()
    if binary is None:
        pytest.skip("headless Chromium is not installed (apt-get install chromium; .ci/run does)")
    return binary


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    binary = require_chromium()
    with tempfile.TemporaryDirectory(prefix="drip-chromium-") as profile:
        command = [binary, "--headless=new", "--no-sandbox", "--disable-gpu",
                   "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars",
                   f"--user-data-dir={profile}", *args]
        return subprocess.run(command, capture_output=True, timeout=timeout, check=True)


def screenshot(url: str, name: str, size: tuple[int, int] = PHONE,
               timeout: float = 60.0) -> Path:
    """Render `url` at `size` (width, height) and save `tests/artifacts/<name>.png`."""
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / f"{name}.png"
    target.unlink(missing_ok=True)
    width, height = size
    _run([f"--window-size={width},{height}", f"--screenshot={target}", url], timeout)
    assert target.exists() and target.stat().st_size > 1000, f"no screenshot of {url}"
    return target


def dom(url: str, size: tuple[int, int] = PHONE, timeout: float = 60.0) -> str:
    """The DOM of `url` after Chromium loaded and laid it out, as HTML."""
    width, height = size
    return _run([f"--window-size={width},{height}", "--dump-dom", url],
                timeout).stdout.decode("utf-8", "replace")

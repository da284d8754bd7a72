"""Headless Chromium under WebDriver, for page tests that need script to run.

`tests/support/browser.py` drives the chromium binary alone (a screenshot, the DOM).
This module drives it through Debian's `chromedriver` with Selenium, for what needs a
live page: measuring layout (scroll width, button boxes), starting the browser in a given
timezone, and running axe-core inside the page. Tests call `chrome(...)`, which skips with
a visible reason when chromium or chromedriver is missing (`.ci/run` installs both) and
`axe_violations(driver)`, which skips when npm cannot fetch axe-core.

Selenium is the W3C WebDriver client the browsers' own projects maintain; a dev-only
dependency.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
AXE_VERSION = "4.10.2"
AXE_HOME = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "drip-tests" / "axe"
BLOCKING_IMPACTS = ("serious", "critical")


def _binaries() -> tuple[str, str]:
    chromium = next((found for name in ("chromium", "chromium-browser", "google-chrome")
                     if (found := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("headless Chromium and chromedriver are not installed "
                    "(apt-get install chromium chromium-driver; .ci/run does)")
    return chromium, driver


@contextmanager
def chrome(width: int = 390, height: int = 844, *, timezone: str | None = None,
           javascript: bool = True) -> Iterator[Any]:
    """A headless Chromium session at `width` x `height` CSS pixels, in `timezone`.

    The zone is set twice: `TZ` for the browser process (what a runner's machine would
    have) and the DevTools timezone override, so `Intl` and `Date` agree with it.
    With `javascript=False` the page's scripts never run (the form must still work).
    """
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:  # pragma: no cover - dev dependency
        pytest.skip("selenium is not installed (pip install -e '.[dev]')")
    chromium, driver_path = _binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars",
                     "--force-device-scale-factor=1", f"--window-size={width},{height}"):
        options.add_argument(argument)
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2})
    env = dict(os.environ)
    if timezone:
        env["TZ"] = timezone
    service = Service(executable_path=driver_path, env=env)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        resize(driver, width, height)
        if timezone:
            driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": timezone})
        yield driver
    finally:
        driver.quit()


def resize(driver: Any, width: int, height: int = 844) -> None:
    """Make the page's viewport exactly `width` CSS pixels wide (media queries see it)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})


def page_metrics(driver: Any) -> dict[str, int]:
    """The viewport's width and the document's scroll width (wider means side-scrolling)."""
    result: dict[str, int] = driver.execute_script(
        "return {viewport: window.innerWidth,"
        " scroll: Math.max(document.documentElement.scrollWidth,"
        "                  document.body ? document.body.scrollWidth : 0)};")
    return result


def boxes(driver: Any, selector: str) -> list[dict[str, float]]:
    """The layout boxes (x, y, width, height) of every element matching `selector`."""
    result: list[dict[str, float]] = driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => {"
        " const r = e.getBoundingClientRect();"
        " return {x: r.x, y: r.y, width: r.width, height: r.height}; });", selector)
    return result


def save_png(driver: Any, path: Path, *, full_page: bool = True) -> Path:
    """Save a screenshot of the page (the whole page by default) as `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if full_page:
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        path.write_bytes(base64.b64decode(shot["data"]))
    else:
        driver.save_screenshot(str(path))
    assert path.stat().st_size > 1000, f"empty screenshot {path}"
    return path


def artifact(name: str) -> Path:
    """Where a test's screenshot goes (`tests/artifacts/`, ignored by git)."""
    return ARTIFACTS / f"{name}.png"


def axe_source() -> str:
    """axe-core's browser bundle, fetched once with npm into the user's cache."""
    bundle = AXE_HOME / "node_modules" / "axe-core" / "axe.min.js"
    if not bundle.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed, so axe-core cannot be fetched (apt-get install npm)")
        AXE_HOME.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(AXE_HOME),
             f"axe-core@{AXE_VERSION}"], capture_output=True, timeout=300, check=False)
        if done.returncode != 0 or not bundle.exists():
            pytest.skip("npm could not install axe-core: "
                        + done.stderr.decode("utf-8", "replace")[-300:])
    return bundle.read_text(encoding="utf-8")


def axe_violations(driver: Any, impacts: tuple[str, ...] = BLOCKING_IMPACTS
                   ) -> list[dict[str, Any]]:
    """axe-core's violations on the loaded page at the given impacts, in a readable form."""
    driver.execute_script(axe_source())
    driver.set_script_timeout(60)
    found: Any = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        "  .then(r => done(r.violations)).catch(e => done({error: String(e)}));")
    if isinstance(found, dict):
        raise AssertionError(f"axe-core failed: {found.get('error')}")
    return [{"id": item["id"], "impact": item["impact"], "help": item["help"],
             "nodes": [node["target"] for node in item["nodes"]][:5]}
            for item in found if item.get("impact") in impacts]


def describe(violations: list[dict[str, Any]]) -> str:
    """Violations as lines a reader can act on (for assertion messages)."""
    return "\n".join(json.dumps(item) for item in violations)

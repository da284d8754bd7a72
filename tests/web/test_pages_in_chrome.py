"""The subscriber's pages in headless Chromium (tests/support/chrome.py) over a real server:
the sign-up form fills the browser's timezone (Chromium started in three zones) and still
works without script; every page passes axe-core (no serious or critical violations),
fits a 390 px phone, and has tap targets of at least 44 px. Screenshots at 390 and 1200 px
go to tests/artifacts/, and to docs/screenshots/ with DRIP_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drip.runtime import Drip
from drip.subscriptions import enroll
from tests.support import browser
from tests.support.chrome import (
    artifact,
    axe_violations,
    boxes,
    chrome,
    describe,
    page_metrics,
    resize,
    save_png,
)
from tests.web.test_optin import confirm_path, outbox

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ZONES = ("America/Los_Angeles", "Europe/London", "Australia/Sydney")


@pytest.fixture
def by_id() -> Any:
    from selenium.webdriver.common.by import By

    return lambda driver, name: driver.find_element(By.ID, name)


def optin_requests(drip: Drip) -> int:
    from sqlalchemy import func, select

    from drip.models import Event

    with drip.store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Event)
                                .where(Event.kind == "optin_requested")).scalar_one())


def test_the_form_fills_the_browsers_zone(web_drip: Drip, live_url: str, by_id: Any) -> None:
    for zone in ZONES:
        with chrome(timezone=zone) as driver:
            driver.get(f"{live_url}/subscribe")
            select = by_id(driver, "timezone")
            assert select.get_attribute("value") == zone
            assert driver.execute_script(
                "return document.querySelector('#timezone option[selected]').value") == zone
            assert by_id(driver, "timezone-found").is_displayed()
    assert optin_requests(web_drip) == 0  # looking at the form saved nothing


def test_dump_dom_under_tz_shows_the_zone_selected(live_url: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    dom = browser.dom(f"{live_url}/subscribe")
    assert '<option value="America/Los_Angeles" selected="">' in dom


def test_without_script_a_blank_zone_gets_the_form_back(web_drip: Drip, live_url: str,
                                                        by_id: Any) -> None:
    with chrome(javascript=False, timezone="Europe/London") as driver:
        driver.get(f"{live_url}/subscribe")
        assert by_id(driver, "timezone").get_attribute("value") == ""
        assert not by_id(driver, "timezone-found").is_displayed()
        by_id(driver, "email").send_keys("ana@example.com")
        by_id(driver, "name").send_keys("Ana")
        by_id(driver, "email").submit()
        wait_for(driver, "subscribe-refused-no-script", "timezone is missing")
        error = by_id(driver, "timezone-error")
        assert "timezone is missing" in error.text
        # beside its field: right above the select, tied to it for screen readers
        assert driver.execute_script(
            "return document.getElementById('timezone-error').nextElementSibling.id"
        ) == "timezone"
        assert "timezone-error" in by_id(driver, "timezone").get_attribute("aria-describedby")
        assert by_id(driver, "email").get_attribute("value") == "ana@example.com"
        assert by_id(driver, "name").get_attribute("value") == "Ana"
        assert by_id(driver, "timezone").get_attribute("value") == ""  # nothing guessed
    assert optin_requests(web_drip) == 0 and outbox(web_drip) == []


# --- every page: axe-core, layout, screenshots ---------------------------------------------


@pytest.fixture
def tour(web_drip: Drip, live_url: str) -> Iterator[dict[str, str]]:
    """A runner part-way in (week 1 sent), so every page has something real to show."""
    joined = enroll(web_drip.store, web_drip.library, email="hana@example.com",
                    sequence_key="pht-7-week", now=web_drip.clock.now(), name="Hana",
                    timezone="Europe/London")
    web_drip.dispatcher().run_once()
    (week_one,) = [r for r in web_drip.store.deliveries(email="hana@example.com")
                   if (r.step_key, r.variant) == ("week-1", "main")]
    base = web_drip.settings.base_url
    yield {
        "checkpoint": live_url + web_drip.links.checkpoint(
            week_one.id, "passed").removeprefix(base),
        "pause": live_url + web_drip.links.pause(
            joined.enrollment_id, week_one.id).removeprefix(base),
        "unsubscribe": live_url + web_drip.links.unsubscribe(
            joined.subscriber_id, joined.enrollment_id).removeprefix(base),
    }


def wait_for(driver: Any, name: str, must_say: str) -> None:
    """Until the page says `must_say` (the page a click opens may still be loading)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20, ignored_exceptions=(
        StaleElementReferenceException, NoSuchElementException)).until(
        lambda d: must_say in d.find_element("tag name", "main").text,
        message=f"{name}: never said {must_say!r}")


def look(driver: Any, name: str, must_say: str) -> None:
    """The page, once it says `must_say`: passes axe, fits, taps, photographed."""
    wait_for(driver, name, must_say)
    violations = axe_violations(driver)
    assert violations == [], f"{name}:\n{describe(violations)}"
    for width in (390, 1200):
        resize(driver, width)
        metrics = page_metrics(driver)
        assert metrics["scroll"] <= metrics["viewport"], (name, width, metrics)
        for box in boxes(driver, "button, select, input:not([type=hidden])"):
            assert box["height"] >= 44, (name, width, box)
        shot = save_png(driver, artifact(f"page-{name}-{width}"))
        if os.environ.get("DRIP_UPDATE_SCREENSHOTS") == "1":
            DOCS.mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, DOCS / f"{name}-{width}.png")
    resize(driver, 390)


def test_every_page_passes_axe_fits_and_is_photographed(web_drip: Drip, live_url: str,
                                                        tour: dict[str, str],
                                                        by_id: Any) -> None:
    from selenium.webdriver.common.by import By

    def press(text: str) -> None:
        (button,) = [b for b in driver.find_elements(By.TAG_NAME, "button") if b.text == text]
        button.click()

    with chrome(timezone="Europe/London") as driver:
        driver.get(f"{live_url}/subscribe")
        look(driver, "subscribe", "7 weekly emails")
        by_id(driver, "email").send_keys("not-an-address@")
        driver.execute_script("document.getElementById('timezone').value = '';")
        driver.execute_script("document.getElementById('email').type = 'text';")
        by_id(driver, "email").submit()
        look(driver, "subscribe-refused", "timezone is missing")
        email_box = by_id(driver, "email")
        email_box.clear()
        email_box.send_keys("ivy@example.com")
        assert by_id(driver, "timezone").get_attribute("value") == ""  # a refusal kept it blank
        driver.execute_script("document.getElementById('timezone').value = 'Europe/London';")
        email_box.submit()
        look(driver, "check-inbox", "We sent a link to ivy@example.com")
        headings = driver.find_elements(By.TAG_NAME, "h1")
        assert len(headings) == 1
        assert headings[0].text.lower() not in driver.find_element(By.TAG_NAME, "main").text.lower(
        ).replace(headings[0].text.lower(), "", 1), "the heading is said twice"

        (eml,) = [f for f in outbox(web_drip) if "confirm" in f.name]
        driver.get(live_url + confirm_path(web_drip, eml))
        look(driver, "confirm", "Confirm ivy@example.com")
        press("Yes, send it to me")
        look(driver, "confirmed", "You are in")

        driver.get(tour["checkpoint"])
        look(driver, "checkpoint-not-saved", "Your answer is not saved yet")
        press("Save my answer: Passed")
        look(driver, "checkpoint-saved", "Week 2 arrives")
        assert re.search(r"Week 2 arrives \w+day \d+ \w+ at 06:30",
                         driver.find_element(By.TAG_NAME, "main").text)

        driver.get(tour["pause"])
        look(driver, "pause", "Not paused yet")
        press("Pause one week")
        look(driver, "paused", "Paused for a week")
        driver.get(tour["pause"])
        look(driver, "already-paused", "This email is already paused")

        driver.get(tour["unsubscribe"])
        look(driver, "unsubscribe", "Stop this program only")
        press("Stop this program only")
        look(driver, "left-program", "You left")
        driver.get(tour["unsubscribe"])
        press("Stop everything")
        look(driver, "unsubscribed", "You are unsubscribed")

        driver.get(tour["checkpoint"])
        look(driver, "checkpoint-after-unsubscribe", "You have unsubscribed")
        driver.get(f"{live_url}/c/not-a-real-link")
        look(driver, "error-404", "This link is not valid")

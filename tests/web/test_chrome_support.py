"""The WebDriver helper itself: the browser's zone is the one asked for, the viewport is
the width asked for, scripts can be turned off, and axe-core finds a real violation."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.support.chrome import axe_violations, chrome, page_metrics

PAGE = ("<!doctype html><html lang=en><head><meta name=viewport "
        "content='width=device-width'><title>t</title></head><body>"
        "<p id=zone>no script</p><img src='data:,'>"
        "<script>document.getElementById('zone').textContent ="
        " Intl.DateTimeFormat().resolvedOptions().timeZone;</script></body></html>")


def data_url(html: str) -> str:
    return "data:text/html;charset=utf-8," + quote(html)


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Australia/Sydney"])
def test_the_browser_runs_in_the_zone_asked_for(zone: str) -> None:
    with chrome(390, timezone=zone) as driver:
        driver.get(data_url(PAGE))
        assert driver.find_element("id", "zone").text == zone
        assert page_metrics(driver)["viewport"] == 390


def test_without_javascript_the_page_script_never_runs() -> None:
    with chrome(1200, javascript=False) as driver:
        driver.get(data_url(PAGE))
        assert driver.find_element("id", "zone").text == "no script"
        assert page_metrics(driver)["viewport"] == 1200


def test_axe_reports_an_image_without_alt_text() -> None:
    with chrome(1200) as driver:
        driver.get(data_url(PAGE))
        found = axe_violations(driver, impacts=("minor", "moderate", "serious", "critical"))
        assert "image-alt" in {item["id"] for item in found}

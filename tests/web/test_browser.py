"""The unsubscribe and checkpoint pages in headless Chromium at phone width (screenshots kept
in tests/artifacts): they render, fit the screen, and show their buttons without JavaScript."""

from __future__ import annotations

import pytest

from drip.runtime import Drip
from drip.subscriptions import enroll
from tests.support import browser


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_unsubscribe_and_checkpoint_pages_on_a_phone(web_drip: Drip, live_url: str) -> None:
    browser.require_chromium()
    joined = enroll(web_drip.store, web_drip.library, email="hana@example.com",
                    sequence_key="pht-7-week", now=web_drip.clock.now(), name="Hana",
                    timezone="UTC")
    web_drip.dispatcher().run_once()
    (delivery,) = [r for r in web_drip.store.deliveries()
                   if (r.step_key, r.variant) == ("week-1", "main")]
    unsubscribe = live_url + web_drip.links.unsubscribe(
        joined.subscriber_id, joined.enrollment_id).removeprefix(web_drip.settings.base_url)
    checkpoint = live_url + web_drip.links.checkpoint(
        delivery.id, "passed").removeprefix(web_drip.settings.base_url)

    for name, url, expected in (
            ("unsubscribe-phone", unsubscribe, ["hana@example.com", "Stop everything",
                                                "Stop only the offers"]),
            ("checkpoint-phone", checkpoint, ["Week 1 checkpoint", "Passed", "Not yet"])):
        shot = browser.screenshot(url, name, browser.PHONE)
        assert shot.stat().st_size > 5_000
        dom = browser.dom(url, browser.PHONE)
        for text in expected:
            assert text in dom, (name, text)
        assert "Dayna" in dom and "<script" not in dom
    # loading the pages in a browser changed nothing
    assert web_drip.store.subscriber_by_id(joined.subscriber_id).state == "active"
    assert web_drip.store.answered_delivery(delivery.id).answer is None

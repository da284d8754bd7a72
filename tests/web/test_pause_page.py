"""The pause-a-week link: one press pauses once, a second press moves nothing and says so
with the new date, "resume now" undoes it; GET and HEAD change nothing (SQLite and
PostgreSQL)."""

from __future__ import annotations

import re
from datetime import timedelta

from starlette.testclient import TestClient

from drip.addresses import zone
from drip.clock import FixedClock
from drip.runtime import Drip
from drip.subscriptions import enroll
from drip.web.words import local_when

ZONE = "America/Los_Angeles"


def started(drip: Drip, email: str = "ana@example.com") -> tuple[int, str]:
    """Enrolled in Los Angeles, week 1 sent: (enrollment id, the pause link in week 1)."""
    outcome = enroll(drip.store, drip.library, email=email, sequence_key="pht-7-week",
                     now=drip.clock.now(), name="Ana", timezone=ZONE, source="manual")
    drip.dispatcher().run_once()
    (week_one,) = [r for r in drip.store.deliveries(email=email)
                   if (r.step_key, r.variant, r.state) == ("week-1", "main", "sent")]
    url = drip.links.pause(outcome.enrollment_id, week_one.id)
    return outcome.enrollment_id, url.removeprefix(drip.settings.base_url)


def pending_due(drip: Drip) -> list[tuple[str, str, object]]:
    return [(r.step_key, r.variant, r.due_at) for r in drip.store.deliveries()
            if r.state == "scheduled"]


def text(page: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())


def week_two_at(drip: Drip) -> str:
    """When week 2 is planned now, as the page should say it (it follows the reminder)."""
    (reminder,) = [r for r in drip.store.deliveries() if r.state == "scheduled"]
    local = reminder.due_at.astimezone(zone(ZONE)) + timedelta(days=2)  # same wall clock
    return local_when(local, ZONE)


def test_a_second_press_moves_nothing_and_shows_the_new_date(web_drip: Drip,
                                                             client: TestClient) -> None:
    _, url = started(web_drip)
    before = pending_due(web_drip)
    planned = week_two_at(web_drip)
    for _ in range(2):  # a mail scanner: GET and HEAD
        look = client.get(url)
        assert client.head(url).status_code == 200
    assert look.status_code == 200 and pending_due(web_drip) == before
    shown = text(look.text)
    assert "Not paused yet" in shown and "Pause one week" in shown
    assert f"Week 2 is planned for {planned} (your time, {ZONE})" in shown

    first = client.post(url, data={"action": "pause"})
    assert first.status_code == 200
    ((step, variant, due),) = pending_due(web_drip)
    assert due.date() == (before[0][2] + timedelta(days=7)).date()
    moved = week_two_at(web_drip)
    assert moved != planned
    assert "Paused for a week" in text(first.text)
    assert f"now arrives {moved} (your time, {ZONE})" in text(first.text)
    assert "Resume now" in first.text

    for _ in range(2):  # the same link again: one week later, never two
        again = client.post(url)
        assert again.status_code == 200
        assert pending_due(web_drip) == [(step, variant, due)]
        shown = text(again.text)
        assert "This email is already paused" in shown and f"now arrives {moved}" in shown
    assert "This email is already paused" in text(client.get(url).text)
    assert pending_due(web_drip) == [(step, variant, due)]


def test_resume_now_puts_the_plan_back_once(web_drip: Drip, client: TestClient) -> None:
    _, url = started(web_drip)
    before = pending_due(web_drip)
    planned = week_two_at(web_drip)
    client.post(url, data={"action": "pause"})
    back = client.post(url, data={"action": "resume"})
    assert back.status_code == 200 and pending_due(web_drip) == before
    shown = text(back.text)
    assert "Back on plan" in shown and f"arrives {planned}" in shown
    assert "Resume now" not in shown and "Pause one week" not in shown
    for action in ("resume", "pause"):  # neither acts again for this email
        assert client.post(url, data={"action": action}).status_code == 200
        assert pending_due(web_drip) == before
    assert client.post(url, data={"action": "later"}).status_code == 400


def test_resume_before_any_pause_is_refused_and_moves_nothing(web_drip: Drip,
                                                              client: TestClient) -> None:
    _, url = started(web_drip)
    before = pending_due(web_drip)
    answer = client.post(url, data={"action": "resume"})
    assert answer.status_code == 409 and pending_due(web_drip) == before
    assert "Pause one week" in answer.text


def test_the_link_after_unsubscribing_says_so(web_drip: Drip, client: TestClient,
                                              clock: FixedClock) -> None:
    _, url = started(web_drip)
    web_drip.store.set_unsubscribed(web_drip.store.subscriber_id("ana@example.com"),
                                    clock.now(), "test")
    for answer in (client.get(url), client.post(url)):
        assert "You have unsubscribed" in answer.text
        assert "Pause one week" not in answer.text
    assert client.post(url).status_code == 409


def test_a_pause_keeps_the_runners_own_send_time(web_drip: Drip, client: TestClient,
                                                 clock: FixedClock) -> None:
    from drip import preferences

    _, url = started(web_drip)
    subscriber = web_drip.store.subscriber_id("ana@example.com")
    preferences.save(web_drip.store, web_drip.library, subscriber, send_time="18:00",
                     weekday="", now=clock.now())
    ((_, _, chosen),) = pending_due(web_drip)
    assert f"{chosen.astimezone(zone(ZONE)):%H:%M}" == "18:00"  # type: ignore[attr-defined]
    client.post(url, data={"action": "pause"})
    ((_, _, paused),) = pending_due(web_drip)
    local = paused.astimezone(zone(ZONE))  # type: ignore[attr-defined]
    assert f"{local:%H:%M}" == "18:00"
    assert local.date() == (chosen.astimezone(zone(ZONE))  # type: ignore[attr-defined]
                            + timedelta(days=7)).date()
    client.post(url, data={"action": "resume"})
    assert pending_due(web_drip)[0][2] == chosen

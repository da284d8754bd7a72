"""The checkpoint page: the emailed answer is not saved until one POST, the saved page names
the next email's local date and until when the answer can change, and answering after
unsubscribing says so and records nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from drip.clock import FixedClock
from drip.runtime import Drip
from drip.subscriptions import enroll
from drip.web.words import local_when

ZONE = "America/Los_Angeles"


def week_one(drip: Drip, email: str = "ana@example.com") -> tuple[int, str]:
    """Enrolled in Los Angeles, week 1 sent: (its delivery id, its 'Passed' button's URL)."""
    enroll(drip.store, drip.library, email=email, sequence_key="pht-7-week",
           now=drip.clock.now(), name="Ana", timezone=ZONE, source="manual")
    drip.dispatcher().run_once()
    (row,) = [r for r in drip.store.deliveries(email=email)
              if (r.step_key, r.variant, r.state) == ("week-1", "main", "sent")]
    return row.id, drip.links.checkpoint(row.id, "passed").removeprefix(drip.settings.base_url)


def text(page: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())


def planned(drip: Drip) -> tuple[str, str, str]:
    (row,) = [r for r in drip.store.deliveries() if r.state == "scheduled"]
    return row.step_key, row.variant, local_when(row.due_at, ZONE)


def test_the_button_page_saves_nothing_and_one_post_answers_with_the_local_date(
        web_drip: Drip, client: TestClient) -> None:
    delivery, url = week_one(web_drip)
    before = planned(web_drip)
    for _ in range(2):  # mail scanners follow the button's link
        page = client.get(url)
        assert client.head(url).status_code == 200
    shown = text(page.text)
    assert "Not saved yet" in shown and "Your answer is not saved yet" in shown
    assert "Save my answer: Passed" in shown
    assert web_drip.store.answered_delivery(delivery).answer is None
    assert planned(web_drip) == before

    saved = client.post(url, data={"answer": "passed"})
    assert saved.status_code == 200
    assert web_drip.store.answered_delivery(delivery).answer == "passed"
    step, variant, when = planned(web_drip)  # the reminder became week 2 at its slot
    assert step == "week-2" and variant.startswith("main")
    shown = text(saved.text)
    assert "Saved: Passed" in shown
    assert f"Week 2 arrives {when} (your time, {ZONE})." in shown
    assert re.search(r"Week 2 arrives \w+day \d+ \w+ at 06:30", shown), shown
    assert f"You can change your answer until {when}." in shown
    assert "Change to: Not yet" in shown


def test_not_yet_names_the_repeat_and_can_be_changed_back(web_drip: Drip,
                                                          client: TestClient) -> None:
    delivery, url = week_one(web_drip)
    shown = text(client.post(url, data={"answer": "not-yet"}).text)
    when = planned(web_drip)[2]
    assert f"Week 1 again arrives {when}" in shown and "3/10 or less" in shown
    again = text(client.post(url, data={"answer": "passed"}).text)
    assert f"Week 2 arrives {when}" in again
    assert web_drip.store.answered_delivery(delivery).answer == "passed"


def test_answering_after_unsubscribing_says_so_and_records_nothing(
        web_drip: Drip, client: TestClient, clock: FixedClock) -> None:
    delivery, url = week_one(web_drip)
    web_drip.store.set_unsubscribed(web_drip.store.subscriber_id("ana@example.com"),
                                    clock.now(), "test")
    for answer in (client.post(url, data={"answer": "passed"}), client.get(url)):
        shown = text(answer.text)
        assert "You have unsubscribed" in shown
        assert "Save my answer" not in shown and "Saved:" not in shown
    assert client.post(url, data={"answer": "not-yet"}).status_code == 409
    assert web_drip.store.answered_delivery(delivery).answer is None


def test_answering_after_leaving_the_program_says_so_and_records_nothing(
        web_drip: Drip, client: TestClient, clock: FixedClock) -> None:
    from drip import lifecycle

    delivery, url = week_one(web_drip)
    row = web_drip.store.answered_delivery(delivery)
    lifecycle.unsubscribe(web_drip.store, row.subscriber_id, clock.now(), source="test",
                          scope="program", enrollment_id=row.enrollment_id)
    answer = client.post(url, data={"answer": "passed"})
    assert answer.status_code == 409 and "You left this program" in text(answer.text)
    assert web_drip.store.answered_delivery(delivery).answer is None
    assert web_drip.store.subscriber_by_id(row.subscriber_id).state == "active"


def test_answering_after_the_program_ended_says_so_and_records_nothing(
        web_drip: Drip, client: TestClient) -> None:
    from sqlalchemy import update

    from drip.models import Enrollment

    delivery, url = week_one(web_drip)
    with web_drip.store.engine.begin() as conn:  # as the last email's dispatch leaves it
        conn.execute(update(Enrollment).values(state="completed"))
    answer = client.post(url, data={"answer": "passed"})
    assert answer.status_code == 409
    assert "This program has ended for you" in text(answer.text)
    assert web_drip.store.answered_delivery(delivery).answer is None


def test_the_button_of_the_saved_answer_shows_it_saved(web_drip: Drip,
                                                       client: TestClient) -> None:
    _, url = week_one(web_drip)
    client.post(url, data={"answer": "passed"})
    again = text(client.get(url).text)  # the same button in the email, tapped again
    assert "Saved: Passed" in again and "not saved yet" not in again
    assert "Week 2 arrives" in again

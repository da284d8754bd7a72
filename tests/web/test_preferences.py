"""The "when do you want these?" page over real HTTP on loopback (uvicorn), on both
databases: the link in every email opens it, GET changes nothing, a bad time or day comes
back beside its field with nothing changed, and a saved choice moves the next email into
the new slot, which the page states in the runner's own zone."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx

from drip import checkpoints
from drip.clock import FixedClock
from drip.planner import PASSED
from drip.runtime import Drip
from drip.subscriptions import enroll

BERLIN = ZoneInfo("Europe/Berlin")
JOINED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday 10:00 in Berlin
RUNNER = "ana@example.com"


def week_one(drip: Drip, clock: FixedClock) -> tuple[int, str]:
    """Ana joins in Berlin, gets week 1 and passes it; her subscriber id and the
    preferences link from the email's text part."""
    clock.at = JOINED
    joined = enroll(drip.store, drip.library, email=RUNNER, sequence_key="pht-7-week",
                    now=clock.now(), name="Ana", timezone="Europe/Berlin", source="manual")
    drip.dispatcher().run_once()
    (sent,) = [r for r in drip.store.deliveries(email=RUNNER) if r.state == "sent"]
    checkpoints.answer(drip.store, drip.library, sent.id, PASSED, clock.now())
    (path,) = drip.settings.outbox_dir.glob("*.eml")
    mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    text = "\n".join(str(p.get_content()) for p in mail.walk()
                     if p.get_content_type() == "text/plain")
    html = "\n".join(str(p.get_content()) for p in mail.walk()
                     if p.get_content_type() == "text/html")
    match = re.search(r"When do you want these\? (\S+)", text)
    assert match is not None, text
    assert f'href="{match.group(1)}"' in html and "When do you want these?</a>" in html
    return joined.subscriber_id, match.group(1)


def pending(drip: Drip) -> tuple[str, str, datetime]:
    (row,) = [r for r in drip.store.deliveries(email=RUNNER) if r.state == "scheduled"]
    return row.step_key, row.variant, row.due_at


def test_get_shows_the_form_and_changes_nothing(web_drip: Drip, clock: FixedClock,
                                               live_url: str) -> None:
    subscriber_id, link = week_one(web_drip, clock)
    before = pending(web_drip)
    url = link.replace("https://drip.test", live_url)
    for _ in range(3):  # mail scanners follow links, more than once
        page = httpx.get(url)
        assert page.status_code == 200, page.text
        assert "When do you want these?" in page.text
        assert '<select id="send_time" name="send_time"' in page.text
        assert '<option value="wednesday">Wednesday</option>' in page.text
        assert "The program's time (06:30)" in page.text
        assert "Europe/Berlin" in page.text and "<script" not in page.text
        assert httpx.head(url).status_code == 200
    assert pending(web_drip) == before
    assert web_drip.store.send_preference(subscriber_id).preference.empty
    forged = httpx.get(url[:-3] + "abc")
    assert forged.status_code == 404 and "Traceback" not in forged.text
    other = web_drip.links.pause(1).replace("https://drip.test", live_url)
    assert httpx.get(live_url + "/w/" + other.rsplit("/", 1)[1]).status_code == 404


def test_a_bad_time_or_day_comes_back_beside_its_field(web_drip: Drip, clock: FixedClock,
                                                       live_url: str) -> None:
    subscriber_id, link = week_one(web_drip, clock)
    before = pending(web_drip)
    url = link.replace("https://drip.test", live_url)
    cases = [
        ({"send_time": "22:30", "weekday": ""}, "send_time",
         "Choose a time from the list: your program sends only between 06:00 and 21:00."),
        ({"send_time": "25:99", "weekday": ""}, "send_time", "Choose a time from the list"),
        ({"send_time": "07:00", "weekday": "funday"}, "weekday", "Choose a day from the list"),
        ({"send_time": "<b>7</b>", "weekday": "monday"}, "send_time", "Choose a time"),
    ]
    for form, field, message in cases:
        page = httpx.post(url, data=form)
        assert page.status_code == 400, page.text
        assert f'id="{field}-problem" role="alert">{message}' in page.text, page.text
        assert f'aria-describedby="{field}-problem"' in page.text
        assert "<b>7</b>" not in page.text  # what was typed is escaped, never markup
        assert "Saved" not in page.text
    assert pending(web_drip) == before
    assert web_drip.store.send_preference(subscriber_id).preference.empty
    # not a form at all: still a page that says what to do, never a 500
    junk = httpx.post(url, content=b"\xff\xfe", headers={"Content-Type": "multipart/form-data"})
    assert junk.status_code in (400, 200) and "Traceback" not in junk.text
    assert pending(web_drip) == before


def test_saving_moves_the_next_email_into_the_new_slot(web_drip: Drip, clock: FixedClock,
                                                       live_url: str) -> None:
    subscriber_id, link = week_one(web_drip, clock)
    step, _, due = pending(web_drip)
    assert step == "week-2" and due.astimezone(BERLIN) == datetime(2026, 3, 9, 6, 30,
                                                                    tzinfo=BERLIN)
    page = httpx.post(link.replace("https://drip.test", live_url),
                      data={"send_time": "07:15", "weekday": "wednesday"})
    assert page.status_code == 200, page.text
    assert "Saved" in page.text
    assert ("Your next email, Week 2, will now arrive <strong>Wednesday 11 March at "
            "07:15</strong> (your time, Europe/Berlin).") in page.text
    step, _, due = pending(web_drip)
    assert step == "week-2"
    assert due.astimezone(BERLIN) == datetime(2026, 3, 11, 7, 15, tzinfo=BERLIN)
    preference = web_drip.store.send_preference(subscriber_id).preference
    assert (preference.send_time, preference.weekday) == (time(7, 15), "wednesday")
    # the choice holds for the emails after it too: week 2 goes, then its reminder and
    # week 3 come at 07:15 Berlin time, week 3 on a Wednesday
    clock.at = due + timedelta(minutes=1)
    web_drip.dispatcher().run_once()
    _, variant, reminder_due = pending(web_drip)
    assert variant == "checkpoint-reminder"
    assert reminder_due.astimezone(BERLIN).time() == time(7, 15)
    week_two = [r for r in web_drip.store.deliveries(email=RUNNER) if r.state == "sent"][-1]
    checkpoints.answer(web_drip.store, web_drip.library, week_two.id, PASSED, clock.now())
    step, _, week_three = pending(web_drip)
    assert step == "week-3"
    assert week_three.astimezone(BERLIN) == datetime(2026, 3, 18, 7, 15, tzinfo=BERLIN)
    # and the page shows the choice, selected
    again = httpx.get(link.replace("https://drip.test", live_url))
    assert '<option value="07:15" selected>07:15</option>' in again.text
    assert '<option value="wednesday" selected>Wednesday</option>' in again.text
    assert "Wednesday 18 March at 07:15" in again.text

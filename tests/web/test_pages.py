"""Unsubscribe, pause-a-week and checkpoint pages: GET shows, only POST changes anything."""

from __future__ import annotations

from datetime import timedelta

from starlette.testclient import TestClient

from drip.clock import FixedClock
from drip.runtime import Drip
from drip.subscriptions import enroll


def join(drip: Drip, email: str = "ana@example.com") -> tuple[int, int]:
    outcome = enroll(drip.store, drip.library, email=email, sequence_key="pht-7-week",
                     now=drip.clock.now(), name="Ana", timezone="UTC", source="manual")
    return outcome.subscriber_id, outcome.enrollment_id


def week_one(drip: Drip, email: str = "ana@example.com") -> int:
    report = drip.dispatcher().run_once()
    assert [s.step_key for s in report.sent] == ["week-1"]
    (row,) = [r for r in drip.store.deliveries(email=email)
              if (r.step_key, r.variant) == ("week-1", "main")]
    return row.id


def unsubscribe_url(drip: Drip, subscriber_id: int, enrollment_id: int) -> str:
    return drip.links.unsubscribe(subscriber_id, enrollment_id).removeprefix("https://drip.test")


def pending_states(drip: Drip) -> list[str]:
    return [r.state for r in drip.store.deliveries() if r.state in ("scheduled", "cancelled")]


def test_unsubscribe_get_shows_who_and_changes_nothing(web_drip: Drip,
                                                       client: TestClient) -> None:
    subscriber, enrollment = join(web_drip)
    for _ in range(3):  # a mail scanner following the link, several times
        page = client.get(unsubscribe_url(web_drip, subscriber, enrollment))
        assert page.status_code == 200
        assert "ana@example.com" in page.text and "Dayna" in page.text
        assert "Stop everything" in page.text and "Stop only the offers" in page.text
        assert "<script" not in page.text
    assert web_drip.store.subscriber_by_id(subscriber).state == "active"
    assert pending_states(web_drip) == ["scheduled"]


def test_one_click_post_unsubscribes_at_once_and_cancels_due_email(web_drip: Drip,
                                                                   client: TestClient) -> None:
    subscriber, enrollment = join(web_drip)
    answer = client.post(unsubscribe_url(web_drip, subscriber, enrollment),
                         content=b"List-Unsubscribe=One-Click",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 200 and answer.content == b""
    assert web_drip.store.subscriber_by_id(subscriber).state == "unsubscribed"
    assert pending_states(web_drip) == ["cancelled"]
    assert web_drip.dispatcher().run_once().sent == []


def test_one_click_as_multipart_is_accepted(web_drip: Drip, client: TestClient) -> None:
    subscriber, enrollment = join(web_drip)
    answer = client.post(unsubscribe_url(web_drip, subscriber, enrollment),
                         files={"List-Unsubscribe": (None, "One-Click")})
    assert answer.status_code == 200 and answer.content == b""
    assert web_drip.store.subscriber_by_id(subscriber).state == "unsubscribed"


def test_stop_only_the_offers_keeps_the_program(web_drip: Drip, client: TestClient) -> None:
    subscriber, enrollment = join(web_drip)
    page = client.post(unsubscribe_url(web_drip, subscriber, enrollment),
                       data={"scope": "offers"})
    assert page.status_code == 200 and "without offers" in page.text
    who = web_drip.store.subscriber_by_id(subscriber)
    assert who.state == "active" and who.offers_opt_out_at is not None
    assert [s.step_key for s in web_drip.dispatcher().run_once().sent] == ["week-1"]
    again = client.get(unsubscribe_url(web_drip, subscriber, enrollment))
    assert "Stop only the offers" not in again.text


def test_stop_everything_from_the_page(web_drip: Drip, client: TestClient) -> None:
    subscriber, enrollment = join(web_drip)
    page = client.post(unsubscribe_url(web_drip, subscriber, enrollment), data={"scope": "all"})
    assert page.status_code == 200 and "You are unsubscribed" in page.text
    assert web_drip.store.subscriber_by_id(subscriber).state == "unsubscribed"
    shown = client.get(unsubscribe_url(web_drip, subscriber, enrollment))
    assert "You are unsubscribed" in shown.text
    bad = client.post(unsubscribe_url(web_drip, subscriber, enrollment), data={"scope": "x"})
    assert bad.status_code == 400


def test_bad_and_unknown_tokens_are_404_and_leak_nothing(web_drip: Drip,
                                                         client: TestClient) -> None:
    subscriber, enrollment = join(web_drip)
    url = unsubscribe_url(web_drip, subscriber, enrollment)
    # change a character that carries six whole bits of the signature (the last one does
    # not: base64 leaves trailing bits unused, so some changes there decode the same)
    tampered = url[:-3] + ("A" if url[-3] != "A" else "B") + url[-2:]
    forged_other_purpose = "/u/" + web_drip.links.signer.make("pause", subscriber)
    unknown_subscriber = unsubscribe_url(web_drip, 999_999, 1)
    for path in (tampered, forged_other_purpose, unknown_subscriber, "/u/nonsense", "/p/x.y.z",
                 "/c/" + web_drip.links.signer.make("checkpoint", 424242), "/confirm/abc"):
        for method in ("GET", "POST"):
            answer = client.request(method, path, data={"scope": "all", "answer": "passed"})
            assert answer.status_code == 404, (method, path)
            assert "ana@example.com" not in answer.text
            assert "Traceback" not in answer.text and "drip." not in answer.text
    assert web_drip.store.subscriber_by_id(subscriber).state == "active"


def test_pause_a_week(web_drip: Drip, client: TestClient, clock: FixedClock) -> None:
    _, enrollment = join(web_drip)
    week_one(web_drip)
    (before,) = [r for r in web_drip.store.deliveries() if r.state == "scheduled"]
    url = web_drip.links.pause(enrollment).removeprefix("https://drip.test")
    page = client.get(url)
    assert page.status_code == 200 and "Pause one week" in page.text
    (unchanged,) = [r for r in web_drip.store.deliveries() if r.state == "scheduled"]
    assert unchanged.due_at == before.due_at
    done = client.post(url)
    assert done.status_code == 200 and "Paused for a week" in done.text
    (after,) = [r for r in web_drip.store.deliveries() if r.state == "scheduled"]
    assert after.due_at.date() == (before.due_at + timedelta(days=7)).date()
    web_drip.store.set_unsubscribed(web_drip.store.subscriber_id("ana@example.com"),
                                    clock.now(), "test")
    assert client.post(url).status_code == 409


def test_checkpoint_page_records_and_replaces_answers(web_drip: Drip, client: TestClient,
                                                      clock: FixedClock) -> None:
    join(web_drip)
    delivery = week_one(web_drip)
    url = web_drip.links.checkpoint(delivery, "passed").removeprefix("https://drip.test")
    page = client.get(url)
    assert page.status_code == 200
    assert "Week 1 checkpoint" in page.text and "short-lever bridge" in page.text
    # the emailed answer is offered for one more tap, and the page says it is not saved yet
    assert "Not saved yet" in page.text and "Save my answer: Passed" in page.text
    assert web_drip.store.answered_delivery(delivery).answer is None
    assert client.post(url, data={"answer": "not-yet"}).status_code == 200
    assert web_drip.store.answered_delivery(delivery).answer == "not-yet"
    shown = client.post(url, data={"answer": "passed"})
    assert "Saved: <strong>Passed</strong>" in shown.text
    assert "Change to: Not yet" in shown.text
    assert web_drip.store.answered_delivery(delivery).answer == "passed"
    assert client.post(url, data={"answer": "maybe"}).status_code == 400
    assert client.post(url, data={}).status_code == 400
    # once the next week's email went out, the answer is settled, and said so politely
    clock.advance(days=8)
    web_drip.dispatcher().run_once()
    settled = client.post(url, data={"answer": "not-yet"})
    assert settled.status_code == 409 and "already gone out" in settled.text
    assert web_drip.store.answered_delivery(delivery).answer == "passed"
    assert "already gone out" in client.get(url).text


def test_pages_are_mobile_friendly_and_safe(web_drip: Drip, client: TestClient) -> None:
    subscriber, enrollment = join(web_drip)
    page = client.get(unsubscribe_url(web_drip, subscriber, enrollment))
    assert 'name="viewport"' in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert client.get("/nowhere").status_code == 404
    assert client.put(unsubscribe_url(web_drip, subscriber, enrollment)).status_code == 405


def test_large_bodies_are_refused_with_413(web_drip: Drip, client: TestClient) -> None:
    subscriber, enrollment = join(web_drip)
    answer = client.post(unsubscribe_url(web_drip, subscriber, enrollment),
                         content=b"scope=all&x=" + b"a" * 200_000,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 413
    assert web_drip.store.subscriber_by_id(subscriber).state == "active"


def test_head_requests_change_nothing(web_drip: Drip, client: TestClient) -> None:
    # Link checkers and mail scanners send HEAD as well as GET; Starlette answers HEAD on
    # every GET route, so HEAD must take the GET branch, never the POST one.
    from tests.web.test_optin import confirm_path, outbox

    subscriber, enrollment = join(web_drip)
    delivery = week_one(web_drip)
    (before,) = [r for r in web_drip.store.deliveries() if r.state == "scheduled"]
    client.post("/subscribe", data={"email": "eve@example.com", "sequence": "pht-7-week",
                                    "timezone": "UTC"})
    (eml,) = [f for f in outbox(web_drip) if "confirm" in f.name]
    paths = [unsubscribe_url(web_drip, subscriber, enrollment),
             web_drip.links.pause(enrollment).removeprefix("https://drip.test"),
             web_drip.links.checkpoint(delivery, "passed").removeprefix("https://drip.test"),
             confirm_path(web_drip, eml), "/subscribe?sequence=pht-7-week"]
    for path in paths:
        assert client.head(path).status_code == 200, path
    assert web_drip.store.subscriber_by_id(subscriber).state == "active"
    (after,) = [r for r in web_drip.store.deliveries() if r.state == "scheduled"]
    assert after.due_at == before.due_at
    assert web_drip.store.answered_delivery(delivery).answer is None
    assert web_drip.store.deliveries(email="eve@example.com") == []


def test_no_answer_is_a_redirect(web_drip: Drip, client: TestClient) -> None:
    # Starlette redirects a path with a trailing slash by default, to a URL built from the
    # request's Host header; drip promises no redirects at all, so those are plain 404s.
    subscriber, enrollment = join(web_drip)
    for path in (unsubscribe_url(web_drip, subscriber, enrollment) + "/", "/subscribe/",
                 "/hooks/purchase/"):
        for method in ("GET", "POST"):
            answer = client.request(method, path, follow_redirects=False,
                                    headers={"Host": "evil.example"})
            assert answer.status_code == 404, (method, path, answer.headers.get("location"))
            assert "location" not in answer.headers
    assert web_drip.store.subscriber_by_id(subscriber).state == "active"


def test_stop_this_program_only_keeps_the_person_subscribed(web_drip: Drip,
                                                            client: TestClient) -> None:
    subscriber, enrollment = join(web_drip)
    url = unsubscribe_url(web_drip, subscriber, enrollment)
    page = client.get(url)
    assert "Stop this program only" in page.text and "Stop everything" in page.text
    assert pending_states(web_drip) == ["scheduled"]  # showing it changed nothing
    left = client.post(url, data={"scope": "program"})
    assert left.status_code == 200
    assert "You left 7-Week Proximal Hamstring Strength Program for Runners" in left.text
    assert web_drip.store.subscriber_by_id(subscriber).state == "active"
    assert pending_states(web_drip) == ["cancelled"]
    assert web_drip.dispatcher().run_once().sent == []
    again = client.get(url)
    assert "Stop this program only" not in again.text and "Stop everything" in again.text
    # the one-click POST a mail client sends still means everything (RFC 8058)
    client.post(url, content=b"List-Unsubscribe=One-Click",
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert web_drip.store.subscriber_by_id(subscriber).state == "unsubscribed"

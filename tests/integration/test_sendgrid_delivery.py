"""SendGrid delivery through the real `sendgrid` client against a stand-in on loopback.

Every request body is validated against Twilio's published schema; each fault test checks
that every due email ends accepted exactly once, or failed/unknown with its reason, and
that none is accepted twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from drip.clock import FixedClock
from drip.runtime import Drip
from drip.settings import Settings
from drip.subscriptions import enroll
from tests.conftest import FIXTURES, make_settings
from tests.support.sendgrid_standin import SendGridStandIn

KEY = "SG.test-key"


@pytest.fixture
def standin() -> Iterator[SendGridStandIn]:
    with SendGridStandIn(api_key=KEY) as server:
        yield server
        server.assert_no_violations()


def sendgrid_drip(tmp_path: Path, database_url: str, clock: FixedClock, url: str,
                  **overrides: object) -> Drip:
    values: dict[str, object] = {
        "sequences_dir": FIXTURES / "basic" / "sequences",
        "templates_dir": FIXTURES / "basic" / "templates",
        "backend": "sendgrid", "sendgrid_host": url, "sendgrid_api_key": KEY,
        "sendgrid_timeout": 2.0,
    }
    values.update(overrides)
    settings: Settings = make_settings(tmp_path, database_url, **values)
    return Drip.from_settings(settings, clock)


@pytest.fixture
def sg(tmp_path: Path, database_url: str, clock: FixedClock,
       standin: SendGridStandIn) -> Iterator[Drip]:
    drip = sendgrid_drip(tmp_path, database_url, clock, standin.url)
    yield drip
    drip.close()


def join_many(drip: Drip, count: int, prefix: str = "runner") -> list[str]:
    emails = [f"{prefix}{n:03d}@example.com" for n in range(count)]
    for address in emails:
        enroll(drip.store, drip.library, email=address, sequence_key="basic",
               now=drip.clock.now(), name=f"Runner {address[6:9]}", timezone="Europe/London")
    return emails


def states(drip: Drip, step: str = "week-1") -> Counter[str]:
    return Counter(r.state for r in drip.store.deliveries() if r.step_key == step)


def assert_exactly_once(standin: SendGridStandIn, emails: list[str]) -> None:
    accepted = Counter(standin.accepted_emails())
    assert [e for e, n in accepted.items() if n > 1] == [], "an email was accepted twice"
    assert sorted(accepted) == sorted(emails)


def test_one_request_carries_the_whole_group(sg: Drip, standin: SendGridStandIn) -> None:
    emails = join_many(sg, 30)
    report = sg.dispatcher().run_once()
    assert len(report.sent) == 30
    assert len(standin.requests) == 1  # one step, one nudge: one request
    assert_exactly_once(standin, emails)
    body = standin.requests[0]
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["categories"] == ["basic", "basic:week-1"]
    rows = {r.email: r for r in sg.store.deliveries() if r.step_key == "week-1"}
    for p in standin.personalizations:
        row = rows[p["to_email"]]
        assert p["custom_args"]["delivery_id"] == str(row.id)
        assert p["custom_args"]["step_key"] == "week-1"
        assert p["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert p["headers"]["List-Unsubscribe"].startswith("<https://drip.test/u/")
        assert p["substitutions"]["%%first_name%%"] == "Runner"
        assert row.provider_message_id and row.state == "sent"


def test_sandbox_mode_answers_200_and_counts_as_accepted(
    tmp_path: Path, database_url: str, clock: FixedClock, standin: SendGridStandIn
) -> None:
    drip = sendgrid_drip(tmp_path, database_url, clock, standin.url, sendgrid_sandbox=True)
    emails = join_many(drip, 3)
    assert len(drip.dispatcher().run_once().sent) == 3
    assert standin.requests[0]["mail_settings"]["sandbox_mode"]["enable"] is True
    assert_exactly_once(standin, emails)
    drip.close()


def test_429_waits_for_the_reset_then_sends(sg: Drip, standin: SendGridStandIn) -> None:
    emails = join_many(sg, 5)
    standin.rate_limit_next(count=1, reset_in=1)
    assert len(sg.dispatcher().run_once().sent) == 5
    assert_exactly_once(standin, emails)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried_with_backoff(sg: Drip, standin: SendGridStandIn,
                                                clock: FixedClock, status: int) -> None:
    emails = join_many(sg, 4)
    standin.fail_next(status, count=1)
    dispatcher = sg.dispatcher()
    first = dispatcher.run_once()
    assert first.sent == [] and first.retried == 4
    assert states(sg) == {"scheduled": 4}
    assert dispatcher.run_once().sent == []  # not yet: backing off
    clock.advance(hours=2)
    assert len(dispatcher.run_once().sent) == 4
    assert_exactly_once(standin, emails)


def test_a_refused_connection_is_transient(tmp_path: Path, database_url: str,
                                           clock: FixedClock) -> None:
    with SendGridStandIn(api_key=KEY) as server:
        url = server.url
    drip = sendgrid_drip(tmp_path, database_url, clock, url)  # nothing listens there now
    join_many(drip, 2)
    report = drip.dispatcher().run_once()
    assert report.retried == 2 and states(drip) == {"scheduled": 2}
    rows = drip.store.deliveries()
    assert all("could not be reached" in (r.last_error or "") for r in rows)
    drip.close()


def test_persistent_errors_end_failed_with_the_reason(sg: Drip, standin: SendGridStandIn,
                                                      clock: FixedClock) -> None:
    join_many(sg, 1)
    standin.fail_next(503, count=100)
    dispatcher = sg.dispatcher()
    for _ in range(12):
        dispatcher.run_once()
        clock.advance(hours=2)
        sg.store.close_circuit("sendgrid", clock.now())
    (row,) = sg.store.deliveries()
    assert row.state == "failed"
    assert row.last_error is not None and "Gave up after 5 attempts" in row.last_error
    assert standin.accepted_emails() == []


def test_400_for_one_address_fails_only_that_one(sg: Drip, standin: SendGridStandIn) -> None:
    emails = join_many(sg, 9)
    standin.reject_address(emails[4], message="Does not contain a valid address.")
    report = sg.dispatcher().run_once()
    assert len(report.sent) == 8 and report.failed == 1
    assert_exactly_once(standin, emails[:4] + emails[5:])
    (bad,) = [r for r in sg.store.deliveries() if r.state == "failed"]
    assert bad.email == emails[4]
    assert bad.last_error is not None and "Does not contain a valid address" in bad.last_error


def test_413_splits_the_batch(tmp_path: Path, database_url: str, clock: FixedClock) -> None:
    with SendGridStandIn(api_key=KEY, max_body_bytes=30_000) as server:
        drip = sendgrid_drip(tmp_path, database_url, clock, server.url)
        emails = join_many(drip, 40)
        assert len(drip.dispatcher().run_once().sent) == 40
        assert len(server.requests) > 1
        assert_exactly_once(server, emails)
        server.assert_no_violations()
        drip.close()


def test_a_bad_key_opens_the_circuit_and_sends_nothing(
    tmp_path: Path, database_url: str, clock: FixedClock, standin: SendGridStandIn
) -> None:
    drip = sendgrid_drip(tmp_path, database_url, clock, standin.url,
                         sendgrid_api_key="SG.wrong")
    emails = join_many(drip, 6)
    report = drip.dispatcher().run_once()
    assert report.halted and "API key" in report.halted and report.circuit_open
    assert states(drip) == {"scheduled": 6}  # released, unsent
    assert drip.store.circuit("sendgrid").state == "open"
    drip.close()
    fixed = sendgrid_drip(tmp_path, database_url, clock, standin.url)
    dispatcher = fixed.dispatcher()
    held = dispatcher.run_once()
    assert held.sent == [] and held.circuit_open  # still open: waiting before the probe
    clock.advance(minutes=2)
    probe = dispatcher.run_once()
    assert len(probe.sent) == 6  # the probe of one succeeded, then the rest went
    assert fixed.store.circuit("sendgrid").state == "closed"
    assert_exactly_once(standin, emails)
    fixed.close()


def test_a_run_of_transient_failures_opens_the_circuit(
    tmp_path: Path, database_url: str, clock: FixedClock, standin: SendGridStandIn
) -> None:
    drip = sendgrid_drip(tmp_path, database_url, clock, standin.url, batch_size=2)
    emails = join_many(drip, 10)
    standin.fail_next(503, count=3)
    dispatcher = drip.dispatcher()
    report = dispatcher.run_once()
    assert report.circuit_open and "3 batches in a row" in (report.halted or "")
    assert len(standin.requests) == 0
    clock.advance(hours=1)
    for _ in range(3):
        dispatcher.run_once()
        clock.advance(hours=1)
    assert_exactly_once(standin, emails)
    assert states(drip) == {"sent": 10}
    drip.close()


@pytest.mark.parametrize("fault", ["timeout", "dropped"])
def test_no_answer_after_sending_is_unknown_and_never_resent(
    tmp_path: Path, database_url: str, clock: FixedClock, standin: SendGridStandIn, fault: str
) -> None:
    drip = sendgrid_drip(tmp_path, database_url, clock, standin.url, sendgrid_timeout=0.5)
    emails = join_many(drip, 3)
    if fault == "timeout":
        standin.delay_next(2.0, count=1)
    else:
        standin.drop_next(count=1)
    dispatcher = drip.dispatcher()
    report = dispatcher.run_once()
    assert report.unknown == 3 and report.sent == []
    assert Counter(r.state for r in drip.store.deliveries() if r.step_key == "week-1") == {
        "unknown": 3}
    # The enrollments move on: week 2 is planned, week 1 is never sent again.
    clock.advance(days=8)
    later = dispatcher.run_once()
    assert {s.step_key for s in later.sent} == {"week-2"}
    accepted = Counter((p["to_email"], p["custom_args"]["step_key"])
                       for p in standin.personalizations)
    assert all(n == 1 for n in accepted.values())
    assert {e for e, step in accepted if step == "week-1"} == set(emails)
    drip.close()


def test_message_ids_are_stored_and_week_two_is_planned(sg: Drip, standin: SendGridStandIn,
                                                        clock: FixedClock) -> None:
    join_many(sg, 2)
    sg.dispatcher().run_once()
    rows = [r for r in sg.store.deliveries() if r.step_key == "week-1"]
    assert {r.provider_message_id for r in rows} == {p["message_id"]
                                                     for p in standin.personalizations}
    pending = sg.store.pending_deliveries()
    assert len(pending) == 2
    assert all(p.due_at - clock.now() > timedelta(days=6) for p in pending)


def test_every_request_names_its_batch_in_each_personalization(
    tmp_path: Path, database_url: str, clock: FixedClock, standin: SendGridStandIn
) -> None:
    drip = sendgrid_drip(tmp_path, database_url, clock, standin.url, batch_size=3)
    join_many(drip, 7)
    standin.fail_next(503, count=1)
    dispatcher = drip.dispatcher()
    dispatcher.run_once()
    clock.advance(hours=2)
    dispatcher.run_once()
    keys = [{p["custom_args"]["batch_key"] for p in body["personalizations"]}
            for body in standin.requests]
    assert all(len(k) == 1 for k in keys), "one batch key per request, in every personalization"
    flat = [next(iter(k)) for k in keys]
    assert len(flat) == len(set(flat)) == len(standin.requests) >= 3
    assert all(len(k) == 16 and all(c in "0123456789abcdef" for c in k) for k in flat)
    drip.close()

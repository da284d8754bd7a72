"""Tags through the real dispatcher, on both databases: a tag goal ends the sequence at the
next dispatch, a checkpoint answer sets a tag, a branch picks the tagged version of the main
email, and a tag never moves a runner past a gate by silence."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from drip import checkpoints
from drip.clock import FixedClock
from drip.planner import NOT_YET, PASSED, WAITING
from drip.runtime import Drip
from drip.subscriptions import enroll
from tests.conftest import fixture_drip

BERLIN = ZoneInfo("Europe/Berlin")
JOINED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday 10:00 in Berlin


@pytest.fixture
def tagged(tmp_path: Path, database_url: str, clock: FixedClock) -> Iterator[Drip]:
    with fixture_drip(tmp_path, database_url, clock, "tagged", JOINED) as instance:
        yield instance


class Runner:
    def __init__(self, drip: Drip, clock: FixedClock, address: str = "tag@example.com") -> None:
        self.drip, self.clock, self.email = drip, clock, address
        joined = enroll(drip.store, drip.library, email=address, sequence_key="tagged",
                        now=clock.now(), name="Tam", timezone="Europe/Berlin",
                        source="purchase")
        self.subscriber_id = joined.subscriber_id
        self.dispatcher = drip.dispatcher()
        self.dispatcher.run_once()

    def rows(self) -> list[tuple[str, str, str]]:
        return [(r.step_key, r.variant, r.state)
                for r in self.drip.store.deliveries(email=self.email)]

    def latest(self) -> int:
        return [r for r in self.drip.store.deliveries(email=self.email)
                if r.state == "sent"][-1].id

    def next_email(self) -> None:
        """Move the clock to the pending email's slot and dispatch."""
        (pending,) = [r for r in self.drip.store.deliveries(email=self.email)
                      if r.state == "scheduled"]
        self.clock.at = max(self.clock.now(), pending.due_at) + timedelta(minutes=1)
        self.dispatcher.run_once()

    def answer(self, choice: str) -> None:
        checkpoints.answer(self.drip.store, self.drip.library, self.latest(), choice,
                           self.clock.now())

    def subject(self, delivery_id: int) -> str:
        for path in sorted(self.drip.settings.outbox_dir.glob("*.eml")):
            mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if f".drip.{delivery_id}@" in str(mail["Message-ID"]):
                return str(mail["Subject"])
        raise AssertionError(f"no email for delivery {delivery_id}")


def test_a_tag_goal_stops_the_sequence_at_the_next_dispatch(tagged: Drip,
                                                            clock: FixedClock) -> None:
    runner = Runner(tagged, clock)
    assert [r[::2] for r in runner.rows()] == [("week-1", "sent"), ("week-2", "scheduled")]
    assert tagged.store.tag_subscriber(runner.email, "clinician-referral", clock.now())
    assert not tagged.store.tag_subscriber(runner.email, "clinician-referral", clock.now())
    assert "clinician-referral" in tagged.store.tags_of(runner.subscriber_id)
    runner.next_email()
    assert [r[::2] for r in runner.rows()] == [("week-1", "sent"), ("week-2", "cancelled")]
    (cancelled,) = [r for r in tagged.store.deliveries(email=runner.email)
                    if r.state == "cancelled"]
    assert cancelled.last_error == ("Tagged clinician-referral, which ends tagged; nothing "
                                    "more is sent.")
    (enrollment,) = tagged.store.enrollments_of("tagged")
    assert enrollment.state != "active"
    clock.advance(days=30)
    runner.dispatcher.run_once()
    assert len(list(tagged.settings.outbox_dir.glob("*.eml"))) == 1  # only week 1, ever


def test_without_the_tag_the_sequence_goes_on(tagged: Drip, clock: FixedClock) -> None:
    runner = Runner(tagged, clock)
    runner.answer(PASSED)
    runner.next_email()
    assert runner.rows()[:2] == [("week-1", "main", "sent"), ("week-2", "main", "sent")]
    assert runner.subject(runner.latest()) == "Week 2"


def test_a_not_yet_sets_the_tag_and_the_branch_picks_the_gentle_week(
        tagged: Drip, clock: FixedClock) -> None:
    runner = Runner(tagged, clock)
    runner.answer(NOT_YET)  # on_answer: notyet: [tag: struggling]
    assert "struggling" in tagged.store.tags_of(runner.subscriber_id)
    runner.next_email()  # week 1 again
    assert runner.rows()[1][:2] == ("week-1", "repeat")
    runner.answer(PASSED)
    runner.next_email()
    sent = [r for r in tagged.store.deliveries(email=runner.email) if r.state == "sent"]
    assert (sent[-1].step_key, sent[-1].variant) == ("week-2", "main/struggling")
    assert runner.subject(sent[-1].id) == "Week 2, gently"
    # the slot stays in the window, on a send day, in Berlin
    local = sent[-1].sent_at.astimezone(BERLIN) if sent[-1].sent_at else None
    assert local is not None and local.weekday() != 6 and 6 <= local.hour < 20


def test_a_branch_never_moves_a_silent_runner_past_the_gate(tagged: Drip,
                                                            clock: FixedClock) -> None:
    runner = Runner(tagged, clock)
    tagged.store.add_tags(runner.subscriber_id, ["struggling"], clock.now())
    runner.answer(PASSED)
    runner.next_email()  # week 2, the gate, in its gentle version
    for _ in range(4):  # silence at the gate: waiting emails, then the coach's hold
        if any(r[2] == "scheduled" for r in runner.rows()):
            runner.next_email()
    steps = [(r[0], r[1]) for r in runner.rows() if r[2] == "sent"]
    assert steps[1] == ("week-2", "main/struggling")
    assert ("week-3", "main") not in steps
    assert all(variant == WAITING for step, variant in steps[2:]), steps
    (enrollment,) = tagged.store.enrollments_of("tagged")
    assert enrollment.state == "paused"


def test_an_import_sets_the_tags_of_its_tags_column(tagged: Drip, clock: FixedClock) -> None:
    from drip.imports import import_rows, parse_csv

    parsed = parse_csv(b"email,name,timezone,tags,state\n"
                       b"ana@example.com,Ana,Europe/Berlin,\"struggling, vip\",\n"
                       b"bo@example.com,Bo,UTC,struggling,unsubscribed\n")
    import_rows(tagged.store, tagged.library, parsed, sequence_key="tagged", now=clock.now(),
                file_name="people.csv")
    ana = tagged.store.subscriber_by_email("ana@example.com")
    assert tagged.store.tags_of(ana.id) == ["struggling", "vip"]
    bo = tagged.store.subscriber_by_email("bo@example.com")
    assert tagged.store.tags_of(bo.id) == []  # who left is recorded, never tagged on
    # the first email of an import keeps to the window and days, in the person's zone
    (first,) = [r for r in tagged.store.deliveries(email="ana@example.com")]
    local = first.due_at.astimezone(BERLIN)
    assert local.weekday() != 6 and 6 <= local.hour < 20

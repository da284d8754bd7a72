"""Gates, waiting emails and checkpoint reminders through the real dispatcher, on both
databases: a silent runner is asked again and then paused, never moved on; a reminder goes
out only while its question is open; answering early moves it out of the way."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from drip import checkpoints, digest
from drip.clock import FixedClock
from drip.planner import CHECKPOINT_REMINDER, PASSED, REPEAT_LAST, WAITING
from drip.runtime import Drip
from drip.subscriptions import enroll
from tests.conftest import fixture_drip

LA = ZoneInfo("America/Los_Angeles")
JOINED = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)  # Monday 09:00 in Los Angeles


def mail_text(drip: Drip, delivery_id: int) -> str:
    """The decoded plain-text and HTML bodies of the outbox email for one delivery."""
    for path in sorted(drip.settings.outbox_dir.glob("*.eml")):
        mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if f".drip.{delivery_id}@" in str(mail["Message-ID"]):
            return "\n".join(str(part.get_content()) for part in mail.walk()
                             if part.get_content_maintype() == "text")
    raise AssertionError(f"no email for delivery {delivery_id} in the outbox")


@pytest.fixture
def gated(tmp_path: Path, database_url: str, clock: FixedClock) -> Iterator[Drip]:
    with fixture_drip(tmp_path, database_url, clock, "gated", JOINED) as instance:
        yield instance


class Runner:
    def __init__(self, drip: Drip, clock: FixedClock, email: str = "gate@example.com") -> None:
        self.drip, self.clock, self.email = drip, clock, email
        joined = enroll(drip.store, drip.library, email=email, sequence_key="gated",
                        now=clock.now(), name="Gia", timezone="America/Los_Angeles",
                        source="purchase")
        self.subscriber_id, self.enrollment_id = joined.subscriber_id, joined.enrollment_id
        self.dispatcher = drip.dispatcher()
        self.dispatcher.run_once()

    def rows(self) -> list[tuple[str, str, str]]:
        return [(r.step_key, r.variant, r.state) for r in self.drip.store.deliveries(
            email=self.email)]

    def sent(self) -> list[tuple[str, str, datetime]]:
        return [(r.step_key, r.variant, r.sent_at.astimezone(LA))
                for r in self.drip.store.deliveries(email=self.email)
                if r.state == "sent" and r.sent_at is not None]

    def latest(self, variant: str | None = None) -> int:
        rows = [r for r in self.drip.store.deliveries(email=self.email) if r.state == "sent"
                and (variant is None or r.variant == variant)]
        return rows[-1].id

    def live(self, days: float) -> None:
        """Live through `days`, an hour at a time, dispatching each hour."""
        for _ in range(int(days * 24)):
            self.clock.advance(hours=1)
            self.dispatcher.run_once()

    def answer(self, answer: str, delivery_id: int | None = None) -> checkpoints.CheckpointView:
        return checkpoints.answer(self.drip.store, self.drip.library,
                                  delivery_id or self.latest(), answer, self.clock.now())


def test_a_silent_runner_at_a_gate_is_asked_again_then_paused_for_the_coach(
        gated: Drip, clock: FixedClock) -> None:
    runner = Runner(gated, clock)
    runner.live(2)
    runner.answer(PASSED)  # week 1
    runner.live(6)
    assert [s[:2] for s in runner.sent()] == [("week-1", "main"), ("week-2", "main")]
    runner.live(35)  # silent at the week-2 gate for five weeks
    sent = runner.sent()
    assert [s[:2] for s in sent] == [
        ("week-1", "main"), ("week-2", "main"), ("week-2", CHECKPOINT_REMINDER),
        ("week-2", WAITING), ("week-2", WAITING)]
    # the reminder five days after the gate email, at the send time, not at night
    gate_at, reminder_at, first_wait = sent[1][2], sent[2][2], sent[3][2]
    assert (reminder_at.date() - gate_at.date()).days == 5
    # due at 06:30; the hourly dispatches of this test send it at the first one after
    assert time(6, 30) <= reminder_at.time() <= time(7, 30), reminder_at
    # the waiting email keeps the weekly rhythm the gate email set
    assert (first_wait.date() - gate_at.date()).days == 7
    # then paused, with the reason, and listed for the coach
    enrollment = gated.store.enrollments_of("gated")[0]
    assert enrollment.state == "paused"
    assert ("week-3", "main") not in [s[:2] for s in runner.sent()]
    (held,) = [r for r in gated.store.deliveries(email=runner.email) if r.state == "held"]
    assert held.last_error is not None and held.last_error.startswith("Silent at the week-2")
    report = digest.gather(gated.store, gated.library, clock.now())
    (section,) = report.sequences
    assert [p.email for p in section.at_gate] == [runner.email]
    assert "2 waiting emails" in section.at_gate[0].note
    assert "Silent at a gate" in digest.digest_text(report)
    # a "passed" on the last waiting email is what the pause waited for: it resumes
    view = runner.answer(PASSED, runner.latest(WAITING))
    assert gated.store.enrollments_of("gated")[0].state == "active"
    assert view.next_up is not None and view.next_up.step_key == "week-3"
    runner.live(1)
    assert runner.sent()[-1][:2] == ("week-3", "main")


def test_a_reminder_goes_only_while_the_question_is_open(gated: Drip,
                                                         clock: FixedClock) -> None:
    runner = Runner(gated, clock)
    runner.live(2)
    runner.answer(PASSED)
    runner.live(6)  # week 2 (the gate) went out this morning
    gate_id = runner.latest()
    (pending,) = [r for r in gated.store.deliveries(email=runner.email)
                  if r.state == "scheduled"]
    assert pending.variant == CHECKPOINT_REMINDER
    runner.live(3)
    view = runner.answer(PASSED, gate_id)  # answered on day 3: no reminder is needed
    (moved,) = [r for r in gated.store.deliveries(email=runner.email)
                if r.state == "scheduled"]
    assert moved.id == pending.id and moved.variant != CHECKPOINT_REMINDER
    assert (moved.due_at.astimezone(LA).date() - runner.sent()[-1][2].date()).days == 7
    # the page tells the runner what comes next, and when, in their own time
    assert view.next_up is not None and (view.next_up.step_key, view.next_up.due_at) == (
        "week-3", moved.due_at)
    runner.live(5)
    assert [s[:2] for s in runner.sent()][-2:] == [("week-2", "main"), ("week-3", "main")]


def test_an_answer_that_races_the_reminder_moves_it_at_dispatch(gated: Drip,
                                                                clock: FixedClock) -> None:
    runner = Runner(gated, clock)
    runner.live(2)
    runner.answer(PASSED)
    runner.live(6)
    gate_id = runner.latest()
    # saved without moving the reminder, as when the reminder was claimed at that moment
    gated.store.save_answer(gated.store.answered_delivery(gate_id), PASSED, clock.now())
    runner.live(5)
    assert CHECKPOINT_REMINDER not in [v for _, v, _ in runner.sent()]
    (pending,) = [r for r in gated.store.deliveries(email=runner.email)
                  if r.state == "scheduled"]
    assert pending.variant != CHECKPOINT_REMINDER
    assert (pending.due_at.astimezone(LA).date() - runner.sent()[-1][2].date()).days == 7
    runner.live(3)
    assert runner.sent()[-1][:2] == ("week-3", "main")


def test_the_reminders_buttons_answer_the_email_it_reminds_of(gated: Drip,
                                                              clock: FixedClock) -> None:
    runner = Runner(gated, clock)
    runner.live(2)
    runner.answer(PASSED)
    runner.live(6)
    gate_id = runner.latest()
    runner.live(5)  # the reminder went out on day 5, the waiting email is not due yet
    reminder_id = runner.latest(CHECKPOINT_REMINDER)
    tokens = set(re.findall(r"/c/([\w.-]+)\?answer=", mail_text(gated, reminder_id)))
    assert tokens and all(gated.links.signer.read("checkpoint", t) == [gate_id]
                          for t in tokens)
    # the reminder did not settle the gate's question: it can still be answered
    view = checkpoints.view(gated.store, gated.library, gate_id)
    assert view.can_answer
    runner.answer(PASSED, gate_id)
    runner.live(2)
    assert runner.sent()[-1][:2] == ("week-3", "main")


def test_repeat_last_week_from_the_no_answer_note(gated: Drip, clock: FixedClock) -> None:
    runner = Runner(gated, clock)
    runner.live(8)  # silent on week 1 (not a gate): moved on, with the note
    assert runner.sent()[-1][:2] == ("week-2", "main+reminder")
    note_id = runner.latest()
    html = mail_text(gated, note_id)
    assert "answer=repeat-last" in html and "Repeat Week 1 instead" in html
    view = runner.answer(REPEAT_LAST, note_id)
    assert view.next_up is not None and (view.next_up.step_key, view.next_up.variant) == (
        "week-1", "repeat")
    runner.live(7)
    assert [s[:2] for s in runner.sent()][-1] == ("week-1", "repeat")
    # the week-2 email's own checkpoint was superseded by the repeat
    assert not checkpoints.view(gated.store, gated.library, note_id).can_answer


def test_answers_after_unsubscribing_or_the_end_are_refused_with_words(
        gated: Drip, clock: FixedClock) -> None:
    from drip.errors import Conflict

    runner = Runner(gated, clock)
    runner.live(1)
    first = runner.latest()
    gated.store.set_unsubscribed(runner.subscriber_id, clock.now(), "test")
    view = checkpoints.view(gated.store, gated.library, first)
    assert not view.can_answer and view.closed is not None and "unsubscribed" in view.closed
    with pytest.raises(Conflict):
        runner.answer(PASSED, first)
    assert gated.store.answered_delivery(first).answer is None


def test_only_main_emails_carry_an_offer_and_at_most_two(gated: Drip,
                                                         clock: FixedClock) -> None:
    runner = Runner(gated, clock)
    for _ in range(4):
        runner.live(2)
        runner.answer(PASSED)
        runner.live(5)
    rows = gated.store.deliveries(email=runner.email)
    sent = [r for r in rows if r.state == "sent"]
    assert [(r.step_key, r.variant) for r in sent] == [
        ("week-1", "main"), ("week-2", "main"), ("week-3", "main"), ("week-4", "main"),
        ("week-4", "graduated")]
    assert [r.nudge for r in sent] == ["offer-a", "offer-b", None, None, None]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_paused_reminder_keeps_its_week(gated: Drip, clock: FixedClock) -> None:
    """A pause moves the reminder; the weekly email after it moves with it."""
    from drip import lifecycle

    runner = Runner(gated, clock)
    runner.live(2)
    runner.answer(PASSED)
    runner.live(6)
    gate_at = runner.sent()[-1][2]
    lifecycle.postpone(gated.store, gated.library, runner.enrollment_id, clock.now(), days=7)
    runner.live(1)
    runner.answer(PASSED, runner.latest())
    (pending,) = [r for r in gated.store.deliveries(email=runner.email)
                  if r.state == "scheduled"]
    assert (pending.due_at.astimezone(LA).date() - gate_at.date()).days == 14
    assert timedelta(0) < pending.due_at - clock.now()

"""The core loop end to end: enroll at awkward moments, tick hourly for eight weeks, and
check exactly what each runner received, on a real database and a real outbox folder."""

from __future__ import annotations

import email
import email.policy
import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from drip.clock import FixedClock
from drip.planner import CHECKPOINT_REMINDER
from drip.runtime import Drip
from drip.schedule import is_quiet
from drip.settings import Settings
from drip.subscriptions import enroll

#: What a runner who never answers gets, weekly: weeks 1 to 5, then the week-5 gate waits
#: (two waiting emails, hold_limit) instead of moving them into running.
WEEKLY = [*((f"week-{n}", "main" if n == 1 else "main+reminder") for n in range(1, 6)),
          ("week-5", "waiting"), ("week-5", "waiting")]
#: ... and the day-5 reminder of each week's question (never of a waiting email's).
REMINDED = [f"week-{n}" for n in range(1, 6)]

#: Joins at awkward local moments: late evening, just before each zone's 2026 DST change,
#: a half-hour zone just before midnight, and one in the small hours.
RUNNERS = [
    ("maria@example.com", "Maria", "America/Los_Angeles", datetime(2026, 3, 7, 22, 45)),
    ("tom@example.com", "Tom", "Europe/London", datetime(2026, 3, 28, 23, 50)),
    ("aisha@example.com", "Aisha", "Australia/Sydney", datetime(2026, 4, 4, 20, 55)),
    ("ravi@example.com", "", "Asia/Kolkata", datetime(2026, 3, 20, 23, 59)),
    ("kim@example.com", "Kim Park", "America/New_York", datetime(2026, 3, 10, 3, 10)),
]


def run_hourly(drip: Drip, clock: FixedClock, weeks: int) -> None:
    joins = sorted((local.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC), address, name, tz)
                   for address, name, tz, local in RUNNERS)
    clock.at = joins[0][0].replace(minute=0, second=0)
    end = joins[-1][0] + timedelta(weeks=weeks)
    dispatcher = drip.dispatcher()
    while clock.now() <= end:
        while joins and joins[0][0] <= clock.now() + timedelta(hours=1):
            at, address, name, tz = joins.pop(0)
            enroll(drip.store, drip.library, email=address, sequence_key="pht-7-week", now=at,
                   name=name, timezone=tz, source="purchase")
        clock.advance(hours=1)
        dispatcher.run_once()


def test_eight_weeks_hour_by_hour(drip: Drip, clock: FixedClock, settings: Settings) -> None:
    run_hourly(drip, clock, weeks=8)
    received: dict[str, list[tuple[str, str, datetime, str]]] = defaultdict(list)
    for row in drip.store.deliveries():
        if row.state == "held":  # silent at the week-5 gate after two waiting emails
            assert (row.step_key, row.variant) == ("week-5", "waiting"), row
            assert "Silent at the" in (row.last_error or ""), row
            continue
        assert row.state == "sent", row
        assert row.sent_at is not None
        received[row.email].append((row.step_key, row.variant, row.sent_at, row.timezone))
    assert sorted(received) == sorted(r[0] for r in RUNNERS)
    for address, emails in received.items():
        emails.sort(key=lambda e: e[2])
        weekly = [e for e in emails if e[1] != CHECKPOINT_REMINDER]
        reminders = [e for e in emails if e[1] == CHECKPOINT_REMINDER]
        assert [(step, variant) for step, variant, _, _ in weekly] == WEEKLY, address
        assert [step for step, _, _, _ in reminders] == REMINDED, address
        for (_, _, earlier, _), (step, _, later, _) in itertools.pairwise(weekly):
            gap = later - earlier
            assert timedelta(days=6) <= gap <= timedelta(days=8), (address, step, gap)
        for (step, _, sent, _) in weekly[:5]:
            (reminded,) = [at for s, _, at, _ in reminders if s == step]
            assert timedelta(days=4) <= reminded - sent <= timedelta(days=6), (address, step)
        for step, _, at, tz in emails[1:]:  # week 1 goes the moment they join
            assert not is_quiet(at, ZoneInfo(tz)), (address, step, at.astimezone(ZoneInfo(tz)))
    files = sorted(settings.outbox_dir.glob("*.eml"))
    assert len(files) == (len(WEEKLY) + len(REMINDED)) * len(RUNNERS)
    assert not list(settings.outbox_dir.glob("*.tmp"))


def parse(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_eml_files_are_complete_emails(drip: Drip, clock: FixedClock,
                                       settings: Settings) -> None:
    enroll(drip.store, drip.library, email="o'brien+runs@example.com", sequence_key="pht-7-week",
           now=clock.now(), name="Siobhán <O'Brien> & Co", timezone="Europe/Dublin")
    dispatcher = drip.dispatcher()
    for _ in range(24 * 7 * 7):
        dispatcher.run_once()
        clock.advance(hours=1)
    files = sorted(settings.outbox_dir.glob("*.eml"))
    assert len(files) == len(WEEKLY) + len(REMINDED)  # silent: weeks 1-5 and the gate's wait
    for path in files:
        message = parse(path)
        assert message.get_content_type() == "multipart/alternative"
        text_part = message.get_body(("plain",))
        html_part = message.get_body(("html",))
        assert text_part is not None and html_part is not None
        text, html = text_part.get_content(), html_part.get_content()
        unsubscribe = message["List-Unsubscribe"]
        assert unsubscribe.startswith("<https://drip.test/u/") and unsubscribe.endswith(">")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        url = unsubscribe[1:-1]
        assert url in text and url in html  # the visible link is the same signed link
        for part in (text, html):
            assert "%%" not in part, "a placeholder was left unfilled"
            assert "Springfield, OR 97477" in part  # the postal address
            assert "Unsubscribe" in part
        assert "Hi Siobhán," in text
        assert "Siobhán &lt;O&#x27;Brien&gt; &amp; Co" in html or "Siobhán," in html
        assert "<O'Brien>" not in html  # never unescaped into the markup
        assert message["To"].addresses[0].addr_spec == "o'brien+runs@example.com"
        assert message["Subject"] and "%%" not in message["Subject"]
        assert 'style="' in html  # CSS inlined
        assert "@media" in html  # and the responsive rules kept


def test_a_subscriber_with_no_name_gets_the_fallback_greeting(
    drip: Drip, clock: FixedClock, settings: Settings
) -> None:
    enroll(drip.store, drip.library, email="anon@example.com", sequence_key="pht-7-week",
           now=clock.now())
    drip.dispatcher().run_once()
    (path,) = settings.outbox_dir.glob("*.eml")
    text = parse(path).get_body(("plain",))
    assert text is not None
    assert "Hi there," in text.get_content()


def test_after_weeks_away_only_the_due_step_goes_out_never_a_burst(
    drip: Drip, clock: FixedClock
) -> None:
    enroll(drip.store, drip.library, email="away@example.com", sequence_key="pht-7-week",
           now=clock.now(), timezone="Europe/London")
    dispatcher = drip.dispatcher()
    assert [s.step_key for s in dispatcher.run_once().sent] == ["week-1"]
    clock.advance(weeks=5)  # the scheduler was down for five weeks
    clock.at = clock.at.replace(hour=10)
    first = dispatcher.run_once()
    # one email, the overdue one: week 1's reminder (its question is still open)
    assert [(s.step_key, s.variant) for s in first.sent] == [("week-1", CHECKPOINT_REMINDER)]
    assert dispatcher.run_once().sent == []
    # Week 2 keeps its place two days after the reminder's slot, at 06:30 London time.
    clock.advance(days=1, hours=19)  # 06:00 BST on 8 April
    assert dispatcher.run_once().sent == []
    clock.advance(hours=1)
    assert [s.step_key for s in dispatcher.run_once().sent] == ["week-2"]
    clock.advance(days=5)  # week 2's reminder, on day 5
    assert [(s.step_key, s.variant) for s in dispatcher.run_once().sent] == [
        ("week-2", CHECKPOINT_REMINDER)]
    # Week 3 keeps the weekly rhythm: 06:30 London time, seven calendar days after week 2.
    clock.advance(days=1, hours=23)  # 06:00 BST on 15 April
    assert dispatcher.run_once().sent == []
    clock.advance(hours=1)
    assert [s.step_key for s in dispatcher.run_once().sent] == ["week-3"]


@pytest.mark.parametrize("hour", [21, 23, 2, 5])
def test_a_due_email_waits_for_the_morning(drip: Drip, clock: FixedClock, hour: int) -> None:
    tz = ZoneInfo("Australia/Sydney")
    clock.at = datetime(2026, 5, 4, 12, 0, tzinfo=tz).astimezone(UTC)
    enroll(drip.store, drip.library, email="night@example.com", sequence_key="pht-7-week",
           now=clock.now(), timezone="Australia/Sydney")
    dispatcher = drip.dispatcher()
    dispatcher.run_once()
    # The scheduler was down from week 2's slot until late in the night.
    night = datetime(2026, 5, 11 if hour >= 21 else 12, hour, 0, tzinfo=tz)
    clock.at = night.astimezone(UTC)
    report = dispatcher.run_once()
    assert report.sent == [] and report.rescheduled == 1
    clock.at = datetime(2026, 5, 12, 6, 0, tzinfo=tz).astimezone(UTC)
    assert dispatcher.run_once().sent == []
    clock.at = datetime(2026, 5, 12, 6, 31, tzinfo=tz).astimezone(UTC)
    # the overdue email is week 1's day-5 reminder: sent in the morning, not at night
    assert [(s.step_key, s.variant) for s in dispatcher.run_once().sent] == [
        ("week-1", CHECKPOINT_REMINDER)]

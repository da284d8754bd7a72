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
from drip.runtime import Drip
from drip.schedule import is_quiet
from drip.settings import Settings
from drip.subscriptions import enroll

STEPS = [f"week-{n}" for n in range(1, 8)]

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
    received: dict[str, list[tuple[str, datetime, str]]] = defaultdict(list)
    for row in drip.store.deliveries():
        if row.state == "cancelled":  # the slot kept open for a week-7 "not yet" answer
            assert row.step_key == "week-7" and "program is complete" in (row.last_error or "")
            continue
        assert row.state == "sent", row
        assert row.sent_at is not None
        received[row.email].append((row.step_key, row.sent_at, row.timezone))
    assert sorted(received) == sorted(r[0] for r in RUNNERS)
    for address, emails in received.items():
        emails.sort(key=lambda e: e[1])
        assert [step for step, _, _ in emails] == STEPS, address
        for (_, earlier, _), (step, later, tz) in itertools.pairwise(emails):
            gap = later - earlier
            assert timedelta(days=6) <= gap <= timedelta(days=8), (address, step, gap)
            assert not is_quiet(later, ZoneInfo(tz)), (address, step, later.astimezone(
                ZoneInfo(tz)))
    files = sorted(settings.outbox_dir.glob("*.eml"))
    assert len(files) == 7 * len(RUNNERS)
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
    assert len(files) == 7
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
    assert [s.step_key for s in first.sent] == ["week-2"]
    assert dispatcher.run_once().sent == []
    # Week 3 keeps the weekly rhythm: 06:30 London time, seven calendar days after week 2.
    clock.advance(days=6, hours=19)  # 06:00 BST on 13 April
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
    assert [s.step_key for s in dispatcher.run_once().sent] == ["week-2"]

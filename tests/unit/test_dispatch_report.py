"""A dispatch pass lists the first emails it sent one by one and counts the rest."""

from __future__ import annotations

from datetime import UTC, datetime

from drip.dispatch import SENT_DETAIL_LIMIT, DispatchReport, SentItem


def test_the_report_counts_every_send_but_lists_a_bounded_number() -> None:
    report = DispatchReport()
    at = datetime(2026, 3, 2, 12, tzinfo=UTC)
    for n in range(SENT_DETAIL_LIMIT + 250):
        report.add_sent(SentItem(f"r{n}@example.com", "week-1", "main", "UTC", at))
    assert report.sent_count == SENT_DETAIL_LIMIT + 250
    assert len(report.sent) == SENT_DETAIL_LIMIT
    assert report.sent[0].email == "r0@example.com"
    assert not report.nothing_happened


def test_a_batch_lists_only_what_the_pass_has_room_for() -> None:
    at = datetime(2026, 3, 2, 12, tzinfo=UTC)
    report = DispatchReport()
    for n in range(SENT_DETAIL_LIMIT - 3):
        report.add_sent(SentItem(f"r{n}@example.com", "week-1", "main", "UTC", at))
    part = DispatchReport(sent_room=SENT_DETAIL_LIMIT - len(report.sent))
    for n in range(10):
        report_item = SentItem(f"batch{n}@example.com", "week-1", "main", "UTC", at)
        part.add_sent(report_item)
    assert len(part.sent) == 3 and part.sent_count == 10 and not part.lists_more
    report.merge(part)
    assert report.sent_count == SENT_DETAIL_LIMIT + 7 and len(report.sent) == SENT_DETAIL_LIMIT
    assert report.sent[-1].email == "batch2@example.com"

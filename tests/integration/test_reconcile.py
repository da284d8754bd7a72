"""Unknown emails settled by asking SendGrid's Email Activity API (DRIP_SENDGRID_ACTIVITY=1),
against the stand-in, which answers from what it actually accepted.

What SendGrid holds of an unanswered batch is `sent`; the rest it never took, so it goes
once more. While SendGrid cannot be asked (429, 5xx) nothing is sent again.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from drip.clock import FixedClock
from drip.runtime import Drip
from tests.integration.test_sendgrid_delivery import KEY, join_many, sendgrid_drip
from tests.support.sendgrid_standin import SendGridStandIn


def week(drip: Drip, step: str = "week-1") -> Counter[str]:
    return Counter(r.state for r in drip.store.deliveries() if r.step_key == step)


def two_unknown_batches(drip: Drip, server: SendGridStandIn) -> list[str]:
    """Six emails in two requests, both unanswered: SendGrid took the first, not the second."""
    emails = join_many(drip, 6)
    server.drop_next(count=1, record=True)
    server.drop_next(count=1, record=False)
    report = drip.dispatcher().run_once()
    assert report.unknown == 6 and week(drip) == {"unknown": 6}
    return emails


def test_the_reaper_asks_sendgrid_once_the_settle_delay_has_passed(
    tmp_path: Path, database_url: str, clock: FixedClock
) -> None:
    with SendGridStandIn(api_key=KEY) as server:
        drip = sendgrid_drip(tmp_path, database_url, clock, server.url, batch_size=3,
                             sendgrid_activity=True, sendgrid_settle_seconds=900)
        emails = two_unknown_batches(drip, server)
        dispatcher = drip.dispatcher()
        clock.advance(minutes=10)
        dispatcher.run_once()
        assert server.activity_queries == []  # the activity feed lags: not yet
        clock.advance(minutes=6)
        for _ in range(3):  # one query a pass at most, a minute apart here
            dispatcher.run_once()
            clock.advance(minutes=1)
        assert len(server.activity_queries) == 2 == len(set(server.activity_queries))
        assert week(drip) == {"sent": 6}
        accepted = Counter((p["to_email"], p["custom_args"]["step_key"])
                           for p in server.personalizations)
        assert {e for e, step in accepted if step == "week-1"} == set(emails)
        assert all(n == 1 for n in accepted.values()), "a recipient got a step twice"
        # every enrollment has its next email planned once, after the week-1 that went
        pending = Counter(p.enrollment_id for p in drip.store.pending_deliveries())
        assert sorted(pending.values()) == [1] * 6
        server.assert_no_violations()
        drip.close()


def test_nothing_is_sent_again_while_sendgrid_cannot_be_asked(
    tmp_path: Path, database_url: str, clock: FixedClock
) -> None:
    with SendGridStandIn(api_key=KEY) as server:
        drip = sendgrid_drip(tmp_path, database_url, clock, server.url, batch_size=3,
                             sendgrid_activity=True, sendgrid_settle_seconds=900)
        two_unknown_batches(drip, server)
        server.fail_activity_next(429, count=2)
        server.fail_activity_next(503, count=2)
        dispatcher = drip.dispatcher()
        clock.advance(minutes=16)
        for _ in range(4):
            dispatcher.run_once()
            clock.advance(minutes=1)
        assert len(server.activity_queries) == 4
        assert week(drip) == {"unknown": 6}
        assert len(server.personalizations) == 3  # only what SendGrid took the first time
        for _ in range(3):
            dispatcher.run_once()
            clock.advance(minutes=1)
        assert week(drip) == {"sent": 6}
        assert Counter(server.accepted_emails()).most_common(1)[0][1] == 1
        drip.close()


def test_without_the_activity_api_unknowns_wait_for_events(
    tmp_path: Path, database_url: str, clock: FixedClock
) -> None:
    with SendGridStandIn(api_key=KEY) as server:
        drip = sendgrid_drip(tmp_path, database_url, clock, server.url, batch_size=3)
        two_unknown_batches(drip, server)
        clock.advance(hours=1)
        drip.dispatcher().run_once()
        assert server.activity_queries == [] and week(drip) == {"unknown": 6}
        drip.close()

"""The operator's and the coach's reports over one runner's whole journey (SQLite and
PostgreSQL): `drip stats` gives each kind of email its own row, and the digest as of a
moment counts nothing that happened after it."""

from __future__ import annotations

from datetime import timedelta

from drip import checkpoints, digest, stats
from drip.clock import FixedClock
from drip.planner import NOT_YET, PASSED
from drip.runtime import Drip
from drip.subscriptions import enroll


def live_to_graduation(drip: Drip, clock: FixedClock) -> None:
    """Ana answers every email as it arrives, "not yet" once on week 2, and graduates."""
    enroll(drip.store, drip.library, email="ana@example.com", sequence_key="pht-7-week",
           now=clock.now(), timezone="Europe/London")
    dispatcher = drip.dispatcher()
    dispatcher.run_once()
    answered: set[int] = set()
    for _ in range(30):  # every email answered as it arrives: week 2 once "not yet"
        rows = drip.store.deliveries(email="ana@example.com")
        for row in rows:
            if row.state == "sent" and row.id not in answered and row.variant in (
                    "main", "repeat"):
                answered.add(row.id)
                choice = NOT_YET if (row.step_key, row.variant) == ("week-2", "main") \
                    else PASSED
                checkpoints.answer(drip.store, drip.library, row.id, choice, clock.now())
        pending = [r for r in drip.store.deliveries(email="ana@example.com")
                   if r.state == "scheduled"]
        if not pending:
            break
        clock.at = max(clock.now(), pending[0].due_at)
        dispatcher.run_once()
    sent = [(r.step_key, r.variant) for r in drip.store.deliveries(email="ana@example.com")
            if r.state == "sent"]
    assert ("week-2", "repeat") in sent and ("week-7", "graduated") in sent, sent


def test_each_kind_of_email_has_its_own_row(drip: Drip, clock: FixedClock) -> None:
    live_to_graduation(drip, clock)

    (funnel,) = stats.funnels(drip.store, drip.library, "pht-7-week")
    rows = {(s.step_key, s.kind): s for s in funnel.steps}
    week2, repeat = rows[("week-2", "main")], rows[("week-2", "repeat")]
    assert (week2.sent, week2.not_yet, week2.unanswered) == (1, 1, 0)
    assert (repeat.sent, repeat.passed, repeat.unanswered, repeat.label) == (1, 1, 0, "repeat")
    week7, graduation = rows[("week-7", "main")], rows[("week-7", "graduated")]
    assert (week7.sent, week7.passed, week7.unanswered) == (1, 1, 0)
    # the graduation email asks nothing: no "no answer" to count
    assert (graduation.sent, graduation.checkpoint, graduation.unanswered,
            graduation.label) == (1, False, 0, "graduation")
    # the main row of every step is listed, sent or not; other kinds only once sent
    assert [s.step_key for s in funnel.steps if s.kind == "main"] == list(
        drip.library.sequence("pht-7-week").step_keys)


def test_the_digest_as_of_a_moment_leaves_out_what_came_after(drip: Drip,
                                                              clock: FixedClock) -> None:
    started = clock.now()
    live_to_graduation(drip, clock)
    week3 = next(r.sent_at for r in drip.store.deliveries(email="ana@example.com")
                 if (r.step_key, r.variant) == ("week-3", "main"))
    assert week3 is not None
    then = digest.gather(drip.store, drip.library, week3 + timedelta(hours=1))
    (pht,) = [s for s in then.sequences if s.key == "pht-7-week"]
    assert pht.graduated == [] and pht.by_week == [("Week 3", 1)]
    after = digest.gather(drip.store, drip.library, clock.now())
    (pht,) = [s for s in after.sequences if s.key == "pht-7-week"]
    assert [p.email for p in pht.graduated] == ["ana@example.com"]
    before = digest.gather(drip.store, drip.library, started - timedelta(days=1))
    assert [s.by_week for s in before.sequences if s.key == "pht-7-week"] == [[]]

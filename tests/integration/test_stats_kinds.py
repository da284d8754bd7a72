"""`drip stats` gives each kind of email its own row: a graduation is not a week-7 email
left unanswered, and a repeat is not the weekly email (SQLite and PostgreSQL)."""

from __future__ import annotations

from drip import checkpoints, stats
from drip.clock import FixedClock
from drip.planner import NOT_YET, PASSED
from drip.runtime import Drip
from drip.subscriptions import enroll


def test_each_kind_of_email_has_its_own_row(drip: Drip, clock: FixedClock) -> None:
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

"""What the experiments have shown: each split test's variants and decision (`drip stats
--tests`), the nudge holdout's purchase rates and the clicks per link (`drip stats`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from drip.experiments.assignment import held_out
from drip.experiments.statistics import Arm, Difference, judge, label, wald_interval
from drip.sequence import Library, Sequence, SplitTest, Step
from drip.store import LinkClicks, Store


@dataclass(frozen=True)
class VariantResult:
    key: str
    sent: int
    count: int
    rate: float


@dataclass(frozen=True)
class SplitResult:
    """One split test: its variants (the first is the control) and what they show."""

    sequence_key: str
    step_key: str
    name: str
    metric: str
    min_per_variant: int
    decision: str
    leader: str | None
    variants: list[VariantResult]
    differences: list[Difference]
    #: The variant everyone gets now (`winner: auto`), and since when.
    sent_to_everyone: str | None = None
    since: datetime | None = None




@dataclass(frozen=True)
class HoldoutResult:
    """Purchases of the offered products by enrollments without offers and with them."""

    sequence_key: str
    share: float
    holdout: int
    holdout_bought: int
    exposed: int
    exposed_bought: int
    #: The exposed rate minus the holdout's, with its 95% interval (one look).
    difference: float
    low: float
    high: float


def split_results(store: Store, library: Library, now: datetime,
                 sequence_key: str | None = None) -> list[SplitResult]:
    """Every split test of one sequence (or all). A `winner: auto` test whose leader is now
    clear has the leader recorded at `now`: every email of its step after that carries it."""
    leaders = {(r.sequence_key, r.test_name): r for r in store.split_leaders()}
    results = []
    for sequence in _sequences(library, sequence_key):
        for step, test in _tests(sequence):
            counted = {c.variant: c for c in store.split_counts(sequence.key, test.name,
                                                               test.metric)}
            arms = [Arm(v.key, counted[v.key].sent if v.key in counted else 0,
                        counted[v.key].count if v.key in counted else 0)
                    for v in test.variants]
            verdict = judge(arms, test.min_per_variant)
            leader = leaders.get((sequence.key, test.name))
            if leader is None and test.winner == "auto" and verdict.leader is not None:
                detail = (f"{verdict.decision} on {test.metric}: "
                          + ", ".join(f"{label(a.key)} {a.count}/{a.sent}" for a in arms))
                if store.record_leader(sequence.key, test.name, verdict.leader, now, detail):
                    leaders = {(r.sequence_key, r.test_name): r for r in store.split_leaders()}
                    leader = leaders.get((sequence.key, test.name))
            results.append(SplitResult(
                sequence.key, step.key, test.name, test.metric, test.min_per_variant,
                verdict.decision, verdict.leader,
                [VariantResult(a.key, a.sent, a.count, a.rate) for a in arms],
                verdict.differences,
                sent_to_everyone=leader.variant if leader else None,
                since=leader.decided_at if leader else None))
    return results


def holdout_result(store: Store, library: Library, sequence_key: str) -> HoldoutResult | None:
    """The holdout's purchase rate against the exposed one, if the sequence has a holdout."""
    sequence = library.sequence(sequence_key)
    if sequence.nudges.holdout <= 0:
        return None
    rows = store.holdout_purchases(sequence.key, [o.key for o in library.offers.offers])
    held = [r for r in rows if held_out(sequence, r.enrollment_id)]
    exposed = [r for r in rows if not held_out(sequence, r.enrollment_id)]
    holdout_arm = Arm("holdout", len(held), sum(r.bought for r in held))
    exposed_arm = Arm("exposed", len(exposed), sum(r.bought for r in exposed))
    low, high = wald_interval(holdout_arm, exposed_arm)
    return HoldoutResult(sequence.key, sequence.nudges.holdout, holdout_arm.sent,
                         holdout_arm.count, exposed_arm.sent, exposed_arm.count,
                         exposed_arm.rate - holdout_arm.rate, low, high)


def link_clicks(store: Store, library: Library, sequence_key: str) -> list[LinkClicks]:
    """The people who clicked each link of the sequence's emails, scanners aside."""
    return store.link_clicks(library.sequence(sequence_key).key)


def _sequences(library: Library, sequence_key: str | None) -> list[Sequence]:
    if sequence_key:
        return [library.sequence(sequence_key)]
    return [library.sequences[key] for key in sorted(library.sequences)]


def _tests(sequence: Sequence) -> list[tuple[Step, SplitTest]]:
    return [(step, step.test) for step in sequence.steps if step.test is not None]

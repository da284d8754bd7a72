"""The split-test statistics against reference computations (statsmodels for the interval,
scipy's numerical integration for the mSPRT), and a seeded simulation of someone looking
every day at a test with no real difference: drip names a winner at most 5% of the time."""

from __future__ import annotations

import math
import random

import pytest
from scipy import integrate, stats
from statsmodels.stats.proportion import confint_proportions_2indep

from drip.experiments.statistics import (
    ALPHA,
    COLLECTING,
    MIXTURE_SD,
    NO_CLEAR_DIFFERENCE,
    Arm,
    judge,
    sequential_interval,
    wald_interval,
)

FIXED = [  # (control count, sent, variant count, sent)
    (40, 200, 55, 210),
    (120, 1000, 150, 1000),
    (3, 250, 9, 240),
    (500, 2000, 480, 2100),
    (0, 300, 4, 300),
]


@pytest.mark.parametrize(("ca", "na", "cb", "nb"), FIXED)
def test_the_interval_is_statsmodels_wald_interval(ca: int, na: int, cb: int, nb: int) -> None:
    low, high = wald_interval(Arm("a", na, ca), Arm("b", nb, cb))
    ref_low, ref_high = confint_proportions_2indep(cb, nb, ca, na, method="wald",
                                                   compare="diff", alpha=0.05)
    assert low == pytest.approx(ref_low, abs=1e-12)
    assert high == pytest.approx(ref_high, abs=1e-12)


def msprt_statistic(difference: float, variance: float, hypothesis: float) -> float:
    """The mixture likelihood ratio of Johari et al. computed from its definition: the
    normal likelihood of the observed difference averaged over N(hypothesis, t²) effects,
    over its likelihood at the hypothesis, integrated numerically."""
    sd = math.sqrt(variance)

    def ratio(effect: float) -> float:
        return float(stats.norm.pdf(difference, effect, sd) / stats.norm.pdf(
            difference, hypothesis, sd) * stats.norm.pdf(effect, hypothesis, MIXTURE_SD))

    value, _ = integrate.quad(ratio, hypothesis - 12 * MIXTURE_SD, hypothesis + 12 * MIXTURE_SD,
                              points=[difference], limit=200)
    return float(value)


@pytest.mark.parametrize(("ca", "na", "cb", "nb"), FIXED)
def test_the_sequential_interval_is_where_the_msprt_rejects(ca: int, na: int, cb: int,
                                                            nb: int) -> None:
    control, variant = Arm("a", na, ca), Arm("b", nb, cb)
    low, high = sequential_interval(control, variant)
    smooth_a, smooth_b = (ca + 1) / (na + 2), (cb + 1) / (nb + 2)
    variance = smooth_a * (1 - smooth_a) / na + smooth_b * (1 - smooth_b) / nb
    difference = variant.rate - control.rate
    for edge in (low, high):
        assert msprt_statistic(difference, variance, edge) == pytest.approx(1 / ALPHA, rel=1e-6)
    assert msprt_statistic(difference, variance, difference) < 1 / ALPHA  # inside: kept
    # wider than the one-look interval: the price of looking every day
    wald_low, wald_high = wald_interval(control, variant)
    assert low < wald_low and high > wald_high


def test_the_decision_on_fixed_data() -> None:
    # below min_per_variant: never a leader, however clear
    assert judge([Arm("a", 150, 15), Arm("b", 150, 90)], 200).decision == COLLECTING
    clear = judge([Arm("a", 1000, 100), Arm("b", 1000, 200)], 200)
    assert (clear.decision, clear.leader) == ("B leads", "b")
    # the one-look interval excludes 0 here, the always-valid one does not: no winner yet
    close = judge([Arm("a", 1000, 100), Arm("b", 1000, 130)], 200)
    (difference,) = close.differences
    assert difference.low > 0 and difference.sequential_low < 0
    assert (close.decision, close.leader) == (NO_CLEAR_DIFFERENCE, None)
    control_wins = judge([Arm("a", 1000, 300), Arm("b", 1000, 150)], 200)
    assert (control_wins.decision, control_wins.leader) == ("A leads", "a")
    three = judge([Arm("a", 2000, 200), Arm("b", 2000, 205), Arm("c", 2000, 400)], 200)
    assert (three.decision, three.leader) == ("C leads", "c")


def simulate(days: int, per_day: int, control: float, variant: float, tests: int,
             seed: int, decide: str) -> float:
    """The share of tests in which a winner was named on some day, looking every day."""
    rng = random.Random(seed)
    named = 0
    for _ in range(tests):
        na = nb = ca = cb = 0
        for _ in range(days):
            na, nb = na + per_day, nb + per_day
            ca += sum(rng.random() < control for _ in range(per_day))
            cb += sum(rng.random() < variant for _ in range(per_day))
            a, b = Arm("a", na, ca), Arm("b", nb, cb)
            if decide == "drip":
                won = judge([a, b], 200).leader is not None
            else:  # the naive way: the one-look interval, checked every day
                low, high = wald_interval(a, b)
                won = min(na, nb) >= 200 and (low > 0 or high < 0)
            if won:
                named += 1
                break
    return named / tests


def test_looking_every_day_at_no_difference_names_a_winner_at_most_5_percent_of_the_time(
        ) -> None:
    # 600 tests, each looked at daily for 60 days with 20 new enrollments per variant a day
    rate = simulate(days=60, per_day=20, control=0.2, variant=0.2, tests=600, seed=2021,
                    decide="drip")
    assert rate <= 0.05
    # the same looks with the one-look interval would name a winner far more often
    naive = simulate(days=60, per_day=20, control=0.2, variant=0.2, tests=600, seed=2021,
                     decide="naive")
    assert naive > 0.10


def test_a_real_difference_is_found() -> None:
    rate = simulate(days=60, per_day=20, control=0.2, variant=0.3, tests=100, seed=7,
                    decide="drip")
    assert rate > 0.9

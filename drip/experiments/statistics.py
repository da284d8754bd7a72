"""Judging a split test honestly: a 95% interval for each difference, and a decision that
stays valid however often someone looks. Pure arithmetic over counts.

The interval shown is the usual (Wald) 95% interval of the difference of two rates: it is
right for one look at a fixed sample size, and wrong for a winner picked by looking every
day. So the decision uses an always-valid confidence sequence instead: the normal-mixture
boundary of the mixture sequential probability ratio test (mSPRT) of Johari, Koomen,
Pekelis and Walsh, "Always valid inference: continuous monitoring of A/B tests"
(Operations Research 70(3), 2022), the boundary Robbins' normal mixture gives in Howard,
Ramdas, McAuliffe and Sekhon, "Time-uniform, nonparametric, nonasymptotic confidence
sequences" (Annals of Statistics 49(2), 2021). With probability 95% it holds the true
difference at every look at once, so "B leads" is said of a null effect at most 5% of the
time even if someone runs `drip stats --tests` every day (tests/unit/test_experiment_
statistics.py simulates that). No leader is named below `min_per_variant` either.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

LEVEL = 0.95
ALPHA = 1 - LEVEL
#: The spread of the effects the mixture expects (a standard deviation of 5 percentage
#: points): the sequence is tightest where differences of about that size are decided.
MIXTURE_SD = 0.05
COLLECTING = "collecting"
NO_CLEAR_DIFFERENCE = "no clear difference"


@dataclass(frozen=True)
class Arm:
    """One variant's numbers: enrollments that got its email, and how many did the metric."""

    key: str
    sent: int
    count: int

    @property
    def rate(self) -> float:
        return self.count / self.sent if self.sent else 0.0


@dataclass(frozen=True)
class Difference:
    """A variant against the first one (the control): its rate minus the control's."""

    key: str
    difference: float
    #: The 95% interval for one look at this sample size (Wald).
    low: float
    high: float
    #: The always-valid 95% confidence sequence the decision uses (mSPRT).
    sequential_low: float
    sequential_high: float


@dataclass(frozen=True)
class Verdict:
    decision: str
    leader: str | None
    differences: list[Difference]


def wald_interval(control: Arm, variant: Arm, level: float = LEVEL) -> tuple[float, float]:
    """The fixed-sample interval of `variant.rate - control.rate`."""
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    difference = variant.rate - control.rate
    spread = z * math.sqrt(_variance(control.rate, control.sent)
                           + _variance(variant.rate, variant.sent))
    return difference - spread, difference + spread


def sequential_interval(control: Arm, variant: Arm, alpha: float = ALPHA,
                        mixture_sd: float = MIXTURE_SD) -> tuple[float, float]:
    """The always-valid interval of `variant.rate - control.rate`: the differences the
    mSPRT with a normal mixture N(0, mixture_sd²) would not reject at level `alpha`.

    With V the variance of the estimated difference and t² = mixture_sd², the mSPRT
    statistic is sqrt(V / (V + t²)) * exp(t² d² / (2 V (V + t²))) for a distance d from
    the hypothesised difference; it reaches 1/alpha where
    d² = V (V + t²) / t² * log((V + t²) / (V alpha²)).
    The variance uses (count + 1) / (sent + 2), so an arm with no successes yet still has
    some spread instead of a zero-width interval.
    """
    if not control.sent or not variant.sent:
        return -1.0, 1.0
    variance = (_variance(_smoothed(control), control.sent)
                + _variance(_smoothed(variant), variant.sent))
    spread2 = mixture_sd ** 2
    half = math.sqrt(variance * (variance + spread2) / spread2
                     * math.log((variance + spread2) / (variance * alpha ** 2)))
    difference = variant.rate - control.rate
    return max(difference - half, -1.0), min(difference + half, 1.0)


def judge(arms: Sequence[Arm], min_per_variant: int) -> Verdict:
    """The decision for a test's variants (the first is the control): "collecting" until
    every variant has `min_per_variant` enrollments, then "<KEY> leads" if the always-valid
    intervals single one out (each against the control, the level split between them),
    else "no clear difference"."""
    control, others = arms[0], list(arms[1:])
    alpha = ALPHA / max(len(others), 1)
    differences = []
    for arm in others:
        low, high = wald_interval(control, arm)
        s_low, s_high = sequential_interval(control, arm, alpha)
        differences.append(Difference(arm.key, arm.rate - control.rate, low, high,
                                      s_low, s_high))
    if any(arm.sent < min_per_variant for arm in arms):
        return Verdict(COLLECTING, None, differences)
    better = [d for d in differences if d.sequential_low > 0]
    if better:
        leader = max(better, key=lambda d: d.difference).key
    elif differences and all(d.sequential_high < 0 for d in differences):
        leader = control.key
    else:
        return Verdict(NO_CLEAR_DIFFERENCE, None, differences)
    return Verdict(f"{label(leader)} leads", leader, differences)


def label(key: str) -> str:
    """A variant as the report names it: "B" for b, a longer key as it is."""
    return key.upper() if len(key) <= 2 else key


def _smoothed(arm: Arm) -> float:
    return (arm.count + 1) / (arm.sent + 2)


def _variance(rate: float, sent: int) -> float:
    return rate * (1 - rate) / sent if sent else 0.0

"""Who gets which variant of a split test, and who is in the nudge holdout. Pure.

Both are a hash of the enrollment and the test's name, so an enrollment gets the same
variant in every email, on every worker, after every restart, and nothing is stored to
decide it. Only the test's named fields (subject, preheader, template) differ: the planner
never sees the assignment, so no runner's steps, weeks or checkpoints change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import NamedTuple

from drip.planner import base_variant, branch_of
from drip.sequence import Sequence, SplitTest

#: The only email of a step a test varies: its main weekly email.
TESTED = "main"


class Assignment(NamedTuple):
    """The variant of one split test an email carries."""

    test: str
    variant: str


def unit(enrollment_id: int, name: str) -> float:
    """A number in [0, 1) fixed by the enrollment and `name`, spread evenly over enrollments."""
    digest = hashlib.sha256(f"{name}\0{enrollment_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def hash_name(sequence: Sequence, test: SplitTest) -> str:
    """What a test's assignment hashes on: two sequences may name a test alike."""
    return f"{sequence.key}/{test.name}"


def choose_variant(sequence: Sequence, test: SplitTest, enrollment_id: int) -> str:
    """The variant this enrollment gets, in proportion to the variants' weights."""
    weights = test.weights
    point = unit(enrollment_id, hash_name(sequence, test)) * sum(weights)
    for variant, weight in zip(test.variants, weights, strict=True):
        point -= weight
        if point < 0:
            return variant.key
    return test.variants[-1].key


def assignment(sequence: Sequence, step_key: str, variant: str, enrollment_id: int,
               winners: Mapping[tuple[str, str], str] | None = None) -> Assignment | None:
    """The split-test variant of this email, if it is the main email of a step with a test
    (with or without the no-answer note). A test whose leader was sent to everyone after
    (`winner: auto`, `winners[(sequence, test)]`) gives its leader to every new email."""
    # a tag's branch of the main email (drip.tags) is its own email, outside the test
    if (base_variant(variant) != TESTED or branch_of(variant) is not None
            or step_key not in sequence.step_keys):
        return None
    test = sequence.step(step_key).test
    if test is None:
        return None
    won = (winners or {}).get((sequence.key, test.name))
    if won is not None and test.variant(won) is not None:
        return Assignment(test.name, won)
    return Assignment(test.name, choose_variant(sequence, test, enrollment_id))


def held_out(sequence: Sequence, enrollment_id: int) -> bool:
    """Whether this enrollment is in the nudge holdout (`nudges.holdout`): no offers ever."""
    share = sequence.nudges.holdout
    return share > 0 and unit(enrollment_id, f"{sequence.key}/nudges.holdout") < share

"""Tags: labels on a subscriber, and what they do in a sequence. Pure rules.

Tags come from purchases (the catalog), imports (a `tags` column), the API, checkpoint
answers (`on_answer`) and operators (`drip tag add`). A sequence may end on one
(`goals: [{tag: clinician-referral, stops: sequence}]`) and a step may send another version
of its main email to subscribers with one (`branches: [{when: {tag: struggling}, ...}]`).
A tag never moves anyone through the program: gates still wait for an explicit "passed".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Set
from dataclasses import dataclass
from typing import Any

from drip.errors import InvalidInput
from drip.planner import BRANCH, REMINDER, base_variant, branch_of, has_reminder
from drip.sequence import TAG, Library, Sequence

#: Between tags in one CSV cell or form field.
_SEPARATORS = re.compile(r"[,;|]")


def clean_tag(value: str, *, field: str = "tag") -> str:
    """A tag as drip keeps it (trimmed, lower case), or InvalidInput saying how to write it."""
    # "VIP Customer" from a shop's export is vip-customer; quotes from Mailchimp's go
    tag = (re.sub(r"[\s_]+", "-", value.strip().strip("\"'").strip().lower())
           if isinstance(value, str) else "")
    if not TAG.match(tag):
        shown = str(value)[:60]
        raise InvalidInput(f"{field}: '{shown}' is not a tag; write lower-case letters, digits "
                           "and hyphens, at most 40, like struggling or clinician-referral.")
    return tag


def parse_tags(value: Any, *, field: str = "tags") -> list[str]:
    """Tags from a CSV cell ("a, b"), a list (the API) or nothing; each one checked."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        items: Iterable[Any] = _SEPARATORS.split(value)
    elif isinstance(value, list):
        items = value
    else:
        raise InvalidInput(f"{field}: write a list of tags, like [\"struggling\"].")
    tags: list[str] = []
    for item in items:
        if isinstance(item, str) and not item.strip() and not isinstance(value, list):
            continue  # "a, , b" or a trailing comma in a CSV cell
        if not isinstance(item, str):
            raise InvalidInput(f"{field}: each tag must be text, like \"struggling\".")
        tag = clean_tag(item, field=field)
        if tag not in tags:
            tags.append(tag)
    return tags


def exit_tag(sequence: Sequence, tags: Set[str]) -> str | None:
    """The tag whose goal ends this sequence for a subscriber who has it."""
    return next((g.tag for g in sequence.goals
                 if g.tag is not None and g.stops == "sequence" and g.tag in tags), None)


def tags_stop_nudges(sequence: Sequence, tags: Set[str]) -> bool:
    """Whether a tag goal ends the offers in this sequence for a subscriber who has it."""
    return any(g.tag is not None and g.stops == "nudges" and g.tag in tags
               for g in sequence.goals)


def branch_variant(sequence: Sequence, step_key: str, variant: str, tags: Set[str]) -> str:
    """The variant to send: a main email becomes the step's first branch whose tag the
    subscriber has ("main/struggling", keeping a "+reminder"); anything else is unchanged.
    Only the content changes, so the checkpoint and where it leads stay the step's own."""
    if base_variant(variant) != "main" or branch_of(variant) is not None or not tags:
        return variant
    if step_key not in sequence.step_keys:
        return variant
    for branch in sequence.step(step_key).branches:
        if branch.when.tag in tags:
            return f"main{BRANCH}{branch.when.tag}" + (REMINDER if has_reminder(variant) else "")
    return variant


def answer_tags(sequence: Sequence, step_key: str, answer: str) -> list[str]:
    """The tags a checkpoint answer on `step_key` sets (its `on_answer`)."""
    if step_key not in sequence.step_keys:
        return []
    checkpoint = sequence.step(step_key).checkpoint
    return checkpoint.on_answer.tags_for(answer) if checkpoint is not None else []


# --- for lint: which tags can ever be set ----------------------------------------------


@dataclass(frozen=True)
class TagUse:
    """A place in a sequence file that reads a tag: a goal or a branch."""

    sequence_key: str
    tag: str
    loc: tuple[Any, ...]


def tag_uses(sequence: Sequence) -> Iterator[TagUse]:
    for index, goal in enumerate(sequence.goals):
        if goal.tag is not None:
            yield TagUse(sequence.key, goal.tag, ("goals", index, "tag"))
    for s_index, step in enumerate(sequence.steps):
        for b_index, branch in enumerate(step.branches):
            yield TagUse(sequence.key, branch.when.tag,
                         ("steps", s_index, "branches", b_index, "when", "tag"))


def settable_tags(library: Library, catalog_tags: Iterable[str]) -> set[str]:
    """Every tag something in the files can set: a product in the catalog, a checkpoint
    answer, or a sequence's `manual_tags` (the ones the coach sets by hand or imports)."""
    tags = {t.strip().lower() for t in catalog_tags}
    for sequence in library.sequences.values():
        tags.update(sequence.manual_tags)
        for step in sequence.steps:
            if step.checkpoint is not None:
                tags.update(a.tag for a in step.checkpoint.on_answer.passed)
                tags.update(a.tag for a in step.checkpoint.on_answer.not_yet)
    return tags

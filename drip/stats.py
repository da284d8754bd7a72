"""The funnel of a sequence: per step, how many emails went out, arrived, were opened and
clicked, and how the checkpoints were answered; per offer, clicks and purchases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drip.planner import ASKING, CHECKPOINT_REMINDER, WAITING, base_variant
from drip.sequence import Library
from drip.store import StepCounts, Store

#: Each kind of email a step sends, in the order a funnel lists them, with its name. A
#: "+reminder" email (the no-answer note) counts as the kind it is a note on.
KINDS = {"main": "weekly", "repeat": "repeat", WAITING: "waiting",
         "see-a-clinician": "see a clinician", CHECKPOINT_REMINDER: "checkpoint reminder",
         "graduated": "graduation"}


@dataclass(frozen=True)
class StepFunnel:
    step_key: str
    week: int | None
    #: main, repeat, waiting, see-a-clinician, checkpoint-reminder or graduated
    kind: str
    sent: int
    delivered: int
    opened: int
    clicked: int
    checkpoint: bool
    passed: int
    not_yet: int

    @property
    def label(self) -> str:
        return KINDS.get(self.kind, self.kind)

    @property
    def answered(self) -> int:
        return self.passed + self.not_yet

    @property
    def unanswered(self) -> int:
        return max(self.sent - self.answered, 0) if self.checkpoint else 0


@dataclass(frozen=True)
class OfferFunnel:
    offer: str
    name: str
    shown: int  # emails that carried it
    people: int  # people it was nudged to (the same person may see it again after a cooldown)
    clicks: int
    conversions: int  # people who bought the offer after it was first nudged to them


@dataclass(frozen=True)
class Funnel:
    sequence_key: str
    name: str
    steps: list[StepFunnel]
    offers: list[OfferFunnel]


def funnels(store: Store, library: Library, sequence_key: str | None = None) -> list[Funnel]:
    """The funnel of one sequence, or of every sequence."""
    keys = [library.sequence(sequence_key).key] if sequence_key else sorted(library.sequences)
    return [funnel(store, library, key) for key in keys]


def funnel(store: Store, library: Library, sequence_key: str) -> Funnel:
    sequence = library.sequence(sequence_key)
    # one row per step and kind of email: a graduation is not a week-7 email left
    # unanswered, and a repeat or a see-a-clinician email is not the weekly one
    counted: dict[tuple[str, str], list[StepCounts]] = {}
    for c in store.step_counts(sequence_key):
        counted.setdefault((c.step_key, base_variant(c.variant)), []).append(c)
    known = set(sequence.step_keys)
    order = [*sequence.step_keys, *sorted({step for step, _ in counted} - known)]
    steps = []
    for key in order:
        step = sequence.step(key) if key in known else None
        kinds = [k for k in KINDS if (key, k) in counted or (k == "main" and step)]
        kinds += sorted(k for s, k in counted if s == key and k not in KINDS)
        for kind in kinds:
            rows = counted.get((key, kind), [])
            passed, not_yet = sum(c.passed for c in rows), sum(c.not_yet for c in rows)
            asks = bool(step and step.checkpoint is not None) and kind in ASKING
            steps.append(StepFunnel(
                step_key=key, week=step.week if step else None, kind=kind,
                sent=sum(c.sent for c in rows), delivered=sum(c.delivered for c in rows),
                opened=sum(c.opened for c in rows), clicked=sum(c.clicked for c in rows),
                checkpoint=asks or bool(passed or not_yet), passed=passed, not_yet=not_yet,
            ))
    offers = []
    for n in sorted(store.nudge_counts(sequence_key), key=lambda n: n.offer):
        offer = library.offers.get(n.offer)
        url = offer.url if offer else None
        clicks = sum(1 for payload in n.click_payloads if _on_offer(payload, url))
        offers.append(OfferFunnel(n.offer, offer.name if offer else n.offer, n.shown,
                                  n.people, clicks, n.conversions))
    return Funnel(sequence.key, sequence.name, steps, offers)


def _on_offer(payload: dict[str, Any] | None, url: str | None) -> bool:
    """A click counts for the offer when it was on the offer's link (or the URL is unknown)."""
    clicked = (payload or {}).get("url")
    return not clicked or url is None or str(clicked).startswith(url)

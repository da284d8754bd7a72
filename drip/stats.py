"""The funnel of a sequence: per step, how many emails went out, arrived, were opened and
clicked, and how the checkpoints were answered; per offer, clicks and purchases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drip.sequence import Library
from drip.store import Store


@dataclass(frozen=True)
class StepFunnel:
    step_key: str
    week: int | None
    sent: int
    delivered: int
    opened: int
    clicked: int
    checkpoint: bool
    passed: int
    not_yet: int

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
    counted = {c.step_key: c for c in store.step_counts(sequence_key)}
    steps = []
    for key in [*sequence.step_keys, *sorted(set(counted) - set(sequence.step_keys))]:
        step = sequence.step(key) if key in sequence.step_keys else None
        c = counted.get(key)
        steps.append(StepFunnel(
            step_key=key, week=step.week if step else None, sent=c.sent if c else 0,
            delivered=c.delivered if c else 0, opened=c.opened if c else 0,
            clicked=c.clicked if c else 0,
            checkpoint=bool(step and step.checkpoint is not None) or bool(c and (c.passed
                                                                                 or c.not_yet)),
            passed=c.passed if c else 0, not_yet=c.not_yet if c else 0,
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

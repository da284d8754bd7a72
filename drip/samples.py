"""Sample subscribers for the coach's tools: emails rendered for someone who is not in the database.

lint, preview, simulate and test-send fill the shared content with these values, so
the coach sees exactly what a subscriber would, with links that lead nowhere real.
"""

from __future__ import annotations

from dataclasses import dataclass

from drip.links import Links
from drip.message import Content, Message, recipient_values
from drip.render import Sender
from drip.sequence import Sequence


@dataclass(frozen=True)
class SampleSubscriber:
    name: str
    email: str


#: One with a longish first name, one without a name (the greeting falls back).
SAMPLE_SUBSCRIBERS = (
    SampleSubscriber("Alexandra Sample", "alexandra@example.com"),
    SampleSubscriber("", "runner@example.com"),
)


def sample_values(links: Links, sequence: Sequence, subscriber: SampleSubscriber) -> dict[str, str]:
    """What a real recipient's placeholders would be filled with (ids 0: nobody real)."""
    first_name = subscriber.name.split()[0] if subscriber.name.strip() else None
    return recipient_values({
        "first_name": first_name or sequence.greeting_fallback,
        "email": subscriber.email,
        "unsubscribe_url": links.unsubscribe(0, 0),
        "pause_url": links.pause(0),
        "checkpoint_passed_url": links.checkpoint(0, "passed"),
        "checkpoint_not_yet_url": links.checkpoint(0, "not-yet"),
    })


def sample_message(content: Content, sequence: Sequence, sender: Sender, links: Links, *,
                   step_key: str, variant: str, nudge: str | None,
                   subscriber: SampleSubscriber = SAMPLE_SUBSCRIBERS[0], test: bool = False,
                   delivery_id: int = 0) -> Message:
    """One email for a sample subscriber, ready for a provider or a file."""
    return Message(
        delivery_id=delivery_id, enrollment_id=0, sequence_key=sequence.key, step_key=step_key,
        variant=variant, to_email=subscriber.email, to_name=subscriber.name,
        from_email=sender.email, from_name=sender.name, content=content,
        values=sample_values(links, sequence, subscriber), nudge=nudge, test=test,
    )

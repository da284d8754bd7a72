"""Sample subscribers for the coach's tools: emails rendered for someone who is not in the database.

lint, preview, simulate and test-send fill the shared content with these values, so
the coach sees exactly what a subscriber would, with links that lead nowhere real.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from drip.errors import NotFound
from drip.links import Links
from drip.message import Content, Message, recipient_values
from drip.planner import REPEAT_LAST, base_variant
from drip.providers.base import Provider, SendResult
from drip.render import VARIANTS, Renderer, Sender, email_spec, every_email
from drip.sequence import Library, Offers, Sequence


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
        "preferences_url": links.preferences(0),
        "checkpoint_passed_url": links.checkpoint(0, "passed"),
        "checkpoint_not_yet_url": links.checkpoint(0, "not-yet"),
        "checkpoint_repeat_url": links.checkpoint(0, REPEAT_LAST),
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


def variants_of(sequence: Sequence, step_key: str) -> list[str]:
    """The variants this step can go out as (its main email also with the no-answer note)."""
    return sorted({variant for s, key, variant, _ in every_email(Library({sequence.key: sequence},
                                                                          Offers()))
                   if key == step_key and s.key == sequence.key}, key=_variant_order)


def _variant_order(variant: str) -> tuple[int, str]:
    base = base_variant(variant)
    return (VARIANTS.index(base) if base in VARIANTS else len(VARIANTS), variant)


def render_sample(library: Library, renderer: Renderer, sender: Sender, links: Links,
                  sequence_key: str, step_key: str, variant: str = "main",
                  nudge: str | None = None, *, test: bool = False,
                  subscriber: SampleSubscriber = SAMPLE_SUBSCRIBERS[0],
                  test_variant: str | None = None) -> Message:
    """One step rendered for the sample subscriber (in `test_variant` of the step's split
    test, if given); raises NotFound for an unknown step or test variant."""
    sequence = library.sequence(sequence_key)
    if step_key not in sequence.step_keys:
        raise NotFound(f"'{sequence_key}' has no step '{step_key}'; its steps are "
                       f"{', '.join(sequence.step_keys)}.")
    if nudge is not None and library.offers.get(nudge) is None:
        raise NotFound(f"There is no offer '{nudge}'; the offers are "
                       f"{', '.join(o.key for o in library.offers.offers) or 'none'}.")
    known = variants_of(sequence, step_key)
    if variant not in known:
        close = difflib.get_close_matches(variant, known, n=1)
        raise NotFound(f"Step '{step_key}' has no '{variant}' variant; it goes out as "
                       f"{', '.join(known)}."
                       + (f" Did you mean '{close[0]}'?" if close else ""))
    email_spec(sequence, step_key, variant)
    if test_variant is not None:
        split = sequence.step(step_key).test
        keys = [v.key for v in split.variants] if split else []
        if test_variant not in keys or base_variant(variant) != "main":
            raise NotFound(f"Step '{step_key}' ({variant}) has no split-test variant "
                           f"'{test_variant}'; "
                           + (f"its test's variants are {', '.join(keys)} (of the main email)."
                              if keys else "it has no 'test:' block."))
    content = renderer.content(sequence_key, step_key, variant, nudge,
                               test_variant=test_variant)
    return sample_message(content, sequence, sender, links, step_key=step_key,
                          variant=variant, nudge=nudge, test=test, subscriber=subscriber)


def send_test(library: Library, renderer: Renderer, sender: Sender, links: Links,
              provider: Provider, *, sequence_key: str, step_key: str, to: str,
              variant: str = "main", nudge: str | None = None,
              test_variant: str | None = None) -> SendResult:
    """One step for a sample subscriber at address `to`, subject marked [TEST].

    It goes through the provider like any email but is never recorded as a delivery."""
    message = render_sample(library, renderer, sender, links, sequence_key, step_key, variant,
                            nudge, test=True,
                            subscriber=SampleSubscriber(SAMPLE_SUBSCRIBERS[0].name, to),
                            test_variant=test_variant)
    (result,) = provider.send_batch([message])
    return result

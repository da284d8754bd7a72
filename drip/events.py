"""Acting on what the email provider reports: confirm, suppress, unsubscribe, count.

Events are deduplicated on the provider's event id. Actions come first and are
idempotent; the events are stored last, in one bulk insert. So if anything fails the
webhook answers non-2xx, the provider retries, and no event is ever dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from drip import lifecycle
from drip.errors import InvalidAddress, NotFound
from drip.providers.base import EventKind, ProviderEvent
from drip.store import Store

#: Events that prove the provider accepted the email: it went out (even if it then bounced,
#: was dropped or deferred), so an `unknown` delivery they name becomes `sent`.
CONFIRMS: frozenset[EventKind] = frozenset({"processed", "delivered", "deferred", "bounced",
                                            "rejected", "dropped"})
SUPPRESSES: frozenset[EventKind] = frozenset({"bounced", "rejected", "complained"})
UNSUBSCRIBES: frozenset[EventKind] = frozenset({"unsubscribed"})


@dataclass(frozen=True)
class IngestReport:
    received: int
    new: int
    suppressed: int = 0
    unsubscribed: int = 0


def ingest(store: Store, events: Sequence[ProviderEvent], now: datetime) -> IngestReport:
    """Store the events not seen before and act on them."""
    unique = list({e.provider_event_id: e for e in reversed(events)}.values())[::-1]
    seen = store.known_event_ids(e.provider_event_id for e in unique)
    fresh = [e for e in unique if e.provider_event_id not in seen]
    suppressed = lifecycle.suppress_many(
        store, {e.email: e.detail for e in _first_per_address(fresh, SUPPRESSES)}, now)
    unsubscribed = sum(_act(lambda e: lifecycle.unsubscribe_email(store, e.email, now,
                                                                  source="provider"), e)
                       for e in _first_per_address(fresh, UNSUBSCRIBES))
    confirmed = [e.delivery_id for e in fresh if e.kind in CONFIRMS and e.delivery_id is not None]
    # `new` is what the INSERT stored, not what looked fresh: an identical batch racing
    # this one may store them first, and then each would claim them all.
    new = store.record_provider_events(fresh, confirmed, now)
    return IngestReport(len(events), new, suppressed, unsubscribed)


def _first_per_address(events: Sequence[ProviderEvent],
                       kinds: frozenset[EventKind]) -> list[ProviderEvent]:
    chosen: dict[str, ProviderEvent] = {}
    for event in events:
        if event.kind in kinds:
            chosen.setdefault(event.email.lower(), event)
    return list(chosen.values())


def _act(action: Callable[[ProviderEvent], lifecycle.Change],
         event: ProviderEvent) -> int:
    """1 if the action changed something; an address drip does not know changes nothing."""
    try:
        return int(action(event).changed)
    except (NotFound, InvalidAddress):
        return 0

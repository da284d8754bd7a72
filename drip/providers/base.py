"""The one interface every email provider implements: take a batch, say what became of each."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

from drip.message import Message

#: accepted: the provider took it. transient: try again later. permanent: it will never go.
#: unknown: the request went out but no answer came back, so it may or may not have gone.
Verdict = Literal["accepted", "transient", "permanent", "unknown"]


class SendResult(NamedTuple):
    delivery_id: int
    verdict: Verdict
    message_id: str | None = None
    reason: str | None = None
    retry_after: float | None = None
    #: The provider request it went in, for an `unknown` one: how to ask about it later.
    batch_key: str | None = None


def batch_key(delivery_ids: Iterable[int]) -> str:
    """The key of one `send_batch` call: 16 hex digits from its emails' delivery ids. The
    dispatcher records it with `sending`, and a provider that can be asked what it holds
    (ActivityFeed) sends it with every request of the batch, so the two always agree."""
    ids = ",".join(map(str, sorted(delivery_ids)))
    return hashlib.sha256(ids.encode()).hexdigest()[:16]


class Provider(Protocol):
    """Sends email. Raises SendingHalted when nothing at all may be sent (e.g. a bad API key)."""

    name: str

    def send_batch(self, messages: Sequence[Message]) -> list[SendResult]: ...

    def close(self) -> None: ...


@runtime_checkable
class ActivityFeed(Protocol):
    """A provider that can say which recipients it holds of one request (by batch key)."""

    def held(self, batch_key: str) -> set[str]: ...


@runtime_checkable
class SingleShot(Protocol):
    """A provider that retries on its own (SendGrid waits out a 429 and asks again) and
    can be told not to: `send_once` makes one request per group of the batch, at most."""

    def send_once(self, messages: Sequence[Message]) -> list[SendResult]: ...


def send_probe(provider: Provider, messages: Sequence[Message]) -> list[SendResult]:
    """A circuit's probe: one email, one request, whatever the provider would do itself."""
    if isinstance(provider, SingleShot):
        return provider.send_once(messages)
    return provider.send_batch(messages)


#: What a provider reports about an email, mapped onto one small closed vocabulary before
#: anything acts on it. `rejected` is a drop for an address that can never receive mail.
EventKind = Literal["processed", "delivered", "deferred", "bounced", "rejected", "dropped",
                    "complained", "unsubscribed", "opened", "clicked", "other"]


@dataclass(frozen=True)
class ProviderEvent:
    provider_event_id: str
    kind: EventKind
    email: str
    occurred_at: datetime
    delivery_id: int | None = None
    detail: str = ""
    payload: dict[str, Any] | None = None

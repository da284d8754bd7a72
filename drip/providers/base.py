"""The one interface every email provider implements: take a batch, say what became of each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from drip.message import Message

#: accepted: the provider took it. transient: try again later. permanent: it will never go.
#: unknown: the request went out but no answer came back, so it may or may not have gone.
Verdict = Literal["accepted", "transient", "permanent", "unknown"]


@dataclass(frozen=True)
class SendResult:
    delivery_id: int
    verdict: Verdict
    message_id: str | None = None
    reason: str | None = None
    retry_after: float | None = None


class Provider(Protocol):
    """Sends email. Raises SendingHalted when nothing at all may be sent (e.g. a bad API key)."""

    name: str

    def send_batch(self, messages: Sequence[Message]) -> list[SendResult]: ...

    def close(self) -> None: ...

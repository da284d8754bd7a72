"""The signed links in every email: unsubscribe, pause and checkpoint answers."""

from __future__ import annotations

from drip.tokens import Signer


class Links:
    def __init__(self, base_url: str, signer: Signer) -> None:
        self.base_url = base_url.rstrip("/")
        self.signer = signer

    def unsubscribe(self, subscriber_id: int, enrollment_id: int) -> str:
        return f"{self.base_url}/u/{self.signer.make('unsubscribe', subscriber_id, enrollment_id)}"

    def pause(self, enrollment_id: int) -> str:
        return f"{self.base_url}/p/{self.signer.make('pause', enrollment_id)}"

    def checkpoint(self, delivery_id: int, answer: str) -> str:
        return f"{self.base_url}/c/{self.signer.make('checkpoint', delivery_id)}?answer={answer}"

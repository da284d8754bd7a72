"""The signed links in every email: unsubscribe, pause, checkpoint answers, clicks and
the "when do you want these?" preferences page."""

from __future__ import annotations

import functools
import hashlib

from drip.tokens import Signer


class Links:
    def __init__(self, base_url: str, signer: Signer) -> None:
        self.base_url = base_url.rstrip("/")
        self.signer = signer
        self._checkpoint_token: tuple[int, str] = (-1, "")  # no delivery has id -1

    def unsubscribe(self, subscriber_id: int, enrollment_id: int) -> str:
        return f"{self.base_url}/u/{self.signer.make('unsubscribe', subscriber_id, enrollment_id)}"

    def pause(self, enrollment_id: int, delivery_id: int | None = None) -> str:
        """The pause link of one email (`delivery_id`): it acts once, and only until a later
        email supersedes it."""
        values = (enrollment_id,) if delivery_id is None else (enrollment_id, delivery_id)
        return f"{self.base_url}/p/{self.signer.make('pause', *values)}"

    def preferences(self, subscriber_id: int) -> str:
        """The subscriber's "when do you want these?" page: their send time and day."""
        return f"{self.base_url}/w/{self.signer.make('preferences', subscriber_id)}"

    def checkpoint(self, delivery_id: int, answer: str) -> str:
        # Each email links both answers to one token: sign it once, not once per button.
        # Read the cache once into a local, so threads sharing Links never mix tokens.
        cached = self._checkpoint_token
        if cached[0] != delivery_id:
            cached = (delivery_id, self.signer.make("checkpoint", delivery_id))
            self._checkpoint_token = cached
        return f"{self.base_url}/c/{cached[1]}?answer={answer}"

    def click(self, delivery_id: int, url: str) -> str:
        """A link of one email through the click redirect (drip.experiments.clicks). The
        token carries the address's fingerprint, not the address: the redirect finds it
        among the addresses the email names, and the link stays short in plain text."""
        return f"{self.base_url}/r/{self.signer.make('click', delivery_id, link_id(url))}"


@functools.lru_cache(maxsize=4096)
def link_id(url: str) -> str:
    """A short fingerprint of a link's address (64 bits of SHA-256): enough to tell apart
    the few links of one email, which is all it is compared against."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]

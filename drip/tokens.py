"""Signed tokens for every link in an email, so a link cannot be forged or altered.

A token names its purpose (unsubscribe, checkpoint, pause, confirm, click) and carries
only ids (a click also the address it leads to); the signature is an HMAC keyed with
DRIP_SECRET_KEY, checked in constant time by itsdangerous.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import itsdangerous

from drip.errors import BadSignature

Purpose = Literal["unsubscribe", "checkpoint", "pause", "confirm", "click"]


class Signer:
    """Signs with `secret_key`; reads tokens signed with it or with any of `fallbacks`, the
    keys used before it, so a key can be changed without breaking links already in
    inboxes (set the old key in DRIP_SECRET_KEY_FALLBACKS until those links lapse)."""

    def __init__(self, secret_key: str, fallbacks: Sequence[str] = ()) -> None:
        if not secret_key:
            raise ValueError("a secret key is required to sign links")
        # itsdangerous signs with the last key and accepts any of them
        self._secrets = [*fallbacks, secret_key]
        self._serializers: dict[str, itsdangerous.URLSafeTimedSerializer] = {}

    def _serializer(self, purpose: str) -> itsdangerous.URLSafeTimedSerializer:
        serializer = self._serializers.get(purpose)
        if serializer is None:
            serializer = itsdangerous.URLSafeTimedSerializer(self._secrets,
                                                              salt=f"drip.{purpose}")
            self._serializers[purpose] = serializer
        return serializer

    def make(self, purpose: Purpose, *values: int | str) -> str:
        return str(self._serializer(purpose).dumps(list(values)))

    def read(self, purpose: Purpose, token: str, max_age: int | None = None) -> list[int | str]:
        """The values a token carries, or BadSignature if it is forged, altered or expired."""
        try:
            values = self._serializer(purpose).loads(token, max_age=max_age)
        except itsdangerous.SignatureExpired:
            raise BadSignature("This link has expired; ask for a new one.") from None
        except itsdangerous.BadData:
            raise BadSignature("This link is not valid; it may have been cut short.") from None
        if not isinstance(values, list):
            raise BadSignature("This link is not valid.")
        return values

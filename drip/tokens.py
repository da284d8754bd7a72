"""Signed tokens for every link in an email, so a link cannot be forged or altered.

A token names its purpose (unsubscribe, checkpoint, pause, confirm, click) and carries
only ids (a click also the address it leads to); the signature is an HMAC keyed with
DRIP_SECRET_KEY. Tokens are in itsdangerous' URLSafeTimedSerializer format, which reads
them (constant-time checks, key fallbacks, expiry); drip writes them itself, because
every email signs several.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from base64 import urlsafe_b64encode
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from drip.errors import BadSignature

if TYPE_CHECKING:
    import itsdangerous

Purpose = Literal["unsubscribe", "checkpoint", "pause", "confirm", "click", "preferences"]


_SHA1_BLOCK = 64


#: A string JSON writes as it is, between quotes.
_JSON_PLAIN = re.compile(r"[A-Za-z0-9_.:-]*")


def _b64(data: bytes) -> bytes:
    return urlsafe_b64encode(data).rstrip(b"=")


class _Minter:
    """Writes the tokens of one purpose, byte for byte as itsdangerous'
    URLSafeTimedSerializer would: base64(compact JSON) "." base64(timestamp) "."
    base64(HMAC-SHA1), keyed with SHA1(salt + "signer" + secret) ("django-concat").

    What itsdangerous does per call and this does once: build a signer object, derive
    its key (here the HMAC's two hashes, primed with the key and copied per token) and
    encode the timestamp (once per second). Payloads of ids skip the JSON encoder and the zlib
    attempt, which never shortens a payload this small (itsdangerous only keeps the
    compressed form when it is shorter, so the two write the same token)."""

    def __init__(self, secret_key: bytes, salt: bytes) -> None:
        # HMAC (RFC 2104) from its two padded hashes, each primed once and copied per
        # token: half the cost of copying an `hmac` object (the 20-byte key needs no hashing)
        key = hashlib.sha1(salt + b"signer" + secret_key).digest().ljust(_SHA1_BLOCK, b"\0")
        self._inner = hashlib.sha1(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha1(bytes(b ^ 0x5C for b in key))
        self._second = -1
        self._stamp = b""

    def make(self, values: Sequence[int | str]) -> str:
        if all(type(v) is int or (type(v) is str and _JSON_PLAIN.fullmatch(v))
               for v in values):
            # ids and plain words (a link's fingerprint): JSON written directly, as
            # json.dumps writes them
            payload = ("[" + ",".join(str(v) if type(v) is int else f'"{v}"' for v in values)
                       + "]").encode()
        else:  # other strings: the same JSON, never compressed (itsdangerous reads both)
            payload = json.dumps(list(values), separators=(",", ":")).encode()
        second = int(time.time())
        if second != self._second:  # two threads may race here; both write the same value
            stamp = b"." + _b64(second.to_bytes(8, "big").lstrip(b"\x00"))
            self._stamp, self._second = stamp, second
        value = _b64(payload) + self._stamp
        inner = self._inner.copy()
        inner.update(value)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return (value + b"." + _b64(outer.digest())).decode()


class Signer:
    """Signs with `secret_key`; reads tokens signed with it or with any of `fallbacks`, the
    keys used before it, so a key can be changed without breaking links already in
    inboxes (set the old key in DRIP_SECRET_KEY_FALLBACKS until those links lapse)."""

    def __init__(self, secret_key: str, fallbacks: Sequence[str] = ()) -> None:
        if not secret_key:
            raise ValueError("a secret key is required to sign links")
        # itsdangerous signs with the last key and accepts any of them
        self._secrets = [*fallbacks, secret_key]
        self._minters: dict[str, _Minter] = {}
        self._serializers: dict[str, itsdangerous.URLSafeTimedSerializer] = {}

    def _serializer(self, purpose: str) -> itsdangerous.URLSafeTimedSerializer:
        serializer = self._serializers.get(purpose)
        if serializer is None:
            import itsdangerous  # only reading a link needs it: a dispatch pass only writes

            serializer = itsdangerous.URLSafeTimedSerializer(self._secrets,
                                                              salt=f"drip.{purpose}")
            self._serializers[purpose] = serializer
        return serializer

    def make(self, purpose: Purpose, *values: int | str) -> str:
        minter = self._minters.get(purpose)
        if minter is None:
            minter = self._minters[purpose] = _Minter(self._secrets[-1].encode(),
                                                      f"drip.{purpose}".encode())
        return minter.make(values)

    def read(self, purpose: Purpose, token: str, max_age: int | None = None) -> list[int | str]:
        """The values a token carries, or BadSignature if it is forged, altered or expired."""
        import itsdangerous

        try:
            values = self._serializer(purpose).loads(token, max_age=max_age)
        except itsdangerous.SignatureExpired:
            raise BadSignature("This link has expired; ask for a new one.") from None
        except itsdangerous.BadData:
            raise BadSignature("This link is not valid; it may have been cut short.") from None
        if not isinstance(values, list):
            raise BadSignature("This link is not valid.")
        return values

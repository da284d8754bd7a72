"""Standard Webhooks signatures (github.com/standard-webhooks/standard-webhooks, spec.md).

The secret is `whsec_` + base64 of the key bytes. The signed content is
`{webhook-id}.{webhook-timestamp}.{body}`; the signature is `v1,` + base64 of its
HMAC-SHA256. Several signatures may be sent, space-separated (secret rotation).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from drip.errors import BadSignature, ConfigError

PREFIX = "whsec_"
TOLERANCE_SECONDS = 300


def secret_bytes(secret: str) -> bytes:
    try:
        key = base64.b64decode(secret.removeprefix(PREFIX), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise ConfigError("DRIP_WEBHOOK_SIGNING_SECRET is not a Standard Webhooks secret; set "
                          "whsec_ followed by base64, such as whsec_$(openssl rand -base64 32).")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, msg_id, timestamp, body)}


def verify(secret: str, body: bytes, msg_id: str, timestamp: str, signatures: str,
           now: float) -> None:
    """What a receiver does; drip's tests check its own posts with it (and the reference)."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        raise BadSignature("The webhook-timestamp is missing or too far from now.")
    expected = sign(secret, msg_id, int(timestamp), body)
    if not any(hmac.compare_digest(given.encode(), expected.encode())
               for given in signatures.split()):
        raise BadSignature("No webhook-signature matches the body.")

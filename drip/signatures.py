"""Checking who signed a webhook: the shop's HMAC, Stripe's scheme and SendGrid's ECDSA key.

Pure functions over the raw body, the headers' values, the secret and `now`. Each
refuses a stale timestamp (replay) and compares in constant time; every failure
raises BadSignature with a sentence that says what was wrong, and nothing else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from drip.errors import BadSignature, ConfigError

#: How far a signed timestamp may be from our clock, either way.
TOLERANCE_SECONDS = 300
#: ASCII digits only: str.isdigit() also accepts superscripts (such as "\u00b2"), which
#: int() refuses, so a header of that kind must fail here as a bad signature, not later.
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


def _timestamp(value: str | None, now: datetime, *, tolerance: int) -> int:
    if not value or not _UNIX_SECONDS.fullmatch(value.strip()):
        raise BadSignature("The request has no valid signing timestamp.")
    stamp = int(value.strip())
    if abs(now.timestamp() - stamp) > tolerance:
        raise BadSignature("The request's signing timestamp is stale; it may be a replay.")
    return stamp


def _hmac_hex(secret: str, stamp: str, body: bytes) -> str:
    signed = stamp.encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign_purchase(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Drip-Signature value a shop sends (also what the docs and tests use)."""
    return "sha256=" + _hmac_hex(secret, str(timestamp), body)


def verify_purchase(secret: str, body: bytes, timestamp: str | None, signature: str | None,
                    now: datetime, *, tolerance: int = TOLERANCE_SECONDS) -> None:
    """X-Drip-Signature: sha256=<hex HMAC-SHA256 of "<X-Drip-Timestamp>.<raw body>">."""
    if not secret:
        raise ConfigError("DRIP_WEBHOOK_SECRET is not set, so purchases cannot be verified.")
    stamp = _timestamp(timestamp, now, tolerance=tolerance)
    given = (signature or "").strip()
    if not given.startswith("sha256="):
        raise BadSignature("The request has no sha256= signature.")
    expected = sign_purchase(secret, stamp, body)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise BadSignature("The request's signature does not match its body.")


def sign_stripe(secret: str, timestamp: int, body: bytes) -> str:
    """A Stripe-Signature header value, as Stripe computes it."""
    return f"t={timestamp},v1={_hmac_hex(secret, str(timestamp), body)}"


def verify_stripe(secret: str, body: bytes, header: str | None, now: datetime, *,
                  tolerance: int = TOLERANCE_SECONDS) -> None:
    """Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">[,v1=...] (any v1 may match)."""
    if not secret:
        raise ConfigError("DRIP_STRIPE_WEBHOOK_SECRET is not set, so Stripe events cannot be "
                          "verified.")
    stamps: list[str] = []
    candidates: list[str] = []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            stamps.append(value)
        elif key == "v1":
            candidates.append(value.strip())
    if len(stamps) != 1 or not candidates:
        raise BadSignature("The Stripe-Signature header is missing or malformed.")
    stamp = _timestamp(stamps[0], now, tolerance=tolerance)
    expected = _hmac_hex(secret, str(stamp), body).encode()
    if not any(hmac.compare_digest(c.encode(), expected) for c in candidates):
        raise BadSignature("The Stripe signature does not match the body.")


def sendgrid_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """The verification key from SendGrid's settings page: base64 DER, or a PEM block."""
    if not text.strip():
        raise ConfigError("DRIP_SENDGRID_WEBHOOK_PUBLIC_KEY is not set, so SendGrid events "
                          "cannot be verified; copy the key from SendGrid's Mail Settings.")
    try:
        if "-----BEGIN" in text:
            key = serialization.load_pem_public_key(text.strip().encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(text.strip(), validate=True))
    except (ValueError, binascii.Error, TypeError):
        raise ConfigError("DRIP_SENDGRID_WEBHOOK_PUBLIC_KEY is not a public key; paste the "
                          "verification key exactly as SendGrid shows it.") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ConfigError("DRIP_SENDGRID_WEBHOOK_PUBLIC_KEY is not an ECDSA P-256 key.")
    return key


def verify_sendgrid(key: ec.EllipticCurvePublicKey, body: bytes, timestamp: str | None,
                    signature: str | None, now: datetime, *,
                    tolerance: int = TOLERANCE_SECONDS) -> None:
    """ECDSA P-256 / SHA-256 over timestamp + raw body; the signature is base64 DER."""
    _timestamp(timestamp, now, tolerance=tolerance)
    try:
        raw = base64.b64decode((signature or "").strip(), validate=True)
    except (binascii.Error, ValueError):
        raise BadSignature("The SendGrid signature is not base64.") from None
    if not raw:
        raise BadSignature("The request has no SendGrid signature.")
    try:
        key.verify(raw, (timestamp or "").encode() + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise BadSignature("The SendGrid signature does not match the body.") from None

"""Webhook signatures with real keys: good ones pass, one changed byte or a stale time does not."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from drip.errors import BadSignature, ConfigError
from drip.signatures import (
    sendgrid_public_key,
    sign_purchase,
    sign_stripe,
    verify_purchase,
    verify_sendgrid,
    verify_stripe,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
STAMP = int(NOW.timestamp())
BODY = b'{"order_id": "A-1", "email": "ana@example.com", "product": "pht-7-week"}'
SECRET = "shop-secret"


def tampered(data: bytes) -> list[bytes]:
    """Every one-byte change at a few positions: first, middle, last."""
    out = []
    for index in (0, len(data) // 2, len(data) - 1):
        changed = bytearray(data)
        changed[index] ^= 0x01
        out.append(bytes(changed))
    return out


def test_purchase_signature_round_trip() -> None:
    verify_purchase(SECRET, BODY, str(STAMP), sign_purchase(SECRET, STAMP, BODY), NOW)


@pytest.mark.parametrize("body", tampered(BODY))
def test_purchase_one_byte_tampering_is_refused(body: bytes) -> None:
    with pytest.raises(BadSignature):
        verify_purchase(SECRET, body, str(STAMP), sign_purchase(SECRET, STAMP, BODY), NOW)


def test_purchase_signature_tampered_and_wrong_secret_refused() -> None:
    good = sign_purchase(SECRET, STAMP, BODY)
    for signature in tampered(good.encode()):
        with pytest.raises(BadSignature):
            verify_purchase(SECRET, BODY, str(STAMP), signature.decode("latin-1"), NOW)
    with pytest.raises(BadSignature):
        verify_purchase("other", BODY, str(STAMP), good, NOW)
    with pytest.raises(BadSignature):  # the timestamp is part of what is signed
        verify_purchase(SECRET, BODY, str(STAMP + 1), good, NOW)


@pytest.mark.parametrize("skew", [-301, 301, 10_000])
def test_purchase_stale_or_future_timestamp_refused(skew: int) -> None:
    stamp = STAMP + skew
    with pytest.raises(BadSignature, match="stale"):
        verify_purchase(SECRET, BODY, str(stamp), sign_purchase(SECRET, stamp, BODY), NOW)


@pytest.mark.parametrize("stamp,signature", [(None, "sha256=00"), ("abc", "sha256=00"),
                                             (str(STAMP), None), (str(STAMP), "md5=00"),
                                             (str(STAMP), "")])
def test_purchase_missing_parts_refused(stamp: str | None, signature: str | None) -> None:
    with pytest.raises(BadSignature):
        verify_purchase(SECRET, BODY, stamp, signature, NOW)


def test_purchase_without_secret_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        verify_purchase("", BODY, str(STAMP), "sha256=00", NOW)


def test_stripe_signature_round_trip_and_rotation() -> None:
    verify_stripe(SECRET, BODY, sign_stripe(SECRET, STAMP, BODY), NOW)
    rolled = sign_stripe(SECRET, STAMP, BODY) + ",v1=" + "0" * 64 + ",v0=ignored"
    verify_stripe(SECRET, BODY, rolled, NOW)


@pytest.mark.parametrize("body", tampered(BODY))
def test_stripe_one_byte_tampering_is_refused(body: bytes) -> None:
    with pytest.raises(BadSignature):
        verify_stripe(SECRET, body, sign_stripe(SECRET, STAMP, BODY), NOW)


@pytest.mark.parametrize("header", [None, "", "t=1", f"v1={'0' * 64}", f"t={STAMP},v1=00",
                                    f"t={STAMP},t={STAMP},v1=00", "garbage"])
def test_stripe_malformed_headers_refused(header: str | None) -> None:
    with pytest.raises(BadSignature):
        verify_stripe(SECRET, BODY, header, NOW)


def test_stripe_stale_refused() -> None:
    with pytest.raises(BadSignature, match="stale"):
        verify_stripe(SECRET, BODY, sign_stripe(SECRET, STAMP - 400, BODY), NOW)


@pytest.fixture(scope="module")
def p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def sendgrid_sign(key: ec.EllipticCurvePrivateKey, stamp: str, body: bytes) -> str:
    return base64.b64encode(key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()


def der_b64(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def test_sendgrid_signature_round_trip_base64_and_pem(p256: ec.EllipticCurvePrivateKey) -> None:
    pem = p256.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    signature = sendgrid_sign(p256, str(STAMP), BODY)
    for text in (der_b64(p256), pem):
        verify_sendgrid(sendgrid_public_key(text), BODY, str(STAMP), signature, NOW)


@pytest.mark.parametrize("body", tampered(BODY))
def test_sendgrid_one_byte_tampering_is_refused(p256: ec.EllipticCurvePrivateKey,
                                                body: bytes) -> None:
    key = sendgrid_public_key(der_b64(p256))
    with pytest.raises(BadSignature):
        verify_sendgrid(key, body, str(STAMP), sendgrid_sign(p256, str(STAMP), BODY), NOW)


def test_sendgrid_other_key_stale_and_garbage_refused(p256: ec.EllipticCurvePrivateKey) -> None:
    key = sendgrid_public_key(der_b64(p256))
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(BadSignature):
        verify_sendgrid(key, BODY, str(STAMP), sendgrid_sign(other, str(STAMP), BODY), NOW)
    with pytest.raises(BadSignature):  # signed at another time than it claims
        verify_sendgrid(key, BODY, str(STAMP + 1), sendgrid_sign(p256, str(STAMP), BODY), NOW)
    old = str(STAMP - 600)
    with pytest.raises(BadSignature, match="stale"):
        verify_sendgrid(key, BODY, old, sendgrid_sign(p256, old, BODY), NOW)
    for signature in (None, "", "!!!notbase64", base64.b64encode(b"junk").decode()):
        with pytest.raises(BadSignature):
            verify_sendgrid(key, BODY, str(STAMP), signature, NOW)


def test_sendgrid_key_must_be_a_p256_public_key() -> None:
    for text in ("", "not base64 !", base64.b64encode(b"junk").decode()):
        with pytest.raises(ConfigError):
            sendgrid_public_key(text)
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(ConfigError, match="P-256"):
        sendgrid_public_key(der_b64(p384))

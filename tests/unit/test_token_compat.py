"""Links already in inboxes keep working: tokens signed by drip's itsdangerous-based code
before issue 22 (tests/fixtures/itsdangerous_tokens.json) still verify, and new tokens are
read back by itsdangerous itself (a worker still on the old code reads them too)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import itsdangerous
import pytest

from drip.errors import BadSignature
from drip.tokens import Purpose, Signer

FIXTURE = Path(__file__).parent.parent / "fixtures" / "itsdangerous_tokens.json"
CASES: list[dict[str, Any]] = json.loads(FIXTURE.read_text())["tokens"]
URLS: dict[str, str] = json.loads(FIXTURE.read_text())["urls"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['purpose']}-{c['values']}"[:40])
def test_tokens_signed_before_still_verify(case: dict[str, Any]) -> None:
    signer = Signer("fixture-secret", fallbacks=("fixture-old-secret",))
    assert signer.read(case["purpose"], case["token"]) == case["values"]
    with pytest.raises(BadSignature):
        Signer("another-secret").read(case["purpose"], case["token"])


def test_links_in_sent_emails_still_verify() -> None:
    signer = Signer("fixture-secret")
    assert signer.read("unsubscribe", URLS["unsubscribe"].rsplit("/", 1)[1]) == [12, 34]
    assert signer.read("pause", URLS["pause"].rsplit("/", 1)[1]) == [34, 56]
    token = URLS["checkpoint_passed"].rsplit("/", 1)[1].split("?")[0]
    assert signer.read("checkpoint", token) == [56]


@pytest.mark.parametrize("purpose,values", [
    ("unsubscribe", (12, 34)), ("pause", (5,)), ("pause", (5, 99)), ("checkpoint", (0,)),
    ("confirm", (2**40,)), ("unsubscribe", ("a-string", 3)), ("pause", ("ünïcode",))])
def test_new_tokens_are_itsdangerous_tokens(purpose: Purpose, values: tuple[int | str, ...]
                                            ) -> None:
    token = Signer("k", fallbacks=("old",)).make(purpose, *values)
    serializer = itsdangerous.URLSafeTimedSerializer("k", salt=f"drip.{purpose}")
    assert serializer.loads(token, max_age=60) == list(values)
    assert Signer("k").read(purpose, token, max_age=60) == list(values)


def test_id_tokens_are_the_bytes_itsdangerous_writes() -> None:
    signer = Signer("k", fallbacks=("old",))
    serializer = itsdangerous.URLSafeTimedSerializer(["old", "k"], salt="drip.unsubscribe")
    for _ in range(3):  # the two may straddle a second
        ours, theirs = signer.make("unsubscribe", 12, 345678), serializer.dumps([12, 345678])
        if ours == theirs:
            break
    assert ours == theirs


@pytest.mark.parametrize("values", [(12, "0123456789abcdef"), ("a-b_c.d:E", 7), ("",)])
def test_plain_word_tokens_are_the_bytes_itsdangerous_writes(values: tuple[int | str, ...]
                                                             ) -> None:
    """Click links carry a link's fingerprint: written without the JSON encoder, the token
    is still the one itsdangerous writes."""
    signer = Signer("k")
    serializer = itsdangerous.URLSafeTimedSerializer("k", salt="drip.click")
    for _ in range(3):  # the two may straddle a second
        ours, theirs = signer.make("click", *values), serializer.dumps(list(values))
        if ours == theirs:
            break
    assert ours == theirs

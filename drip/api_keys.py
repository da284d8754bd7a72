"""API keys: made once and shown once, kept only as a SHA-256 hash, each with scopes.

A key is 32 random bytes, so a fast hash is enough: there is nothing to guess from it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import datetime

from drip.errors import BadSignature, InvalidInput, NotFound
from drip.store import ApiKeyRow, Store

SCOPES = ("enroll", "read", "unsubscribe")
PREFIX = "drip_"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class MissingScope(InvalidInput):
    """The API key is valid but lacks the scope this request needs."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create(store: Store, name: str, scopes: Iterable[str], now: datetime) -> tuple[str, ApiKeyRow]:
    """A new key (returned once, never stored) and its record."""
    if not NAME.match(name):
        raise InvalidInput(f"'{name[:100]}' is not a key name; use letters, digits, '.', '-' "
                           "and '_' (up to 100), such as zapier.")
    chosen = tuple(dict.fromkeys(s.strip().lower() for s in scopes))
    wrong = [s for s in chosen if s not in SCOPES]
    if wrong or not chosen:
        not_these = f"; not {', '.join(wrong)}" if wrong else ""
        raise InvalidInput(f"Give each key one or more scopes of {', '.join(SCOPES)} "
                           f"(--scope enroll --scope read){not_these}.")
    key = PREFIX + secrets.token_urlsafe(32)
    row = store.create_api_key(name=name, key_hash=hash_key(key), prefix=key[:12],
                               scopes=chosen, now=now)
    return key, row


def revoke(store: Store, name: str, now: datetime) -> None:
    if not store.revoke_api_key(name, now):
        raise NotFound(f"No active API key is named '{name[:100]}'; `drip api-key list` "
                       "shows them.")


def authenticate(store: Store, authorization: str | None, scope: str) -> ApiKeyRow:
    """The key an `Authorization: Bearer KEY` header carries, if it is live and has `scope`."""
    scheme, _, key = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise BadSignature("Send your API key as Authorization: Bearer KEY.")
    found = store.api_key_by_hash(hash_key(key.strip()))
    if found is None or found.revoked_at is not None:
        raise BadSignature("This API key is not valid, or has been revoked.")
    if scope not in found.scopes:
        raise MissingScope(f"The API key '{found.name}' lacks the '{scope}' scope this "
                           "needs; create a key with --scope " + scope + ".")
    return found

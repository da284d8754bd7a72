"""The receivers an operator adds with `drip webhook add`: checked, given a secret, kept in
the database beside DRIP_WEBHOOK_URLS."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import urlsplit

from drip.errors import InvalidInput, NotFound
from drip.store import Store, WebhookEndpointRow
from drip.webhooks.signing import PREFIX

#: Every event drip posts, each queued in the transaction of the change it reports.
EVENTS = ("enrolled", "email.sent", "checkpoint.answered", "graduated", "paused",
          "unsubscribed", "suppressed", "purchased")


def chosen_events(names: Iterable[str]) -> tuple[str, ...]:
    """The events named (comma-separated pieces allowed); empty means every event."""
    wanted = tuple(dict.fromkeys(n.strip() for name in names for n in name.split(",")
                                 if n.strip()))
    wrong = [n for n in wanted if n not in EVENTS]
    if wrong:
        raise InvalidInput(f"'{wrong[0]}' is not an event drip posts; use some of "
                           f"{', '.join(EVENTS)}.")
    return tuple(e for e in EVENTS if e in wanted)


def checked_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname or any(
            c.isspace() for c in url.strip()):
        raise InvalidInput(f"'{url[:80]}' is not an http(s) URL; give one such as "
                           "https://hooks.example.com/drip.")
    return url.strip()


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def add_endpoint(store: Store, url: str, events: Iterable[str], now: datetime,
                 secret: str | None = None) -> WebhookEndpointRow:
    """A new receiver of `events` (all when none are named), with its own signing secret."""
    from drip.webhooks.signing import secret_bytes

    key = secret or new_secret()
    secret_bytes(key)  # a secret given by hand must be a Standard Webhooks one
    return store.add_webhook_endpoint(checked_url(url), chosen_events(events), key, now)


def remove_endpoint(store: Store, url: str) -> None:
    if not store.remove_webhook_endpoint(url.strip()):
        raise NotFound(f"{url[:200]} is not a webhook endpoint; see `drip webhook list`.")

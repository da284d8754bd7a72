"""One pass over the outgoing webhook queue: post each due message to every receiver that
wants it (each URL of DRIP_WEBHOOK_URLS gets every event; an endpoint added with `drip
webhook add` gets the events it named, signed with its own secret).

At least once: a message is marked delivered only when every URL answered 2xx, so a
URL that fails makes the others get it again, under the same webhook-id (receivers
deduplicate on it). Each attempt is signed afresh with its own timestamp. Retries back
off (5 s, 5 min, 30 min, 2 h, 5 h, 10 h) for a day; then the message is failed.
One subscriber's events go out in order: a later one waits while an earlier is retried.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from drip.store import Store, WebhookRow
from drip.webhooks.signing import signature_headers

BACKOFF = (timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30),
           timedelta(hours=2), timedelta(hours=5), timedelta(hours=10))
GIVE_UP_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class PassReport:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def retry_at(message: WebhookRow, now: datetime) -> datetime | None:
    """When to try again after a failed attempt; None once a day has gone by."""
    delay = BACKOFF[min(message.attempts, len(BACKOFF) - 1)]
    deadline = message.created_at + GIVE_UP_AFTER
    if now >= deadline:
        return None
    return min(now + delay, deadline)


@dataclass(frozen=True)
class Receiver:
    url: str
    secret: str
    #: The events it wants; empty: every event.
    events: frozenset[str] = frozenset()

    def wants(self, event: str) -> bool:
        return not self.events or event in self.events


def receivers(store: Store, urls: Sequence[str], secret: str) -> list[Receiver]:
    """DRIP_WEBHOOK_URLS (every event, DRIP_WEBHOOK_SIGNING_SECRET) and the endpoints."""
    return [Receiver(url, secret) for url in urls] + [
        Receiver(e.url, e.secret, frozenset(e.events)) for e in store.webhook_endpoints()]


def deliver_due(store: Store, urls: Sequence[str], secret: str, now: datetime, *,
                limit: int = 100, timeout: float = 10.0) -> PassReport:
    """Post up to `limit` due messages. Each round takes the oldest pending message of each
    subscriber; a round that delivered something is followed by another, so a subscriber's
    later events go in the same pass, still one after the other."""
    delivered = retrying = failed = 0
    everyone = receivers(store, urls, secret)
    while delivered + retrying + failed < limit:
        progress = False
        for message in store.due_webhooks(now, limit - delivered - retrying - failed):
            if not store.take_webhook(message.id, now,
                                      now + timedelta(seconds=timeout * 2 + 30)):
                continue  # another scheduler has it
            body = json.dumps(message.payload, separators=(",", ":")).encode()
            errors = [e for e in (_post(r.url, body, r.secret, message.msg_id, now, timeout)
                                  for r in everyone if r.wants(message.event)) if e]
            again = retry_at(message, now) if errors else None
            store.record_webhook_attempt(message.id, now,
                                         error="; ".join(errors)[:1000] or None,
                                         retry_at=again)
            if not errors:
                delivered += 1
                progress = True
            elif again:
                retrying += 1
            else:
                failed += 1
        if not progress:
            break
    return PassReport(delivered, retrying, failed)


def _post(url: str, body: bytes, secret: str, msg_id: str, now: datetime,
          timeout: float) -> str | None:
    """None when the URL accepted the message, else what went wrong."""
    headers = {"Content-Type": "application/json", "User-Agent": "drip-webhooks",
               **signature_headers(secret, msg_id, int(now.timestamp()), body)}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            status = int(answer.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return f"{url}: {getattr(exc, 'reason', exc)}"
    return None if 200 <= status < 300 else f"{url}: HTTP {status}"

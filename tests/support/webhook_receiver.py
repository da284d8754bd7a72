"""A webhook receiver on loopback: accepts every POST and keeps it, for drip's outgoing
webhooks (drip.webhooks) to be checked against."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from standardwebhooks import Webhook


def reference_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """The signature the Standard Webhooks reference library makes for this post."""
    return Webhook(secret).sign(msg_id, datetime.fromtimestamp(int(timestamp), UTC), body)


def reference_verify(secret: str, headers: dict[str, str], body: bytes) -> Any:
    """What a receiver using the reference library does (checks the timestamp against the
    wall clock too); the parsed body, or WebhookVerificationError."""
    return Webhook(secret).verify(body, headers)


class WebhookReceiver:
    """`with WebhookReceiver() as receiver:`; post to `receiver.base + "/any/path"`."""

    def __init__(self) -> None:
        #: (path, headers with lower-case names, body) in arrival order.
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append((self.path, {k.lower(): v for k, v in
                                                   self.headers.items()}, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self, path: str) -> list[tuple[str, str, dict[str, Any]]]:
        """(webhook-id, type, data) of what `path` accepted, in order."""
        return [(h["webhook-id"], json.loads(b)["type"], json.loads(b)["data"])
                for p, h, b in self.posts if p == path]

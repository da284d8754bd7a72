"""A SendGrid v3 Mail Send stand-in on loopback, for drip's tests and benchmarks.

It checks the Bearer key, validates every body against Twilio's published OpenAPI schema
(../shared/sendgrid/tsg_mail_v3.json), records each personalization, and can be told to
misbehave: 429, 5xx, 400 for one address, a late answer, a dropped connection, 413.

It also answers the Email Activity API's `GET /v3/messages?query=unique_args['batch_key']=
"..."&limit=N` from what it actually accepted (it can be told to fail those too).

For chaos tests it can misbehave at random (`chaos`: a share of the requests answered 429
or 5xx, reset unread, answered late, or dropped with or without taking the mail), and post
signed Event Webhook events for what it took, late and sometimes not at all
(`emit_events`), as SendGrid does.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import random
import re
import secrets
import signal
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

SCHEMA_NAME = Path("shared") / "sendgrid" / "tsg_mail_v3.json"
# ../shared next to the checkout when there is one (from a worktree under /work/wt/<name>
# it is further up); otherwise the copy kept in tests/fixtures/sendgrid (Twilio's published
# schema, MIT licensed), so a clone anywhere validates against the same schema.
VENDORED_SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "sendgrid" / "tsg_mail_v3.json"
SCHEMA_PATH = next((parent / SCHEMA_NAME for parent in Path(__file__).resolve().parents
                    if (parent / SCHEMA_NAME).exists()), VENDORED_SCHEMA)
MAX_PERSONALIZATIONS = 1000
MAX_SUBSTITUTION_BYTES = 10_000


@cache
def _validator() -> jsonschema.protocols.Validator:
    document = json.loads(SCHEMA_PATH.read_text())
    pointer = "#/components/requestBodies/PostMailSend/content/application~1json/schema"
    schema = {"$ref": pointer, "components": document["components"]}
    validator_class = jsonschema.validators.validator_for(
        {"$schema": "https://json-schema.org/draft/2020-12/schema"})
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


def violations_of(body: Any) -> list[str]:
    """Every way `body` breaks the published schema or SendGrid's documented limits."""
    found = [f"{'/'.join(str(p) for p in error.absolute_path) or '(body)'}: {error.message}"
             for error in _validator().iter_errors(body)]
    if not isinstance(body, dict):
        return found or ["the body is not a JSON object"]
    personalizations = body.get("personalizations") or []
    if len(personalizations) > MAX_PERSONALIZATIONS:
        found.append(f"personalizations: {len(personalizations)} > {MAX_PERSONALIZATIONS}")
    for index, item in enumerate(personalizations):
        if not isinstance(item, dict):
            continue
        substitutions = item.get("substitutions") or {}
        size = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in substitutions.items())
        if size > MAX_SUBSTITUTION_BYTES:
            found.append(f"personalizations/{index}/substitutions: {size} bytes > 10000")
        for key, value in (item.get("custom_args") or {}).items():
            if not isinstance(value, str):
                found.append(f"personalizations/{index}/custom_args/{key}: not a string")
    types = [c.get("type") for c in body.get("content") or [] if isinstance(c, dict)]
    if "text/plain" in types and "text/html" in types and \
            types.index("text/plain") > types.index("text/html"):
        found.append("content: text/plain must come before text/html")
    return found


_BATCH_QUERY = re.compile(r"unique_args\['batch_key'\]=\"([0-9A-Za-z_-]{1,64})\"")


def _recipients(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return []
    return [str(to.get("email")) for item in body.get("personalizations") or []
            if isinstance(item, dict) for to in item.get("to") or [] if isinstance(to, dict)]


def _error_body(message: str, field_name: str | None = None) -> bytes:
    return json.dumps({"errors": [{"message": message, "field": field_name,
                                   "help": None}]}).encode()


@dataclass
class _Faults:
    fail: list[tuple[int, dict[str, str], bytes | None]] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    drops: list[bool] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    closes: int = 0
    activity: list[int] = field(default_factory=list)
    #: Share of Mail Send requests that misbehave at random, and of activity queries.
    chaos: float = 0.0
    activity_chaos: float = 0.0


#: What a request chosen by `chaos` suffers, each as likely: rate limited, a server error,
#: the connection reset before the body is read, a late answer (taken), no answer (taken),
#: no answer (not taken).
CHAOS = ("429", "500", "503", "reset", "slow", "drop-taken", "drop-untaken")


@dataclass
class _Emitter:
    """Event Webhook posts of `delivered` for what was taken: each after a random delay,
    some never; a post drip did not accept is tried again, as SendGrid does."""

    url: str
    key: ec.EllipticCurvePrivateKey
    loss: float
    max_delay: float
    due: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    #: (email, delivery id) of the events posted and accepted, and of those lost on purpose.
    delivered: set[tuple[str, str]] = field(default_factory=set)
    lost: set[tuple[str, str]] = field(default_factory=set)
    refused_posts: int = 0


class SendGridStandIn:
    """Run with `with SendGridStandIn() as server:`; point the client at `server.url`.

    How drip's provider sets the client timeout: `SendGridAPIClient(key, host=url)` then
    `client.client.timeout = seconds` (python_http_client passes it to urlopen).
    """

    def __init__(self, api_key: str = "SG.test-key", *, validate: bool = True,
                 max_body_bytes: int | None = None, latency: float = 0.0,
                 port: int = 0) -> None:
        self.api_key = api_key
        self.validate = validate
        self.max_body_bytes = max_body_bytes
        self.latency = latency
        self.requests: list[dict[str, Any]] = []
        self.personalizations: list[dict[str, Any]] = []
        self.violations: list[str] = []
        #: TCP connections accepted: a client that reuses its connections opens few.
        self.connections = 0
        #: Mail Send requests received, answered or failed on purpose (faults included).
        self.posts = 0
        #: The batch keys of the Email Activity queries received, in order.
        self.activity_queries: list[str] = []
        self.lock = threading.Lock()
        #: Recipients of each request read but not yet answered, by request number.
        self._unanswered: dict[int, list[str]] = {}
        self._received = 0
        self._faults = _Faults()
        self._random = random.Random(0)  # events and activity faults
        self._chaos_random = random.Random(0)  # which Mail Send request misbehaves, and how
        #: How many requests each chaos fault hit, and activity queries failed by chaos.
        self.chaos_hits: Counter[str] = Counter()
        self._emitter: _Emitter | None = None
        self._emitting = threading.Event()
        self._emit_thread: threading.Thread | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        # a connection reset or dropped on purpose is not worth a traceback on stderr
        self._server.handle_error = lambda request, address: None  # type: ignore[method-assign,assignment]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.started = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> SendGridStandIn:
        if not self.started:
            self._thread.start()
            self.started = True
        return self

    def stop(self) -> None:
        self._emitting.set()
        if self._emit_thread is not None:
            self._emit_thread.join(timeout=10)
        if self.started:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self.started = False
        self._server.server_close()

    def __enter__(self) -> SendGridStandIn:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # --- what a test asks ------------------------------------------------------------------

    def accepted_emails(self) -> list[str]:
        with self.lock:
            return [p["to_email"] for p in self.personalizations]

    def accepted_counts(self) -> Counter[str]:
        return Counter(self.accepted_emails())

    def unanswered_emails(self) -> list[str]:
        """Recipients of the requests read but not yet answered: the mail in flight now."""
        with self.lock:
            return [email for emails in self._unanswered.values() for email in emails]

    def assert_no_violations(self) -> None:
        with self.lock:
            found = list(self.violations)
        if found:
            raise AssertionError("SendGrid schema violations:\n" + "\n".join(found))

    # --- faults ------------------------------------------------------------------------------

    def fail_next(self, status: int, count: int = 1, headers: Mapping[str, str] | None = None,
                  body: bytes | None = None) -> None:
        with self.lock:
            self._faults.fail += [(status, dict(headers or {}), body)] * count

    def rate_limit_next(self, count: int = 1, reset_in: float = 1) -> None:
        reset = str(int(time.time() + reset_in))
        self.fail_next(429, count, {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0",
                                    "X-RateLimit-Reset": reset},
                       _error_body("too many requests"))

    def reject_address(self, email: str, message: str = "Invalid address.") -> None:
        with self.lock:
            self._faults.rejected[email] = message

    def delay_next(self, seconds: float, count: int = 1) -> None:
        with self.lock:
            self._faults.delays += [seconds] * count

    def drop_next(self, count: int = 1, record: bool = True) -> None:
        with self.lock:
            self._faults.drops += [record] * count

    def fail_activity_next(self, status: int, count: int = 1) -> None:
        """Answer the next `count` Email Activity queries with `status` (429, 5xx...)."""
        with self.lock:
            self._faults.activity += [status] * count

    def close_after_answer(self, count: int = 1) -> None:
        """Close the connection after the next `count` answers, without saying so in them
        (as a server ending an idle keep-alive connection does)."""
        with self.lock:
            self._faults.closes += count

    def reset_faults(self) -> None:
        with self.lock:
            self._faults = _Faults()

    def chaos(self, rate: float, *, activity: float = 0.0, seed: int | str = 0) -> None:
        """From now on `rate` of the Mail Send requests suffer one of CHAOS, drawn at random
        (seeded), and `activity` of the Email Activity queries are answered 429 or 5xx."""
        with self.lock:
            self._random = random.Random(f"{seed}-events")
            self._chaos_random = random.Random(seed)
            self._faults.chaos, self._faults.activity_chaos = rate, activity

    def emit_events(self, url: str, key: ec.EllipticCurvePrivateKey, *, loss: float = 0.05,
                    max_delay: float = 2.0) -> None:
        """Post a signed `delivered` event to `url` for each email taken from now on, after
        up to `max_delay` seconds; `loss` of them are never posted."""
        with self.lock:
            self._emitter = _Emitter(url, key, loss, max_delay)
        self._emit_thread = threading.Thread(target=self._emit, daemon=True)
        self._emit_thread.start()

    def events_pending(self) -> int:
        with self.lock:
            return len(self._emitter.due) if self._emitter else 0

    def events_delivered(self) -> set[tuple[str, str]]:
        with self.lock:
            return set(self._emitter.delivered) if self._emitter else set()

    def events_lost(self) -> set[tuple[str, str]]:
        with self.lock:
            return set(self._emitter.lost) if self._emitter else set()

    def _chaos_fault(self) -> str | None:
        with self.lock:
            if self._faults.chaos and self._chaos_random.random() < self._faults.chaos:
                fault = self._chaos_random.choice(CHAOS)
                self.chaos_hits[fault] += 1
                return fault
        return None

    def _emit(self) -> None:
        while not self._emitting.wait(0.1):
            with self.lock:
                emitter = self._emitter
                if emitter is None:
                    continue
                now = time.monotonic()
                ready = [e for at, e in emitter.due if at <= now]
                emitter.due = [(at, e) for at, e in emitter.due if at > now]
            if not ready:
                continue
            body = json.dumps(ready).encode()
            stamp = str(int(time.time()))
            signature = base64.b64encode(emitter.key.sign(
                stamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
            request = urllib.request.Request(emitter.url, data=body, method="POST", headers={
                "Content-Type": "application/json",
                "X-Twilio-Email-Event-Webhook-Signature": signature,
                "X-Twilio-Email-Event-Webhook-Timestamp": stamp})
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    accepted = 200 <= answer.status < 300
            except (urllib.error.URLError, OSError):
                accepted = False
            with self.lock:
                if accepted:
                    emitter.delivered.update((e["email"], e["delivery_id"]) for e in ready)
                else:  # SendGrid tries a refused post again later
                    emitter.refused_posts += 1
                    emitter.due += [(time.monotonic() + 1.0, e) for e in ready]

    def _schedule_events(self, body: dict[str, Any], message_id: str) -> None:
        """Called with the lock held, for mail just taken."""
        emitter = self._emitter
        if emitter is None:
            return
        for item in body.get("personalizations") or []:
            args = {**(body.get("custom_args") or {}), **(item.get("custom_args") or {})}
            for to in item.get("to", []):
                email = str(to.get("email"))
                if self._random.random() < emitter.loss:
                    emitter.lost.add((email, str(args.get("delivery_id"))))
                    continue
                emitter.due.append((time.monotonic() + self._random.uniform(
                    0, emitter.max_delay), {
                    **args, "email": email, "event": "delivered",
                    "timestamp": int(time.time()), "sg_event_id": secrets.token_urlsafe(16),
                    "sg_message_id": f"{message_id}.filter0001.1.0",
                    "response": "250 OK"}))

    # --- the server --------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def setup(self) -> None:  # once per connection; a keep-alive one serves many
                super().setup()
                with standin.lock:
                    standin.connections += 1

            def do_POST(self) -> None:
                standin._handle(self)

            def do_GET(self) -> None:
                standin._activity(self)

            def _answer(self, status: int, body: bytes = b"",
                        headers: Mapping[str, str] | None = None) -> None:
                # answered from here on: a client that has read the answer must never see
                # its request still listed as in flight
                standin._forget(getattr(self, "request_number", None))
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def _handle(self, request: Any) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length)
        if len(raw) < length:  # the connection was cut mid-body: no request to answer
            request.close_connection = True
            return
        if request.path.rstrip("/") != "/v3/mail/send":
            request._answer(404, _error_body("not found"))
            return
        with self.lock:
            self.posts += 1
        if self.latency:
            time.sleep(self.latency)
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            request._answer(401, _error_body(
                "The provided authorization grant is invalid, expired, or revoked"))
            return
        media_type = (request.headers.get("Content-Type") or "").split(";")[0].strip()
        if media_type.lower() != "application/json":  # as SendGrid answers a wrong one
            request._answer(415, _error_body("Content-Type should be application/json."))
            return
        if self.max_body_bytes is not None and len(raw) > self.max_body_bytes:
            request._answer(413, _error_body("request entity too large"))
            return
        with self.lock:
            fault = self._faults.fail.pop(0) if self._faults.fail else None
        if fault is not None:
            status, headers, body = fault
            request._answer(status, body or _error_body(f"stand-in fault {status}"), headers)
            return
        chaos = self._chaos_fault()
        if chaos == "429":
            request._answer(429, _error_body("too many requests"), {
                "X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(time.time() + 1))})
            return
        if chaos in ("500", "503"):
            request._answer(int(chaos), _error_body(f"stand-in chaos {chaos}"))
            return
        if chaos == "reset":  # the request was sent; a reset answers it, nothing is taken
            request.close_connection = True
            with contextlib.suppress(OSError):
                request.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                              struct.pack("ii", 1, 0))
                request.connection.close()
            return
        request.chaos = chaos
        try:
            body = json.loads(raw)
        except ValueError:
            self._violation("the body is not valid JSON")
            request._answer(400, _error_body("Bad Request: invalid JSON"))
            return
        with self.lock:
            self._received += 1
            number = self._received
            self._unanswered[number] = _recipients(body)
        request.request_number = number
        try:
            self._handle_mail(request, body)
        finally:
            self._forget(number)  # also when no answer was written (a dropped connection)

    def _forget(self, number: int | None) -> None:
        if number is not None:
            with self.lock:
                self._unanswered.pop(number, None)

    def _handle_mail(self, request: Any, body: Any) -> None:
        if self.validate:
            found = violations_of(body)
            if found:
                for problem in found:
                    self._violation(problem)
                request._answer(400, _error_body(found[0]))
                return
        personalizations = body.get("personalizations") or []
        with self.lock:
            rejected = dict(self._faults.rejected)
        for index, item in enumerate(personalizations):
            for to in item.get("to", []):
                if to.get("email") in rejected:
                    request._answer(400, _error_body(rejected[to["email"]],
                                                     f"personalizations.{index}.to"))
                    return
        with self.lock:
            delay = self._faults.delays.pop(0) if self._faults.delays else 0.0
            drop = self._faults.drops.pop(0) if self._faults.drops else None
        chaos = getattr(request, "chaos", None)
        if chaos == "slow":
            with self.lock:
                delay = max(delay, self._chaos_random.uniform(0.5, 3.0))
        elif chaos in ("drop-taken", "drop-untaken"):
            drop = chaos == "drop-taken"
        message_id = secrets.token_urlsafe(16)[:22]
        if drop is None or drop:
            self._record(body, message_id)
        if drop is not None:
            request.close_connection = True
            with contextlib.suppress(OSError):
                request.connection.shutdown(socket.SHUT_RDWR)
            return
        if delay:
            time.sleep(delay)
        sandbox = bool(((body.get("mail_settings") or {}).get("sandbox_mode") or {})
                       .get("enable"))
        # A client that gave up waiting gets nothing; SendGrid took the mail all the same.
        with contextlib.suppress(OSError):
            request._answer(200 if sandbox else 202, b"", {"X-Message-Id": message_id})
        with self.lock:
            if self._faults.closes:
                self._faults.closes -= 1
                request.close_connection = True

    def _activity(self, request: Any) -> None:
        """GET /v3/messages: the messages it accepted whose batch_key the query names."""
        url = urlsplit(request.path)
        if url.path.rstrip("/") != "/v3/messages":
            request._answer(404, _error_body("not found"))
            return
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            request._answer(401, _error_body("authorization required"))
            return
        params = parse_qs(url.query)
        query = (params.get("query") or [""])[0]
        match = _BATCH_QUERY.fullmatch(query.strip())
        try:
            limit = int((params.get("limit") or ["10"])[0])
        except ValueError:
            limit = -1
        if match is None or not 1 <= limit <= 1000:
            request._answer(400, _error_body("invalid query or limit", "query"))
            return
        with self.lock:
            self.activity_queries.append(match.group(1))
            fault = self._faults.activity.pop(0) if self._faults.activity else None
            if fault is None and self._faults.activity_chaos and (
                    self._random.random() < self._faults.activity_chaos):
                fault = self._random.choice((429, 500, 503))
                self.chaos_hits[f"activity {fault}"] += 1
            found = [p for p in self.personalizations
                     if p["custom_args"].get("batch_key") == match.group(1)][:limit]
        if fault is not None:
            request._answer(fault, _error_body(f"stand-in fault {fault}"))
            return
        messages = [{"from_email": (p.get("from") or {}).get("email"), "msg_id": p["message_id"],
                     "subject": p.get("subject"), "to_email": p["to_email"],
                     "status": "delivered", "opens_count": 0, "clicks_count": 0,
                     "last_event_time": "2026-03-02T12:00:00Z"} for p in found]
        request._answer(200, json.dumps({"messages": messages}).encode())

    def _violation(self, problem: str) -> None:
        with self.lock:
            self.violations.append(problem)

    def _record(self, body: dict[str, Any], message_id: str) -> None:
        shared = {k: body.get(k) for k in ("subject", "from", "content", "categories",
                                           "custom_args", "headers", "mail_settings")}
        with self.lock:
            self.requests.append(body)
            for item in body.get("personalizations") or []:
                for to in item.get("to", []):
                    self.personalizations.append({
                        **shared, **item, "to_email": to.get("email"),
                        "headers": {**(body.get("headers") or {}), **(item.get("headers") or {})},
                        "custom_args": {**(body.get("custom_args") or {}),
                                        **(item.get("custom_args") or {})},
                        "subject": item.get("subject") or body.get("subject"),
                        "message_id": message_id,
                    })
            self._schedule_events(body, message_id)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the SendGrid stand-in.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default="SG.test-key")
    parser.add_argument("--no-validate", action="store_true")
    args = parser.parse_args()
    server = SendGridStandIn(args.api_key, validate=not args.no_validate, port=args.port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with server:
        print(f"SendGrid stand-in listening on {server.url}", flush=True)
        stop.wait()
    # what the benchmark reads back: how many TCP connections and requests it served
    print(json.dumps({"connections": server.connections, "posts": server.posts}), flush=True)


if __name__ == "__main__":
    main()

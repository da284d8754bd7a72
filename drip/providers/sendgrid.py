"""SendGrid's v3 Mail Send API through the official `sendgrid` package.

Emails that share content (same step, variant and nudge) go in one request of up
to 1,000 personalizations; per-recipient values travel as substitutions. Only
this module knows SendGrid's JSON and status codes.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from itertools import groupby
from typing import Any

import python_http_client
from python_http_client import exceptions as http_errors
from sendgrid import SendGridAPIClient

from drip.errors import (
    InvalidInput,
    NoAnswer,
    RequestNotSent,
    SendingHalted,
    TransientProviderError,
)
from drip.message import (
    CHECKPOINT_ANSWERS,
    HTML_SAFE_FIELDS,
    RECIPIENT_FIELDS,
    Message,
    header_problem,
)
from drip.providers.base import EventKind, ProviderEvent, SendResult, batch_key
from drip.providers.transport import Answer, PooledTransport

log = logging.getLogger(__name__)

MAX_PERSONALIZATIONS = 1000
MAX_SUBSTITUTION_BYTES = 10_000
RATE_LIMIT_WAIT_CAP = 60.0
RATE_LIMIT_RETRIES = 3
ACTIVITY_LIMIT = 1000  # the Email Activity API's largest page
ACTIVITY_TIMEOUT = 10.0


class SendGridProvider:
    name = "sendgrid"

    def __init__(self, api_key: str, *, host: str, timeout: float, sandbox: bool = False,
                 batch_limit: int = MAX_PERSONALIZATIONS,
                 sleep: Callable[[float], None] = time.sleep,
                 wall_clock: Callable[[], float] = time.time) -> None:
        if not api_key:
            raise SendingHalted("SENDGRID_API_KEY is not set; set it, or use DRIP_BACKEND=outbox.")
        self.client = SendGridAPIClient(api_key, host=host)
        self.transport = PooledTransport()
        library = self.client.client
        self.client.client = PooledClient(
            self.transport, host=library.host, request_headers=library.request_headers,
            version=library._version, timeout=timeout)  # the library has no timeout of its own
        # The body goes as JSON text drip writes itself (see _body): with a Content-Type
        # other than the bare "application/json", the library sends the text as it is.
        self.client.client.request_headers["Content-Type"] = "application/json; charset=utf-8"
        self.sandbox = sandbox
        self.batch_limit = max(1, min(batch_limit, MAX_PERSONALIZATIONS))
        self._sleep = sleep
        self._wall_clock = wall_clock

    def close(self) -> None:
        self.transport.close()

    def send_batch(self, messages: Sequence[Message], *,
                   retries: int = RATE_LIMIT_RETRIES) -> list[SendResult]:
        # Every request of the batch carries its key (custom_args come back in events and
        # in the Email Activity API); the dispatcher recorded the same key with `sending`,
        # so what SendGrid holds of a batch in doubt can be found, even if the worker died.
        send = partial(self._send_group, key=batch_key(m.delivery_id for m in messages),
                       retries=retries)
        results: list[SendResult] = []
        # Recipients whose values need no HTML twin and whose checkpoint links share one
        # URL (almost all) go together, so one odd name does not lengthen a thousand others.
        def request_of(m: Message) -> tuple[str, bool, bool, bool]:
            return (m.content.key, m.test, _has_twins(m), _checkpoint_url(m) is None)

        ordered = sorted(messages, key=request_of)
        for _, group in groupby(ordered, key=request_of):
            members = list(group)
            for start in range(0, len(members), self.batch_limit):
                results = _then(results, send, members[start:start + self.batch_limit])
        return results

    # --- one request, and what its answer means ----------------------------------------------

    def send_once(self, messages: Sequence[Message]) -> list[SendResult]:
        """A circuit's probe: a 429 is not waited out and asked again (base.SingleShot)."""
        return self.send_batch(messages, retries=0)

    def _send_group(self, messages: list[Message], key: str,
                    retries: int = RATE_LIMIT_RETRIES) -> list[SendResult]:
        send = partial(self._send_group, key=key, retries=retries)
        problems = [header_problem(m) for m in messages]
        if any(problems):  # a line break hidden in a name or subject: that email alone fails
            writable = [m for m, p in zip(messages, problems, strict=True) if p is None]
            failed = [SendResult(m.delivery_id, "permanent", reason=p)
                      for m, p in zip(messages, problems, strict=True) if p is not None]
            return _then(failed, send, writable) if writable else failed
        oversized = [m for m in messages if _over_substitution_limit(m)]
        if oversized:
            fitting = [m for m in messages if m not in oversized]
            failed = [SendResult(m.delivery_id, "permanent", reason=(
                f"The per-recipient values are over SendGrid's {MAX_SUBSTITUTION_BYTES} byte "
                "limit for substitutions; shorten the subscriber's name.")) for m in oversized]
            return _then(failed, send, fitting) if fitting else failed
        for attempt in range(retries + 1):
            try:
                response = self.client.client.mail.send.post(
                    request_body=self._body(messages, key))
            except http_errors.HTTPError as exc:
                status = int(exc.status_code)
                if status == 429 and attempt < retries:
                    self._sleep(self._rate_limit_wait(exc))
                    continue
                return self._refused(messages, status, exc, send)
            except RequestNotSent as exc:
                return [SendResult(m.delivery_id, "transient",
                                   reason=f"SendGrid could not be reached: {exc}")
                        for m in messages]
            except NoAnswer as exc:
                return self._unknown(messages, exc, key)
            message_id = _header(response.headers, "X-Message-Id")
            return [SendResult(m.delivery_id, "accepted", message_id=message_id)
                    for m in messages]
        raise AssertionError("unreachable")  # pragma: no cover

    def _refused(self, messages: list[Message], status: int, exc: http_errors.HTTPError,
                 send: Callable[[list[Message]], list[SendResult]]) -> list[SendResult]:
        reason = _error_text(exc)
        if status in (401, 403):
            raise SendingHalted(f"SendGrid refused the API key ({status}): {reason}",
                                status=status, body=reason)
        if status == 429:
            return [SendResult(m.delivery_id, "transient", reason=f"rate limited: {reason}",
                               retry_after=self._rate_limit_wait(exc)) for m in messages]
        if status == 413 and len(messages) > 1:
            return _split(messages, send)
        if status == 400:
            if len(messages) == 1:
                return [SendResult(messages[0].delivery_id, "permanent",
                                   reason=f"SendGrid refused it: {reason}")]
            culprit = _personalization_index(exc)
            if culprit is not None and culprit < len(messages):
                bad = messages[culprit]
                rest = messages[:culprit] + messages[culprit + 1:]
                refused = [SendResult(bad.delivery_id, "permanent",
                                      reason=f"SendGrid refused it: {reason}")]
                return _then(refused, send, rest) if rest else refused
            return _split(messages, send)
        return [SendResult(m.delivery_id, "transient", reason=f"SendGrid answered {status}: "
                           f"{reason}") for m in messages]

    @staticmethod
    def _unknown(messages: list[Message], exc: BaseException,
                 batch_key: str) -> list[SendResult]:
        reason = (f"No answer from SendGrid after the request went out ({exc}); it may have "
                  "been accepted, so drip will not send it again on its own.")
        return [SendResult(m.delivery_id, "unknown", reason=reason, batch_key=batch_key)
                for m in messages]

    def held(self, batch_key: str) -> set[str]:
        """The recipients SendGrid holds of the request `batch_key` named, from its Email
        Activity API (a paid add-on; the feed lags by minutes). TransientProviderError if
        it cannot say now (rate limited, down, unreachable, no answer)."""
        query = f"unique_args['batch_key']=\"{batch_key}\""
        try:
            response = self.client.client.messages.get(
                query_params={"query": query, "limit": ACTIVITY_LIMIT},
                timeout=min(self.client.client.timeout or ACTIVITY_TIMEOUT, ACTIVITY_TIMEOUT))
        except http_errors.HTTPError as exc:
            status = int(exc.status_code)
            if status in (401, 403):
                raise SendingHalted(f"SendGrid refused the Email Activity query ({status}): "
                                    f"{_error_text(exc)}; is the add-on on for this key?",
                                    status=status) from exc
            raise TransientProviderError(f"SendGrid's Email Activity API answered {status}: "
                                         f"{_error_text(exc)}", status=status) from exc
        except (RequestNotSent, NoAnswer) as exc:
            raise TransientProviderError(f"SendGrid's Email Activity API: {exc}") from exc
        try:
            found = json.loads(response.body or b"{}").get("messages") or []
            return {str(m["to_email"]).lower() for m in found if m.get("to_email")}
        except (ValueError, AttributeError, TypeError, KeyError) as exc:
            raise TransientProviderError(
                f"SendGrid's Email Activity API gave an answer drip cannot read: {exc}") from exc

    def _rate_limit_wait(self, exc: http_errors.HTTPError) -> float:
        reset = _header(getattr(exc, "headers", None), "X-RateLimit-Reset")
        try:
            wait = float(reset) - self._wall_clock() if reset else 1.0
        except ValueError:
            wait = 1.0
        return min(max(wait, 0.0), RATE_LIMIT_WAIT_CAP)

    def _body(self, messages: list[Message], batch_key: str) -> str:
        """The request body as JSON text: the shared parts once, then one personalization
        per recipient, written straight to JSON (a batch is a thousand of them)."""
        first = messages[0]
        content = first.content
        subject = f"[TEST] {content.subject}" if first.test else content.subject
        text, html = content.text, content.html
        # Each per-recipient value goes once: without HTML twins, the HTML part takes the
        # plain values; with one checkpoint URL, the parts add each answer to it.
        twins = any(_has_twins(m) for m in messages)
        condensed = all(_checkpoint_url(m) is not None for m in messages)
        if not twins:
            html = _UNTWIN.sub(r"%%\1%%", html)
        if condensed:
            for field, answer in CHECKPOINT_ANSWERS.items():
                joined = f"{CHECKPOINT_TAG}?answer={answer}"
                text = text.replace(_tag(field), joined)
                html = html.replace(_tag(field), joined)
        shared: dict[str, Any] = {
            "from": {"email": first.from_email, "name": first.from_name},
            "subject": subject,
            "content": [{"type": "text/plain", "value": text},
                        {"type": "text/html", "value": html}],
            "categories": list(first.categories),
        }
        if self.sandbox:
            shared["mail_settings"] = {"sandbox_mode": {"enable": True}}
        return (_JSON(shared)[:-1] + ',"personalizations":['
                + ",".join([_personalization(m, batch_key, twins=twins, condensed=condensed)
                            for m in messages]) + "]}")


class PooledClient(python_http_client.Client):  # type: ignore[misc]
    """python_http_client's Client, with its request seam (`_make_request`, "separated
    into its own function, so we can mock it") sending through drip's pooled transport
    instead of a new urllib opener and socket per request. Everything else (URL and
    header building, auth, the HTTPError classes per status) is the library's own."""

    def __init__(self, transport: PooledTransport, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._transport = transport

    def _build_client(self, name: str | None = None) -> PooledClient:
        # The library builds a new Client per URL segment (client.mail.send); keep ours.
        url_path = [*self._url_path, name] if name else self._url_path
        return PooledClient(self._transport, host=self.host, version=self._version,
                            request_headers=self.request_headers, url_path=url_path,
                            append_slash=self.append_slash, timeout=self.timeout)

    def _make_request(self, opener: Any, request: urllib.request.Request,
                      timeout: float | None = None) -> Answer:
        answer = self._transport.request(
            request.get_method(), request.get_full_url(), headers=dict(request.header_items()),
            body=request.data if isinstance(request.data, bytes) else None,
            timeout=timeout or self.timeout)
        if answer.status >= 400:
            # The library's own mapping of a status onto its HTTPError classes.
            raise http_errors.handle_error(urllib.error.HTTPError(
                request.get_full_url(), answer.status, answer.reason, answer.headers,
                io.BytesIO(answer.body)))
        return answer


def _split(messages: list[Message],
           send: Callable[[list[Message]], list[SendResult]]) -> list[SendResult]:
    middle = len(messages) // 2
    return _then(send(messages[:middle]), send, messages[middle:])


def _then(answered: list[SendResult], send: Callable[[list[Message]], list[SendResult]],
          messages: list[Message]) -> list[SendResult]:
    """The answers so far, then those for `messages`. If SendGrid refuses the key on this
    request, the halt carries the earlier answers: those emails were accepted or refused
    already, so they are recorded, not released to be sent again."""
    try:
        return answered + send(messages)
    except SendingHalted as exc:
        exc.answered = [*answered, *exc.answered]
        raise


_JSON = json.JSONEncoder(separators=(",", ":")).encode
_string = json.encoder.encode_basestring_ascii  # what json.dumps writes for a str


def _has_twins(message: Message) -> bool:
    """Whether a value of `message` has an HTML-escaped twin (a name like O'Brien)."""
    return any(name.endswith(":html") for name in message.values)


def _checkpoint_url(message: Message) -> str | None:
    """The one URL all of `message`'s checkpoint links add their answer to; None if it has
    none, or they differ (a reminder's buttons answer an earlier email's question)."""
    shared = None
    for field, answer in CHECKPOINT_ANSWERS.items():
        url = message.values.get(field)
        if url is None:
            continue
        base = url.removesuffix(f"?answer={answer}")
        if base == url or (shared is not None and base != shared):
            return None
        shared = base
    return shared


def _personalization(message: Message, batch_key: str, *, twins: bool = True,
                     condensed: bool = False) -> str:
    """One recipient's personalization as JSON text: to, substitutions, custom_args (the
    delivery id and the request's batch key among them) and the List-Unsubscribe headers.
    `twins`: the request's HTML part has HTML placeholders (every one gets a value);
    `condensed`: its checkpoint links are one URL plus the answer."""
    to = '{"email":' + _string(message.to_email)
    if message.to_name:
        to += ',"name":' + _string(message.to_name)
    values = message.values
    pairs = [(k, v) for k, v in values.items() if not (condensed and k in CHECKPOINT_ANSWERS)]
    if twins:
        pairs += [(f"{k}:html", v) for k, v in values.items()
                  if k not in HTML_SAFE_FIELDS and not k.endswith(":html")
                  and f"{k}:html" not in values]
    if condensed:
        url = _checkpoint_url(message)
        if url is not None:
            pairs.append((CHECKPOINT_NAME, url))
    substitutions = ",".join([_string(_tag(k)) + ":" + _string(v) for k, v in pairs])
    headers = ",".join([_string(k) + ":" + _string(v) for k, v in message.headers().items()
                        if k.startswith("List-Unsubscribe")])
    return ('{"to":[' + to + '}],"substitutions":{' + substitutions
            + '},"custom_args":{"delivery_id":"' + str(message.delivery_id)
            + '","batch_key":"' + batch_key
            + '","enrollment_id":"' + str(message.enrollment_id)
            + '","step_key":' + _string(message.step_key) + '},"headers":{' + headers + "}}")


#: The tag of the one checkpoint URL a condensed request sends (never in a template).
CHECKPOINT_NAME = "checkpoint_url"
CHECKPOINT_TAG = f"%%{CHECKPOINT_NAME}%%"
_UNTWIN = re.compile(r"%%([a-z_]+):html%%")

#: The substitution tag of each placeholder name (`first_name` -> `%%first_name%%`).
_TAGS = {name: f"%%{name}%%" for field in RECIPIENT_FIELDS
         for name in (field, f"{field}:html")}


def _tag(name: str) -> str:
    return _TAGS.get(name) or f"%%{name}%%"


def _over_substitution_limit(message: Message) -> bool:
    """Whether `message`'s substitutions exceed the bytes SendGrid allows a recipient."""
    values = message.values
    # UTF-8 takes at most 4 bytes a character: almost every recipient is under the limit
    # on that bound alone, without encoding anything.
    if 4 * sum(len(k) + 4 + len(v) for k, v in values.items()) <= MAX_SUBSTITUTION_BYTES:
        return False
    size = sum(len(_tag(k).encode()) + len(v.encode()) for k, v in values.items())
    return size > MAX_SUBSTITUTION_BYTES


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    value = headers.get(name)
    return str(value) if value is not None else None


def _error_text(exc: http_errors.HTTPError) -> str:
    raw = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body)
    try:
        errors = json.loads(raw).get("errors", [])
        return "; ".join(str(e.get("message")) for e in errors) or raw[:300]
    except (ValueError, AttributeError):
        return raw[:300]


def _personalization_index(exc: http_errors.HTTPError) -> int | None:
    raw = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body)
    try:
        errors = json.loads(raw).get("errors", [])
    except (ValueError, AttributeError):
        return None
    for error in errors:
        field = str(error.get("field") or "")
        if field.startswith("personalizations."):
            part = field.split(".")[1]
            if part.isdigit():
                return int(part)
    return None


# --- the Event Webhook: SendGrid's event JSON onto drip's closed vocabulary --------------------

_EVENT_KINDS: dict[str, EventKind] = {
    "processed": "processed", "delivered": "delivered", "deferred": "deferred",
    "spamreport": "complained", "unsubscribe": "unsubscribed",
    "group_unsubscribe": "unsubscribed", "group_resubscribe": "other",
    "open": "opened", "click": "clicked",
}
#: Drop reasons that mean the address itself can never receive mail from us.
_ADDRESS_DROPS = ("bounced address", "invalid", "spam reporting address")
MAX_DELIVERY_ID = 2**62


def parse_events(data: Any) -> list[ProviderEvent]:
    """The events of one Event Webhook POST (a JSON array); InvalidInput if it is not one.

    drip's custom_args (delivery_id, batch_key, enrollment_id, step_key) come back as
    top-level keys.
    """
    if not isinstance(data, list):
        raise InvalidInput("SendGrid events must be a JSON array.")
    return [_event(item, index) for index, item in enumerate(data)]


def _event(item: Any, index: int) -> ProviderEvent:
    if not isinstance(item, dict):
        raise InvalidInput(f"Event {index} is not a JSON object.")
    name, email, stamp = item.get("event"), item.get("email"), item.get("timestamp")
    if not isinstance(name, str) or not isinstance(email, str):
        raise InvalidInput(f"Event {index} has no event name or email.")
    if isinstance(stamp, bool) or not isinstance(stamp, int | float) or not (
            0 <= stamp < 32_503_680_000):
        raise InvalidInput(f"Event {index} has no valid Unix timestamp.")
    reason = _printable(str(item.get("reason") or item.get("response") or ""))[:500]
    kind: EventKind = _EVENT_KINDS.get(name, "other")
    if name == "bounce":
        kind = "deferred" if item.get("type") == "blocked" else "bounced"
    elif name == "dropped":
        kind = "rejected" if reason.lower().startswith(_ADDRESS_DROPS) else "dropped"
    event_id = item.get("sg_event_id")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 200 or (
            _printable(event_id) != event_id):
        canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), default=str)
        event_id = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    raw_id = item.get("delivery_id")
    delivery_id = int(raw_id) if isinstance(raw_id, str) and raw_id.isdigit() and len(
        raw_id) < 19 and 0 < int(raw_id) < MAX_DELIVERY_ID else None
    name = _printable(name)[:50]
    detail = f"{name}: {reason}" if reason else name
    return ProviderEvent(event_id, kind, _printable(email).strip()[:320],
                         datetime.fromtimestamp(stamp, UTC), delivery_id, detail[:500], item)


def _printable(text: str) -> str:
    """Text without control characters (PostgreSQL refuses NUL in text columns)."""
    if text.isprintable():
        return text
    return "".join(ch for ch in text if ch.isprintable() or ch == " ")

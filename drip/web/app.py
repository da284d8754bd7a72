"""The routes. Each one parses its input, calls one core function and formats the answer.

GET and HEAD never change anything (mail scanners follow links); every change is a POST. The
one exception only counts: the click redirect (redirect.py) records a click, and goes only
where the email's own files point, so there is no open redirect. Errors are short pages
(or JSON on the webhooks) without tracebacks.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from importlib import resources
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric import ec
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from drip import checkpoints, lifecycle, optin, pause_week
from drip.errors import (
    BadSignature,
    ConfigError,
    Conflict,
    DripError,
    InvalidFields,
    InvalidInput,
    NotFound,
    ProviderError,
)
from drip.events import ingest
from drip.planner import ANSWERS, REPEAT_LAST
from drip.providers.sendgrid import parse_events
from drip.purchases import parse_json, record_order, shop_order, stripe_order
from drip.runtime import Drip
from drip.sequence import Sequence
from drip.signatures import sendgrid_public_key, verify_purchase, verify_sendgrid, verify_stripe
from drip.tokens import Purpose
from drip.web.api import api_mount
from drip.web.limits import RateLimiter, read_body
from drip.web.metrics import metrics_routes
from drip.web.preferences import preference_routes
from drip.web.redirect import redirect_routes
from drip.web.shops import shop_routes
from drip.web.words import (
    checkpoint_outcome,
    confirmed_lines,
    pause_outcome,
    program_facts,
    zone_options,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

ANSWER_LABELS = {"passed": "Passed", "not-yet": "Not yet",
                 "repeat-last": "Repeat last week"}
CONSENT_TEXT = ("By pressing the button you agree that {coach} may email you this program "
                "and, now and then, an offer. Every email has a one-click unsubscribe link.")
#: The one script: the sign-up form fills its timezone from the browser. The CSP allows
#: exactly this text (its hash), nothing else; without it the form works the same.
TIMEZONE_SCRIPT = resources.files("drip.web").joinpath("templates/timezone.js").read_text()
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(TIMEZONE_SCRIPT.encode()).digest()).decode()
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),  # the signed token is in the URL
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy",
     b"default-src 'none'; style-src 'unsafe-inline'; "
     + f"script-src 'sha256-{_SCRIPT_HASH}'; ".encode() + b"form-action 'self'; "
     b"frame-ancestors 'none'; base-uri 'none'"),
    (b"cache-control", b"no-store"),
]
STATUS_TITLES = {400: "That did not work", 401: "Not signed", 404: "This link is not valid",
                 405: "Not allowed", 409: "Already settled", 413: "Too large",
                 429: "Too many requests", 500: "Something went wrong",
                 503: "Not available right now"}
SERVER_ERROR = "Something went wrong on our side; please try again later."


def create_app(drip: Drip) -> Starlette:
    """The ASGI app over one Drip (its store, sequences, settings and clock)."""
    web = _Web(drip)
    routes = [
        Route("/health", web.health, methods=["GET"]),
        Route("/u/{token}", web.unsubscribe, methods=["GET", "POST"]),
        Route("/p/{token}", web.pause, methods=["GET", "POST"]),
        Route("/c/{token}", web.checkpoint, methods=["GET", "POST"]),
        Route("/subscribe", web.subscribe, methods=["GET", "POST"]),
        Route("/confirm/{token}", web.confirm, methods=["GET", "POST"]),
        Route("/hooks/purchase", web.purchase_hook, methods=["POST"]),
        Route("/hooks/stripe", web.stripe_hook, methods=["POST"]),
        Route("/hooks/sendgrid", web.sendgrid_hook, methods=["POST"]),
        *shop_routes(drip),
        *metrics_routes(drip),
        *preference_routes(drip),
        *redirect_routes(drip),
        api_mount(drip),
    ]
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        HTTPException: web.http_error, DripError: web.drip_error,
    }
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.router.redirect_slashes = False  # its redirect is built from the Host header
    app.add_middleware(_Edge, fallback=web.server_error)
    return app


def keep_together(text: str) -> str:
    """'7-Week' with a non-breaking hyphen, so a line never ends in '7-'."""
    return re.sub(r"(\d)-(?=[A-Z])", "\\1\u2011", text)  # addresses are lower-case


class _Edge:
    """Headers every answer carries (no sniffing, no framing, no referrer, no caching), and
    the one place an unexpected failure becomes a 500 page, so that page carries them too.

    Starlette answers an `Exception` handler from outside every middleware, without these
    headers; failures are caught here instead, and if even the page fails, plain text.
    """

    def __init__(self, app: ASGIApp,
                 fallback: Callable[[Request, Exception], Awaitable[Response]]) -> None:
        self.app = app
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            if started:
                raise
            try:
                response = await self.fallback(Request(scope), exc)
            except Exception:
                log.exception("the 500 page failed")
                response = PlainTextResponse(SERVER_ERROR, status_code=500)
            await response(scope, receive, send_with_headers)


class _Web:
    def __init__(self, drip: Drip) -> None:
        self.drip = drip
        self.settings = drip.settings
        self.pages = Environment(loader=PackageLoader("drip.web"),
                                 autoescape=select_autoescape(default=True))
        self.pages.filters["keep_together"] = keep_together
        self.limiter = RateLimiter(drip.settings.subscribe_limit)
        self._sendgrid_key: ec.EllipticCurvePublicKey | None = None

    # --- helpers --------------------------------------------------------------------------

    def page(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.pages.get_template(template).render(
            coach=self.settings.from_name, postal_address=self.settings.postal_address,
            **context)
        return HTMLResponse(html, status_code=status)

    def message(self, title: str, *lines: str, status: int = 200) -> HTMLResponse:
        return self.page("message.html", status, title=title, lines=lines)

    def now(self) -> Any:
        return self.drip.clock.now()

    async def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a (blocking, database-touching) core function off the event loop."""
        return await run_in_threadpool(partial(function, *args, **kwargs))

    def token(self, purpose: Purpose, token: str, *counts: int) -> list[int]:
        """The ids a signed link carries; an altered or unknown link is a plain 404."""
        try:
            values = self.drip.links.signer.read(purpose, token)
        except BadSignature:
            raise NotFound("This link is not valid.") from None
        if len(values) not in counts or not all(isinstance(v, int) for v in values):
            raise NotFound("This link is not valid.")
        return [int(v) for v in values]

    async def form(self, request: Request) -> FormData:
        body = await read_body(request)

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        return await Request(request.scope, replay).form(max_files=0, max_fields=20,
                                                         max_part_size=16 * 1024)

    @staticmethod
    def field(data: Any, name: str, limit: int = 320) -> str:
        value = data.get(name) if hasattr(data, "get") else None
        if value is None:
            return ""
        if not isinstance(value, str) or len(value) > limit:
            raise InvalidInput(f"'{name}' must be text of at most {limit} characters.")
        return value.strip()

    @staticmethod
    def requester(request: Request) -> optin.Requester:
        return optin.Requester(request.client.host if request.client else None,
                               request.headers.get("user-agent"))

    # --- pages ----------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def unsubscribe(self, request: Request) -> Response:
        subscriber_id, enrollment_id = self.token("unsubscribe", request.path_params["token"], 2)
        store = self.drip.store
        if request.method != "POST":  # GET or HEAD (scanners send both)
            who = await self.call(store.subscriber_by_id, subscriber_id)
            if who.state == "unsubscribed":
                return self.unsubscribed(who.email)
            return self.page("unsubscribe.html", title="Unsubscribe", email=who.email,
                             offers_stopped=who.offers_opt_out_at is not None,
                             program=await self.program_left(subscriber_id, enrollment_id))
        form = await self.form(request)
        if form.get("List-Unsubscribe") == "One-Click":  # RFC 8058: at once, no page
            await self.call(lifecycle.unsubscribe, store, subscriber_id, self.now(),
                            source="one-click")
            return Response(status_code=200)
        scope = self.field(form, "scope") or "all"
        if scope not in ("all", "program", "offers"):
            raise InvalidInput("Choose 'stop everything', 'stop this program' or 'stop only "
                               "the offers'.")
        await self.call(lifecycle.unsubscribe, store, subscriber_id, self.now(),
                        source="web", scope=scope, enrollment_id=enrollment_id)
        who = await self.call(store.subscriber_by_id, subscriber_id)
        if scope == "offers":
            return self.message("No more offers",
                                f"{who.email} keeps getting the program, without offers.")
        if scope == "program":
            _, key, _ = await self.call(store.enrollment_owner, enrollment_id)
            sequence = self.drip.library.sequences.get(key)
            name = sequence.name if sequence else "this program"
            return self.message(f"You left {name}",
                                f"{who.email} gets no more emails of {name}.",
                                f"You are still on {self.settings.from_name}'s list: a program "
                                "you join or buy later will come as usual. To stop "
                                "everything, use the unsubscribe link in any email.")
        return self.unsubscribed(who.email)

    async def program_left(self, subscriber_id: int, enrollment_id: int) -> str | None:
        """The name of the program an unsubscribe link's email belongs to, while the person
        is still in it (so "stop this program only" can be offered), else None."""
        try:
            owner, key, state = await self.call(self.drip.store.enrollment_owner,
                                                enrollment_id)
        except NotFound:  # a link not from a program's email
            return None
        sequence = self.drip.library.sequences.get(key)
        if owner != subscriber_id or state not in ("active", "paused") or sequence is None:
            return None
        return sequence.name

    def unsubscribed(self, email: str) -> Response:
        return self.message("You are unsubscribed",
                            f"{email} gets no more email from {self.settings.from_name}.")

    async def pause(self, request: Request) -> Response:
        ids = self.token("pause", request.path_params["token"], 1, 2)  # 1: links made before
        enrollment_id, from_delivery = ids[0], (ids[1] if len(ids) == 2 else None)
        store, library = self.drip.store, self.drip.library
        if request.method != "POST":  # GET or HEAD (scanners send both)
            view = await self.call(pause_week.view, store, library, enrollment_id,
                                   from_delivery)
            return self.pause_page(view)
        action = self.field(await self.form(request), "action", 20) or "pause"
        if action not in ("pause", "resume"):
            raise InvalidInput("Press 'Pause one week' or 'Resume now'.")
        act = pause_week.pause if action == "pause" else pause_week.resume
        try:
            view = await self.call(act, store, library, enrollment_id, from_delivery,
                                   self.now())
        except Conflict:
            view = await self.call(pause_week.view, store, library, enrollment_id,
                                   from_delivery)
            return self.pause_page(view, status=409)
        return self.pause_page(view)

    def pause_page(self, view: pause_week.PauseView, status: int = 200) -> Response:
        heading, lines = pause_outcome(view)
        return self.page("pause.html", status, title=heading, heading=heading, lines=lines,
                         state=view.state)

    async def checkpoint(self, request: Request) -> Response:
        (delivery_id,) = self.token("checkpoint", request.path_params["token"], 1)
        store, library = self.drip.store, self.drip.library
        if request.method != "POST":  # GET or HEAD (scanners send both): nothing is saved
            view = await self.call(checkpoints.view, store, library, delivery_id)
            suggested = request.query_params.get("answer", "")
            if view.can_answer and suggested and suggested == view.delivery.answer:
                return self.checkpoint_page(view, "", saved=True)  # saved already: say so
            return self.checkpoint_page(view, suggested if suggested in view.choices else "")
        choice = self.field(await self.form(request), "answer", 20)
        if choice not in (*ANSWERS, REPEAT_LAST):
            raise InvalidInput("Choose 'passed' or 'not yet'.")
        try:
            view = await self.call(checkpoints.answer, store, library, delivery_id, choice,
                                   self.now())
        except Conflict:
            view = await self.call(checkpoints.view, store, library, delivery_id)
            return self.checkpoint_page(view, "", status=409)
        return self.checkpoint_page(view, "", saved=True)

    def checkpoint_page(self, view: checkpoints.CheckpointView, suggested: str,
                        status: int = 200, saved: bool = False) -> Response:
        delivery = view.delivery
        closed = view.closed or ("The next week's email has already gone out, so this "
                                 "checkpoint is settled. Please answer the checkpoint in your "
                                 "latest email instead.")
        heading, lines, until = checkpoint_outcome(view)
        labels = dict(ANSWER_LABELS)
        if view.repeat_step is not None:
            labels[REPEAT_LAST] = f"Repeat Week {view.repeat_step.week} instead"
        return self.page(
            "checkpoint.html", status, title=f"Week {view.week} checkpoint", week=view.week,
            question=view.checkpoint.question, passing=view.checkpoint.passing,
            current=labels.get(delivery.answer or "", ""),
            current_value=delivery.answer or "", labels=labels,
            choices=view.choices, can_answer=view.can_answer, closed=closed,
            suggested=suggested, saved=saved and delivery.answer is not None,
            saved_heading=heading, next_lines=lines, change_until=until,
            repeat_week=view.repeat_step.week if view.repeat_step else None)

    # --- opt-in ---------------------------------------------------------------------------

    def default_sequence(self) -> str:
        keys = sorted(self.drip.library.sequences)
        return keys[0] if len(keys) == 1 else ""

    def sequence_for(self, key: str) -> Sequence:
        sequence = self.drip.library.sequences.get(key or self.default_sequence())
        if sequence is None:
            raise NotFound("There is no such program.")
        return sequence

    def subscribe_page(self, sequence: Sequence, values: Mapping[str, str] | None = None,
                       refused: InvalidFields | None = None) -> Response:
        """The sign-up form; after a refusal, what was typed and a sentence by each field."""
        values = dict(values or {})
        problems = dict(refused.problems) if refused else {}
        zone_guess = refused.suggestions.get("timezone") if refused else None
        if zone_guess:
            problems["timezone"] += " It is selected below: check it, then press the button."
        selected = zone_guess or ("" if "timezone" in problems else values.get("timezone", ""))
        options = zone_options()
        if selected and all(selected != value for _, zones in options for value, _ in zones):
            options = [("Typed", [(selected, selected)]), *options]  # valid, just not listed
        return self.page(
            "subscribe.html", 400 if refused else 200, title=sequence.name,
            sequence=sequence.key, sequence_name=sequence.name,
            description=sequence.description, facts=program_facts(sequence),
            disclaimer=sequence.disclaimer, send_time=f"{sequence.schedule.send_time:%H:%M}",
            action="/subscribe", consent_text=self.consent_text, values=values,
            problems=problems, zone_options=options, selected_zone=selected,
            timezone_script=Markup(TIMEZONE_SCRIPT))

    @property
    def consent_text(self) -> str:
        return CONSENT_TEXT.format(coach=self.settings.from_name)

    async def subscribe(self, request: Request) -> Response:
        if request.method != "POST":  # GET or HEAD (scanners send both)
            return self.subscribe_page(self.sequence_for(
                request.query_params.get("sequence", "")))
        wants_json = request.headers.get("content-type", "").startswith("application/json")
        requester = self.requester(request)
        if not self.limiter.allow(requester.ip or "?", self.now().timestamp()):
            raise HTTPException(429, "Too many requests from your address; try again later.",
                                headers={"Retry-After": "3600"})
        data: Any = (parse_json(await read_body(request)) if wants_json
                     else await self.form(request))
        if not isinstance(data, dict | FormData):
            raise InvalidInput("Send a JSON object with email, name, timezone and sequence.")
        # generous read limits: the core says what is too long, beside the field
        values = {"email": self.field(data, "email", 1000),
                  "name": self.field(data, "name", 1000),
                  "timezone": self.field(data, "timezone", 200),
                  "sequence": self.field(data, "sequence", 100) or self.default_sequence()}
        provider = self.drip.provider()
        try:
            await self.call(
                optin.request_optin, self.drip.store, self.drip.library, provider,
                self.drip.links, self.drip.sender, email=values["email"],
                sequence_key=values["sequence"], name=values["name"],
                timezone=values["timezone"], requester=requester,
                text_version=self.settings.consent_text_version, now=self.now(),
                consent_text=None if wants_json else self.consent_text)
        except InvalidFields as refused:
            if wants_json:
                raise
            return self.subscribe_page(self.sequence_for(values["sequence"]), values, refused)
        finally:
            provider.close()
        if wants_json:
            return JSONResponse({"status": "pending", "message": "Check your inbox: we sent "
                                 "a link to confirm the address."}, status_code=202)
        return self.message(
            "Check your inbox",
            f"We sent a link to {values['email'].strip()}. Press it to confirm your address, "
            "and the first email is on its way.",
            "Nothing there in a few minutes? Look in your spam folder, or check the address "
            "and sign up again.")

    async def confirm(self, request: Request) -> Response:
        token = request.path_params["token"]
        store, library, links = self.drip.store, self.drip.library, self.drip.links
        if request.method != "POST":  # GET or HEAD (scanners send both)
            pending = await self.call(optin.pending, store, links, token)
            sequence = library.sequences.get(pending.sequence_key)
            if sequence is None:
                raise NotFound("That program no longer exists.")
            return self.page("confirm.html", title="Confirm", email=pending.email,
                             sequence_name=sequence.name)
        await self.form(request)
        try:
            pending, outcome = await self.call(optin.confirm_optin, store, library, links, token,
                                               requester=self.requester(request), now=self.now())
        except Conflict as exc:
            return self.message("You are not signed up", exc.message, status=409)
        sequence = library.sequence(pending.sequence_key)
        name = sequence.name
        if outcome.created:
            return self.message("You are in", *confirmed_lines(sequence, pending.email,
                                                               pending.timezone))
        return self.message("You are already in", f"{pending.email} already receives {name}.")

    # --- webhooks -------------------------------------------------------------------------

    async def purchase_hook(self, request: Request) -> Response:
        body = await read_body(request)
        verify_purchase(self.settings.webhook_secret, body,
                        request.headers.get("x-drip-timestamp"),
                        request.headers.get("x-drip-signature"), self.now())
        order = shop_order(parse_json(body))
        outcome = await self.call(record_order, self.drip.store, self.drip.library,
                                  self.drip.catalog, order, self.now())
        return JSONResponse({"recorded": outcome.recorded, "enrolled_in": outcome.enrolled_in,
                             "note": outcome.note})

    async def stripe_hook(self, request: Request) -> Response:
        body = await read_body(request)
        verify_stripe(self.settings.stripe_webhook_secret, body,
                      request.headers.get("stripe-signature"), self.now())
        data = parse_json(body)
        order = stripe_order(data)
        if order is None:
            return JSONResponse({"ignored": str(data.get("type"))[:100]})
        outcome = await self.call(record_order, self.drip.store, self.drip.library,
                                  self.drip.catalog, order, self.now(),
                                  payload={"stripe_event": str(data.get("id", ""))[:200]})
        return JSONResponse({"recorded": outcome.recorded, "enrolled_in": outcome.enrolled_in,
                             "note": outcome.note})

    async def sendgrid_hook(self, request: Request) -> Response:
        if self._sendgrid_key is None:
            self._sendgrid_key = sendgrid_public_key(self.settings.sendgrid_webhook_public_key)
        body = await read_body(request, self.settings.events_max_bytes)
        verify_sendgrid(self._sendgrid_key, body,
                        request.headers.get("x-twilio-email-event-webhook-timestamp"),
                        request.headers.get("x-twilio-email-event-webhook-signature"),
                        self.now())
        events = parse_events(parse_json(body))
        report = await self.call(ingest, self.drip.store, events, self.now())
        return JSONResponse({"received": report.received, "new": report.new})

    # --- errors ---------------------------------------------------------------------------

    def error(self, request: Request, status: int, text: str,
              headers: Mapping[str, str] | None = None,
              fields: Mapping[str, str] | None = None) -> Response:
        # a message may echo the input: one that is not text (a lone surrogate) must not
        # stop the answer from being written
        text = text.encode("utf-8", "replace").decode()
        if request.url.path.startswith("/hooks/") or request.headers.get(
                "content-type", "").startswith("application/json"):
            body: dict[str, Any] = {"error": text}
            if fields:
                body["fields"] = dict(fields)
            return JSONResponse(body, status_code=status, headers=headers)
        response = self.message(STATUS_TITLES.get(status, "That did not work"), text,
                                status=status)
        response.headers.update(headers or {})
        return response

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        text = {404: "There is nothing here.", 405: "That is not allowed here."}.get(
            exc.status_code, exc.detail)
        return self.error(request, exc.status_code, text, exc.headers)

    async def drip_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DripError)
        if isinstance(exc, NotFound):
            return self.error(request, 404, "This link is not valid, or what it pointed to "
                                            "no longer exists.")
        if isinstance(exc, BadSignature):
            return self.error(request, 401, exc.message)
        if isinstance(exc, InvalidFields):
            return self.error(request, 400, exc.message, fields=exc.problems)
        if isinstance(exc, InvalidInput):
            return self.error(request, 400, exc.message)
        if isinstance(exc, Conflict):
            return self.error(request, 409, exc.message)
        if isinstance(exc, ConfigError | ProviderError):
            log.error("%s: %s", request.url.path, exc.message)
            return self.error(request, 503, "This is not available right now; please try "
                                            "again later.")
        return await self.server_error(request, exc)

    async def server_error(self, request: Request, exc: Exception) -> Response:
        log.error("%s failed", request.url.path, exc_info=exc)
        return self.error(request, 500, SERVER_ERROR)

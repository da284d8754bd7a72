"""The API for other systems (/api/v1): enroll, look up, unsubscribe, record a purchase.

Each request carries `Authorization: Bearer KEY` (drip.api_keys); each route needs one
scope. Errors are RFC 9457 problem details (application/problem+json). The routes are
a sub-application, so even a 404 or 405 under /api/v1 answers as a problem.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from drip import api_keys, lifecycle, operations
from drip.addresses import require_timezone
from drip.api_keys import MissingScope
from drip.errors import BadSignature, ConfigError, Conflict, DripError, InvalidInput, NotFound
from drip.purchases import order_from, parse_json, record_order
from drip.runtime import Drip
from drip.store import ConsentRecord
from drip.subscriptions import enroll
from drip.web.limits import read_body
from drip.web.openapi import OPENAPI

Handler = Callable[[Request], Awaitable[Response]]


def api_mount(drip: Drip) -> Mount:
    """/api/v1 and everything under it."""
    api = _Api(drip)
    routes = [
        Route("/openapi.json", api.openapi, methods=["GET"]),
        Route("/enrollments", api.scoped("enroll", api.create_enrollment), methods=["POST"]),
        Route("/subscribers/{email}", api.scoped("read", api.journey), methods=["GET"]),
        Route("/subscribers/{email}", api.scoped("unsubscribe", api.unsubscribe),
              methods=["DELETE"]),
        Route("/events/purchase", api.scoped("enroll", api.purchase), methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={
        HTTPException: api.http_problem, DripError: api.drip_problem,
        Exception: api.server_problem})
    app.router.redirect_slashes = False
    mount = Mount("/api/v1", app=app)
    # Starlette's Mount pattern ends in `.*`, which stops at a line break: a path with an
    # encoded newline would fall through to the pages' HTML 404 instead of a problem.
    mount.path_regex = re.compile(mount.path_regex.pattern, re.DOTALL)
    return mount


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An RFC 9457 problem: type about:blank, so the title is the status's own phrase."""
    return JSONResponse({"type": "about:blank", "title": HTTPStatus(status).phrase,
                         "status": status, "detail": detail}, status_code=status,
                        headers=headers, media_type="application/problem+json")


class _Api:
    def __init__(self, drip: Drip) -> None:
        self.drip = drip

    def scoped(self, scope: str, handler: Handler) -> Handler:
        async def checked(request: Request) -> Response:
            request.state.api_key = await run_in_threadpool(
                api_keys.authenticate, self.drip.store, request.headers.get("authorization"),
                scope)
            return await handler(request)

        return checked

    async def body(self, request: Request) -> dict[str, Any]:
        data = parse_json(await read_body(request))
        if not isinstance(data, dict):
            raise InvalidInput("Send a JSON object.")
        return data

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(OPENAPI)

    async def create_enrollment(self, request: Request) -> Response:
        data = await self.body(request)
        if data.get("consent") is not True:
            raise InvalidInput("Set \"consent\": true to say this person agreed to be "
                               "emailed; drip enrolls nobody without consent.")
        fields = {name: _text(data, name) for name in ("email", "sequence", "name",
                                                       "timezone")}
        drip = self.drip
        outcome = await run_in_threadpool(
            enroll, drip.store, drip.library, email=fields["email"],
            sequence_key=fields["sequence"], now=drip.clock.now(), name=fields["name"],
            timezone=require_timezone(fields["timezone"]), source="api", tags=data.get("tags"),
            consent=ConsentRecord(source="api", confirmed_at=drip.clock.now(),
                                  details={"api_key": request.state.api_key.name,
                                           "via": "POST /api/v1/enrollments"}))
        return JSONResponse({"created": outcome.created, "subscriber_id": outcome.subscriber_id,
                             "enrollment_id": outcome.enrollment_id, "state": outcome.state},
                            status_code=201 if outcome.created else 200)

    async def journey(self, request: Request) -> Response:
        found = await run_in_threadpool(operations.timeline, self.drip.store,
                                        request.path_params["email"])
        person = found.subscriber
        return JSONResponse(_plain({
            "email": person.email, "name": person.name, "timezone": person.timezone,
            "state": person.state, "joined_at": person.created_at,
            "enrollments": [{"sequence": e.sequence_key, "state": e.state,
                             "enrolled_at": e.enrolled_at} for e in found.enrollments],
            "deliveries": [{"step": d.step_key, "variant": d.variant, "state": d.state,
                            "due_at": d.due_at, "sent_at": d.sent_at}
                           for d in found.deliveries],
            "purchases": [asdict(p) for p in found.purchases]}))

    async def unsubscribe(self, request: Request) -> Response:
        change = await run_in_threadpool(lifecycle.unsubscribe_email, self.drip.store,
                                         request.path_params["email"], self.drip.clock.now(),
                                         source="api")
        return JSONResponse({"unsubscribed": True, "changed": change.changed})

    async def purchase(self, request: Request) -> Response:
        data = await self.body(request)
        drip = self.drip
        order = order_from("api", data)
        outcome = await run_in_threadpool(record_order, drip.store, drip.library, drip.catalog,
                                          order, drip.clock.now())
        return JSONResponse({"recorded": outcome.recorded, "enrolled_in": outcome.enrolled_in,
                             "note": outcome.note}, status_code=201 if outcome.recorded else 200)

    async def http_problem(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        detail = {404: "There is no such API route; see /api/v1/openapi.json.",
                  405: "This route does not take that method."}.get(exc.status_code,
                                                                     str(exc.detail))
        return problem(exc.status_code, detail)

    async def drip_problem(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DripError)
        if isinstance(exc, BadSignature):
            return problem(401, exc.message, {"WWW-Authenticate": "Bearer"})
        if isinstance(exc, MissingScope):
            return problem(403, exc.message)
        if isinstance(exc, InvalidInput):
            return problem(400, exc.message)
        if isinstance(exc, NotFound):
            return problem(404, exc.message)
        if isinstance(exc, Conflict):
            return problem(409, exc.message)
        if isinstance(exc, ConfigError):
            return problem(503, "This is not available right now; please try again later.")
        return await self.server_problem(request, exc)

    async def server_problem(self, request: Request, exc: Exception) -> Response:
        import logging

        logging.getLogger(__name__).error("%s failed", request.url.path, exc_info=exc)
        return problem(500, "Something went wrong on our side; please try again later.")


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 320 or "\x00" in value:
        raise InvalidInput(f"'{name}' must be text of at most 320 characters.")
    return value.strip()


def _plain(value: Any) -> Any:
    from datetime import datetime

    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value

"""The "when do you want these?" page (GET/POST /w/{token}): a subscriber's own send time
and weekday. GET shows the form and changes nothing; POST saves through drip.preferences
and says when the next email now arrives, in the subscriber's zone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import time
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import Message

from drip import preferences
from drip.errors import BadSignature, InvalidPreference, NotFound
from drip.runtime import Drip
from drip.sequence import WEEKDAYS
from drip.web.limits import read_body
from drip.web.words import local_when

FIELDS = ("send_time", "weekday")


def preference_routes(drip: Drip) -> list[Route]:
    """GET and POST /w/{token}: the signed link every email carries (Links.preferences)."""
    return [Route("/w/{token}", _page(drip), methods=["GET", "POST"])]


def _page(drip: Drip) -> Callable[[Request], Awaitable[Response]]:
    pages = Environment(loader=PackageLoader("drip.web"),
                        autoescape=select_autoescape(default=True))

    def render(found: preferences.PreferencesView, status: int = 200, *, saved: bool = False,
               problems: dict[str, str] | None = None,
               entered: dict[str, str] | None = None) -> Response:
        person = found.subscriber
        chosen = entered if entered is not None else {
            "send_time": (person.preference.send_time.strftime("%H:%M")
                          if person.preference.send_time else ""),
            "weekday": person.preference.weekday or ""}
        html = pages.get_template("preferences.html").render(
            coach=drip.settings.from_name, postal_address=drip.settings.postal_address,
            title="When do you want these?", email=person.email, timezone=person.timezone,
            unsubscribed=person.unsubscribed, times=found.times,
            days=[d for d in WEEKDAYS if d in found.days],
            program_time=f"{found.program_time:%H:%M}",
            opens=f"{found.opens:%H:%M}", closes=_closing(found), chosen=chosen,
            problems=problems or {}, saved=saved,
            arrivals=[(a.sequence_name, a.label, local_when(a.due_at, person.timezone))
                      for a in found.arrivals])
        return HTMLResponse(html, status_code=status)

    async def page(request: Request) -> Response:
        subscriber_id = _subscriber(drip, request.path_params["token"])
        if request.method != "POST":  # GET or HEAD (mail scanners send both): reads only
            found = await run_in_threadpool(preferences.view, drip.store, drip.library,
                                            subscriber_id)
            return render(found)
        form = await _form(request)
        entered = {name: _text(form.get(name)) for name in FIELDS}
        try:
            found = await run_in_threadpool(
                lambda: preferences.save(drip.store, drip.library, subscriber_id,
                                         send_time=entered["send_time"],
                                         weekday=entered["weekday"], now=drip.clock.now()))
        except InvalidPreference as exc:  # the form again, the message beside its field
            found = await run_in_threadpool(preferences.view, drip.store, drip.library,
                                            subscriber_id)
            return render(found, 400, problems=exc.problems, entered=entered)
        return render(found, saved=True)

    return page


def _subscriber(drip: Drip, token: str) -> int:
    try:
        values = drip.links.signer.read("preferences", token)
    except BadSignature:
        raise NotFound("This link is not valid.") from None
    if len(values) != 1 or not isinstance(values[0], int):
        raise NotFound("This link is not valid.")
    return values[0]


async def _form(request: Request) -> Any:
    body = await read_body(request)

    async def replay() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return await Request(request.scope, replay).form(max_files=0, max_fields=10,
                                                     max_part_size=1024)


def _text(value: Any) -> str:
    """A form value as short text ('' for a file, a missing field or something too long,
    which the rules then report as no choice or a wrong one)."""
    if not isinstance(value, str):
        return ""
    return value.strip()[:20]


def _closing(found: preferences.PreferencesView) -> str:
    return "midnight" if found.closes == time.max else f"{found.closes:%H:%M}"

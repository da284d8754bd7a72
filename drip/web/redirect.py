"""GET /r/{token}: the click redirect. It records the click (drip.experiments.clicks) and
sends the reader on, only ever to an address the email itself names: never an open
redirect. A HEAD request (a link scanner's) is answered the same and never recorded."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from drip.experiments.clicks import follow
from drip.runtime import Drip

#: Long enough for any link drip signs; a longer one is refused before it is read.
MAX_TOKEN = 4096


def redirect_routes(drip: Drip) -> list[Route]:
    async def redirect(request: Request) -> Response:
        token = request.path_params["token"]
        if len(token) > MAX_TOKEN:
            token = ""  # refused as not valid, without reading it
        url = await run_in_threadpool(follow, drip.store, drip.renderer, drip.links, token,
                                      drip.clock.now(), head=request.method == "HEAD")
        return RedirectResponse(url, status_code=302)

    return [Route("/r/{token}", redirect, methods=["GET", "HEAD"])]

"""The shops' webhooks (drip.shops): one route per shop, each reading the raw body and
handing it to drip.shops.receive, which verifies, parses and records it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from drip.runtime import Drip
from drip.shops import SHOPS, Shop, receive
from drip.web.limits import read_body


def shop_routes(drip: Drip) -> list[Route]:
    """POST /hooks/shopify, /hooks/lemonsqueezy and /hooks/gumroad/{secret}."""
    return [Route(shop.path, _hook(drip, shop), methods=["POST"]) for shop in SHOPS]


def _hook(drip: Drip, shop: Shop) -> Callable[[Request], Awaitable[Response]]:
    async def hook(request: Request) -> Response:
        body = await read_body(request)
        answer = await run_in_threadpool(
            receive, shop, drip.settings, drip.store, drip.library, drip.catalog, body,
            request.headers, request.path_params, drip.clock.now())
        return JSONResponse(answer)

    return hook

"""GET /metrics for Prometheus: answered to loopback clients always, to anyone else only
with `Authorization: Bearer DRIP_METRICS_TOKEN`. A request that came through a proxy
(X-Forwarded-For or Forwarded) is not a loopback request, whatever its socket says."""

from __future__ import annotations

import hmac
import ipaddress

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from drip.metrics import CONTENT_TYPE, render
from drip.runtime import Drip


def metrics_routes(drip: Drip) -> list[Route]:
    async def metrics(request: Request) -> Response:
        _allow(request, drip.settings.metrics_token)
        now = drip.clock.now()
        snapshot = await run_in_threadpool(drip.store.metrics_snapshot, now)
        return Response(render(snapshot, now), media_type=CONTENT_TYPE)

    return [Route("/metrics", metrics, methods=["GET"])]


def _allow(request: Request, token: str) -> None:
    given = request.headers.get("authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return
    if _loopback(request) and not given:
        return
    if not token:
        raise HTTPException(403, "Metrics are answered only on this machine; set "
                                 "DRIP_METRICS_TOKEN to scrape them from elsewhere.")
    raise HTTPException(401, "Send Authorization: Bearer DRIP_METRICS_TOKEN.",
                        headers={"WWW-Authenticate": "Bearer"})


def _loopback(request: Request) -> bool:
    if "x-forwarded-for" in request.headers or "forwarded" in request.headers:
        return False
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

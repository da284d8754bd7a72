"""`drip serve`: the subscriber-facing web app under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from drip.cli._common import drip_from_env, guarded


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


@guarded
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve opt-in, unsubscribe, checkpoint pages and the webhooks (behind your HTTPS proxy)."""
    import uvicorn

    from drip.web import create_app

    with drip_from_env() as drip:
        drip.catalog  # noqa: B018 - a mistake in the catalog stops start-up, not a purchase
        # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise: anyone on
        # the machine could then rotate it past the opt-in rate limit.
        proxies = list(drip.settings.trusted_proxies)
        uvicorn.run(create_app(drip), host=host, port=port, proxy_headers=bool(proxies),
                    forwarded_allow_ips=proxies or None, server_header=False,
                    log_level=drip.settings.log_level.lower())

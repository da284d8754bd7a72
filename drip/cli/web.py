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
        uvicorn.run(create_app(drip), host=host, port=port, proxy_headers=True,
                    server_header=False, log_level=drip.settings.log_level.lower())

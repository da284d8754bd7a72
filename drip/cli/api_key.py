"""`drip api-key create/list/revoke`: keys other systems call the API (/api/v1) with."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from drip.cli._common import console, drip_from_env, guarded, print_json

app = typer.Typer(help="Create, list or revoke API keys.", no_args_is_help=True)
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command("create")
@guarded
def create(
    name: Annotated[str, typer.Option("--name", help="What the key is for, such as zapier.")],
    scopes: Annotated[list[str], typer.Option("--scope", help="enroll, read or unsubscribe "
                                              "(repeatable).")],
    as_json: Json = False,
) -> None:
    """Make a key and print it once; drip keeps only its hash."""
    from drip import api_keys

    with drip_from_env() as drip:
        key, row = api_keys.create(drip.store, name, scopes, drip.clock.now())
    if as_json:
        print_json({"key": key, "name": row.name, "scopes": list(row.scopes)})
        return
    console.print(escape(f"API key '{row.name}' ({', '.join(row.scopes)}):"), highlight=False)
    console.print(key, highlight=False, soft_wrap=True)
    console.print("Copy it now: it is not shown again.")


@app.command("list")
@guarded
def list_keys(as_json: Json = False) -> None:
    """Every key: name, scopes, its first characters, when made and revoked."""
    with drip_from_env() as drip:
        rows = drip.store.api_keys()
    if as_json:
        print_json([{"name": r.name, "prefix": r.prefix, "scopes": list(r.scopes),
                     "created_at": r.created_at, "revoked_at": r.revoked_at} for r in rows])
        return
    for r in rows:
        state = f"revoked {r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "active"
        console.print(escape(f"{r.name}  {r.prefix}...  {' '.join(r.scopes)}  "
                             f"made {r.created_at:%Y-%m-%d %H:%M}  {state}"), highlight=False)
    if not rows:
        console.print("No API keys yet; `drip api-key create --name NAME --scope read` makes one.")


@app.command("revoke")
@guarded
def revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Stop a key working at once."""
    from drip import api_keys

    with drip_from_env() as drip:
        api_keys.revoke(drip.store, name, drip.clock.now())
    console.print(escape(f"Revoked the API key '{name}'."), highlight=False)

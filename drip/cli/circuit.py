"""`drip circuit`: see and reset the provider circuit that halts sending after provider trouble."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from drip.cli._common import console, drip_from_env, guarded, print_json

app = typer.Typer(help="See or reset the provider circuit.", no_args_is_help=True)


@app.command("show")
@guarded
def show(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Show each provider's circuit: closed (sending) or open (halted, with the reason)."""
    with drip_from_env() as drip:
        rows = drip.store.circuits()
    if as_json:
        print_json([row.__dict__ for row in rows])
        return
    from rich.table import Table

    table = Table(title="Provider circuits")
    for column in ("Provider", "State", "Since", "Next probe", "Reason"):
        table.add_column(column)
    for row in rows:
        style = "red" if row.state == "open" else "green"
        table.add_row(row.provider, f"[{style}]{row.state}[/]",
                      f"{row.opened_at:%Y-%m-%d %H:%M}" if row.opened_at else "-",
                      f"{row.retry_at:%Y-%m-%d %H:%M}" if row.retry_at else "-",
                      Text(row.reason or ""))  # the provider's text, never markup
    console.print(table if rows else "Every provider circuit is closed.")


@app.command("reset")
@guarded
def reset(provider: Annotated[str | None, typer.Argument(help="Provider name.")] = None) -> None:
    """Close the circuit now (after fixing the API key, say), so the next dispatch sends."""
    with drip_from_env() as drip:
        name = provider or drip.settings.backend
        was_open = drip.store.close_circuit(name, drip.clock.now())
    console.print(f"The {name} circuit is closed." if was_open
                  else f"The {name} circuit was not open.")

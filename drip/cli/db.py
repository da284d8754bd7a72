"""`drip db`: bring the database schema up to date."""

from __future__ import annotations

import typer

from drip.cli._common import console, drip_from_env, guarded
from drip.db import upgrade as upgrade_database

app = typer.Typer(help="Manage the database schema.", no_args_is_help=True)


@app.command("upgrade")
@guarded
def upgrade() -> None:
    """Apply every migration the database does not have yet (safe to run again)."""
    with drip_from_env(migrated=False) as drip:
        before, after = upgrade_database(drip.store.engine)
    if before == after:
        console.print(f"The database is already at the newest migration ({after}).")
    else:
        console.print(f"Upgraded the database from {before or 'empty'} to {after}.")

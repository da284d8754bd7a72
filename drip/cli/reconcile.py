"""`drip reconcile`: settle unknown emails now by asking SendGrid what it holds of each batch."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.text import Text

from drip.cli._common import EXIT_FAILED, console, drip_from_env, guarded, print_json, within


def register(app: typer.Typer) -> None:
    app.command("reconcile")(reconcile)


@guarded
def reconcile(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Ask, but change nothing.")] = False,
    limit: Annotated[int, typer.Option(callback=within(1, 10_000), metavar="N",
                                       help="Batches to ask about, oldest first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Ask SendGrid's Email Activity API about each unknown batch older than
    DRIP_SENDGRID_SETTLE_SECONDS: what it holds is sent, the rest is sent again."""
    from drip import reconcile as core

    with drip_from_env() as drip:
        provider = drip.provider()
        try:
            reports = core.reconcile(
                drip.store, core.asker(provider), drip.clock.now(), limit=limit,
                settle_after=timedelta(seconds=drip.settings.sendgrid_settle_seconds),
                dry_run=dry_run)
        finally:
            provider.close()
    if as_json:
        print_json([r.__dict__ for r in reports])
    elif not reports:
        console.print("No unknown batch is old enough to ask about.")
    else:
        from rich.table import Table

        table = Table(title="Unknown batches" + (" (dry run: nothing changed)" if dry_run else ""))
        for column in ("Batch", "Unanswered since", "Unknown", "SendGrid holds",
                       "Not held", "Sent again", "Left for you", "Could not ask"):
            table.add_column(column)
        for r in reports:
            table.add_row(r.batch_key, f"{r.since:%Y-%m-%d %H:%M}", str(r.unknown),
                          str(r.held), str(r.not_held), "-" if dry_run else str(r.resent),
                          "-" if dry_run else str(r.left), Text(r.error or ""))
        console.print(table)
    if any(r.error or r.left for r in reports):
        raise typer.Exit(EXIT_FAILED)

"""`drip demo`: see what the 7-week program sends to three runners, in their local time."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from drip.cli._common import console, guarded, settings
from drip.demo import run_demo


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


@guarded
def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo keeps its files.")
    ] = Path("var/demo"),
) -> None:
    """Enroll three runners in three timezones and dispatch seven weeks in simulated time."""
    started = time.monotonic()
    rows, outbox = run_demo(settings(), directory)
    from rich.table import Table

    table = Table(title="What each runner received (local time)")
    for column in ("Runner", "Timezone", "Step", "Local send time", "Days since last"):
        table.add_column(column)
    previous: dict[str, object] = {}
    for row in sorted(rows, key=lambda r: (r.email, r.sent_at)):
        last = previous.get(row.email)
        gap = f"{(row.sent_at - last).total_seconds() / 86400:.1f}" if last else "-"  # type: ignore[operator]
        previous[row.email] = row.sent_at
        table.add_row(row.email, row.timezone, row.step_key,
                      f"{row.local:%a %d %b %Y %H:%M %Z}", gap)
    console.print(table)
    files = sorted(outbox.glob("*.eml"))
    console.print(f"{len(files)} emails written to {outbox}/ (open any .eml file in a mail "
                  f"client). Simulated 7 weeks in {time.monotonic() - started:.1f} s.")

"""`drip demo`: see what the 7-week program sends to three runners, in their local time."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated

import typer

from drip.cli._common import console, guarded, settings
from drip.demo import PERSONAS, run_demo

#: What to try once the demo has shown what goes out.
NEXT_STEPS = (
    ("drip preview --serve", "every email of the program at phone and desktop widths, "
                             "reloading as you edit templates/"),
    ("DRIP_DATABASE_URL=sqlite:///var/demo/drip.db drip serve",
     "the web app over the demo's database: sign-up form, checkpoint and unsubscribe pages"),
    ("drip simulate --sequence pht-7-week --timezone Europe/London --answers "
     "pass,notyet,pass,pass,pass,pass,pass", "one runner who answers, week by week"),
)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


@guarded
def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo keeps its files.")
    ] = Path("var/demo"),
) -> None:
    """Enroll three runners in three timezones and dispatch seven weeks in simulated time."""
    from drip.stats import KINDS

    started = time.monotonic()
    current = settings()
    # The demo's own database is migrated from nothing each time: which migrations ran
    # is not news here (`drip db upgrade` still says).
    logging.getLogger("alembic").setLevel(logging.WARNING)
    places = ", ".join(tz.split("/")[-1].replace("_", " ") for _, _, tz, _ in PERSONAS)
    console.print(f"Seven weeks of the 7-week program for three runners ({places}), in "
                  "simulated time. The clock jumps from one send time to the next, so each "
                  "email goes out at the minute a scheduler making a pass every minute would "
                  "send it.", highlight=False)
    rows, outbox = run_demo(current, directory)
    from rich.table import Table

    table = Table(title="What each runner received (local time)")
    for column in ("Runner", "Timezone", "Step", "Email", "Local send time", "Days since last"):
        table.add_column(column)
    previous: dict[str, object] = {}
    for row in sorted(rows, key=lambda r: (r.email, r.sent_at)):
        last = previous.get(row.email)
        gap = f"{(row.sent_at - last).total_seconds() / 86400:.1f}" if last else "-"  # type: ignore[operator]
        previous[row.email] = row.sent_at
        kind = row.variant.removesuffix("+reminder")
        table.add_row(row.email, row.timezone, row.step_key,
                      KINDS.get(kind, kind) + (" + no-answer note" if kind != row.variant
                                               else ""),
                      f"{row.local:%a %d %b %Y %H:%M %Z}", gap)
    console.print(table)
    files = sorted(outbox.glob("*.eml"))
    console.print(
        "Week 1 goes out as soon as someone joins; every other email at 06:30 in the "
        "runner's own timezone, across the DST changes. Nobody in the demo answers a "
        "checkpoint: silence moves a runner on through weeks 1-4 (with a note), but week 5 "
        "decides running, so there each gets the waiting email instead and is then paused "
        "for the coach. Silence never moves anyone into running.", highlight=False)
    console.print(f"{len(files)} emails written to {outbox}/ (open any .eml file in a mail "
                  f"client). Simulated 7 weeks in {time.monotonic() - started:.1f} s.",
                  highlight=False)
    console.print("\nNext, after `. .venv/bin/activate`:", highlight=False)
    for command, what in NEXT_STEPS:
        console.print(f"  [bold]{command}[/]\n      {what}", highlight=False)

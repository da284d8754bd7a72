"""`drip webhook deliver` and `drip webhook log`: the outgoing webhooks (drip.webhooks)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from drip.cli._common import EXIT_CONFIG, console, drip_from_env, fail, guarded, print_json, within

app = typer.Typer(help="Post or inspect the outgoing webhooks.", no_args_is_help=True)


@app.command("deliver")
@guarded
def deliver() -> None:
    """Post the due webhooks once (the scheduler does this every few seconds)."""
    from drip.webhooks import deliver_due

    with drip_from_env() as drip:
        targets = drip.settings.webhook_targets
        if not targets:
            fail("DRIP_WEBHOOK_URLS is not set, so there is nowhere to post to.", EXIT_CONFIG)
        report = deliver_due(drip.store, targets, drip.settings.webhook_signing_secret,
                             drip.clock.now())
    console.print(f"Delivered {report.delivered}; {report.retrying} will be retried, "
                  f"{report.failed} failed for good.")


@app.command("log")
@guarded
def log(limit: Annotated[int, typer.Option(help="How many, newest first.", metavar="N",
                                           callback=within(1, 10_000))] = 50,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """What was delivered, what is being retried and what failed, newest first."""
    with drip_from_env() as drip:
        rows = drip.store.webhook_log(limit)
    if as_json:
        print_json([r.__dict__ for r in rows])
        return
    for r in rows:
        console.print(escape(f"{r.created_at:%Y-%m-%d %H:%M:%S} {r.msg_id} {r.event} "
                             f"{r.state} after {r.attempts} attempts"
                             + (f": {r.last_error}" if r.last_error else "")), highlight=False)
    if not rows:
        console.print("No outgoing webhooks yet.")

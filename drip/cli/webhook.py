"""`drip webhook add/list/remove/deliver/log`: the outgoing webhooks (drip.webhooks)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from drip.cli._common import EXIT_CONFIG, console, drip_from_env, fail, guarded, print_json, within

app = typer.Typer(help="Add receivers of the outgoing webhooks, post them, inspect them.",
                  no_args_is_help=True)
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command("add")
@guarded
def add(url: Annotated[str, typer.Argument(help="Where to POST, such as "
                                                "https://hooks.example.com/drip.")],
        events: Annotated[list[str] | None, typer.Option(
            "--events", help="The events it gets, comma-separated or repeated (default: "
                             "all): enrolled, email.sent, checkpoint.answered, graduated, "
                             "paused, unsubscribed, suppressed, purchased.")] = None,
        as_json: Json = False) -> None:
    """Post events to URL from now on, signed with a secret of its own (shown once)."""
    from drip.webhooks.endpoints import add_endpoint

    with drip_from_env() as drip:
        row = add_endpoint(drip.store, url, events or (), drip.clock.now())
    if as_json:
        print_json({"url": row.url, "events": list(row.events), "secret": row.secret})
        return
    console.print(escape(f"Posting {', '.join(row.events) or 'every event'} to {row.url}, "
                         "signed as Standard Webhooks with this secret:"), highlight=False)
    console.print(row.secret, highlight=False, soft_wrap=True)
    console.print("Give it to the receiver now: it is not shown again.")


@app.command("list")
@guarded
def list_endpoints(as_json: Json = False) -> None:
    """Every receiver: DRIP_WEBHOOK_URLS (every event) and those added with `add`."""
    with drip_from_env() as drip:
        rows = drip.store.webhook_endpoints()
        from_env = drip.settings.webhook_targets
    if as_json:
        print_json([{"url": u, "events": [], "source": "DRIP_WEBHOOK_URLS"} for u in from_env]
                   + [{"url": r.url, "events": list(r.events), "source": "drip webhook add",
                       "created_at": r.created_at} for r in rows])
        return
    for url in from_env:
        console.print(escape(f"{url}  every event  (DRIP_WEBHOOK_URLS)"), highlight=False)
    for r in rows:
        console.print(escape(f"{r.url}  {', '.join(r.events) or 'every event'}  "
                             f"(added {r.created_at:%Y-%m-%d %H:%M})"), highlight=False)
    if not rows and not from_env:
        console.print("No webhook receivers; `drip webhook add URL` adds one.")


@app.command("remove")
@guarded
def remove(url: Annotated[str, typer.Argument(help="The URL given to `add`.")]) -> None:
    """Stop posting to a receiver added with `add`."""
    from drip.webhooks.endpoints import remove_endpoint

    with drip_from_env() as drip:
        remove_endpoint(drip.store, url)
    console.print(escape(f"No longer posting to {url}."), highlight=False)


@app.command("deliver")
@guarded
def deliver() -> None:
    """Post the due webhooks once (the scheduler does this every few seconds)."""
    from drip.webhooks import deliver_due

    with drip_from_env() as drip:
        targets = drip.settings.webhook_targets
        if not targets and not drip.store.webhook_endpoints():
            fail("There is nowhere to post to: set DRIP_WEBHOOK_URLS or run "
                 "`drip webhook add URL`.", EXIT_CONFIG)
        report = deliver_due(drip.store, targets, drip.settings.webhook_signing_secret,
                             drip.clock.now())
    console.print(f"Delivered {report.delivered}; {report.retrying} will be retried, "
                  f"{report.failed} failed for good.")


@app.command("log")
@guarded
def log(limit: Annotated[int, typer.Option(help="How many, newest first.", metavar="N",
                                           callback=within(1, 10_000))] = 50,
        as_json: Json = False) -> None:
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

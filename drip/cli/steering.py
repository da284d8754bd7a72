"""Steering: retry and resolve deliveries; pause, resume, unsubscribe, suppress people."""

from __future__ import annotations

from typing import Annotated

import typer

from drip import lifecycle
from drip.cli._common import (
    EXIT_FAILED,
    MAX_ID,
    console,
    drip_from_env,
    guarded,
    print_json,
    within,
)
from drip.operations import pause as pause_sending
from drip.operations import plural
from drip.operations import resolve as resolve_unknown
from drip.operations import resume as resume_sending
from drip.operations import retry as retry_deliveries

Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Email = Annotated[str, typer.Argument(help="The subscriber's email address.")]


def register(app: typer.Typer) -> None:
    for name, command in (("retry", retry), ("resolve", resolve), ("pause", pause),
                          ("resume", resume), ("unsubscribe", unsubscribe),
                          ("suppress", suppress), ("unsuppress", unsuppress)):
        app.command(name)(command)


@guarded
def retry(
    state: Annotated[str, typer.Option(help="Retry every delivery in this state.")] = "failed",
    ids: Annotated[list[int] | None, typer.Option("--id", callback=within(1, MAX_ID),
                                                  metavar="ID", help="Only this "
                                                  "delivery (repeatable).")] = None,
    as_json: Json = False,
) -> None:
    """Send failed deliveries again at the next dispatch, within their send window."""
    with drip_from_env() as drip:
        done = retry_deliveries(drip.store, drip.clock.now(), state=state, ids=ids or ())
    if as_json:
        print_json({"retried": done.retried,
                    "skipped": [{"id": i, "why": why} for i, why in done.skipped]})
    else:
        if done.retried:
            console.print(f"Retrying {plural(len(done.retried), 'delivery', 'deliveries')} at the "
                          "next dispatch: "
                          f"{', '.join(map(str, done.retried))}.")
        elif not done.skipped:
            console.print(f"No {state} deliveries to retry.")
        for i, why in done.skipped:
            console.print(f"[yellow]Skipped delivery {i}: {why}.[/]")
    if done.skipped:
        raise typer.Exit(EXIT_FAILED)


@guarded
def resolve(
    ids: Annotated[list[int], typer.Argument(callback=within(1, MAX_ID), metavar="ID",
                                             help="Ids of unknown deliveries.")],
    resolution: Annotated[str, typer.Option("--as", help="sent: it went out; resend: send "
                                            "it again.")],
    as_json: Json = False,
) -> None:
    """Settle unknown deliveries (a send whose outcome drip could not know)."""
    with drip_from_env() as drip:
        count = resolve_unknown(drip.store, drip.clock.now(), ids, resolution)
    if as_json:
        print_json({"resolved": sorted(set(ids)), "as": resolution})
    elif resolution == "sent":
        console.print(f"Marked {plural(count, 'delivery', 'deliveries')} as sent.")
    else:
        console.print(f"{plural(count, 'delivery goes', 'deliveries go')} out again at the next "
                      "dispatch; the emails "
                      "after them are planned when they do.")


TargetEmail = Annotated[str | None, typer.Argument(help="A subscriber's email address.")]
TargetSequence = Annotated[str | None, typer.Option("--sequence", "-s", help="A sequence key "
                                                    "(alone: the whole sequence).")]
TargetAll = Annotated[bool, typer.Option("--all", help="Everything: the kill switch.")]


@guarded
def pause(email: TargetEmail = None, sequence: TargetSequence = None,
          everything: TargetAll = False,
          reason: Annotated[str | None, typer.Option(help="Why, shown in status.")] = None,
          ) -> None:
    """Hold email: for one subscriber, a whole sequence, or (--all) everything at once."""
    with drip_from_env() as drip:
        done = pause_sending(drip.store, drip.library, drip.clock.now(), email=email,
                             sequence_key=sequence, everything=everything, reason=reason)
    console.print(f"[bold red]{done.sentence}[/]" if everything and done.changed
                  else done.sentence)


@guarded
def resume(email: TargetEmail = None, sequence: TargetSequence = None,
           everything: TargetAll = False) -> None:
    """Lift a pause; held email goes at its next send slot, one email each, never a burst."""
    with drip_from_env() as drip:
        done = resume_sending(drip.store, drip.library, drip.clock.now(), email=email,
                              sequence_key=sequence, everything=everything)
    console.print(done.sentence)


@guarded
def unsubscribe(email: Email) -> None:
    """Unsubscribe someone from everything; anything already due is cancelled."""
    with drip_from_env() as drip:
        change = lifecycle.unsubscribe_email(drip.store, email, drip.clock.now(),
                                             source="operator")
    cancelled = plural(change.count, "pending email")
    console.print(f"Unsubscribed {email.strip()}; {cancelled} cancelled."
                  if change.changed else f"{email.strip()} was already unsubscribed.")


@guarded
def suppress(email: Email,
             reason: Annotated[str, typer.Option(help="Why (shown in drip subscriber).")]
             = "suppressed by an operator") -> None:
    """Stop all email to an address (it bounced, complained, or asked by phone)."""
    with drip_from_env() as drip:
        change = lifecycle.suppress(drip.store, email, drip.clock.now(), reason)
    console.print(f"Suppressed {email.strip()}; {plural(change.count, 'enrollment')} held."
                  if change.changed else f"{email.strip()} was already suppressed.")


@guarded
def unsuppress(email: Email) -> None:
    """Lift a suppression; held email goes at its next send slot."""
    with drip_from_env() as drip:
        change = lifecycle.unsuppress(drip.store, drip.library, email, drip.clock.now())
    held = plural(change.count, "held email goes", "held emails go")
    console.print(f"Unsuppressed {email.strip()}; {held} out at the next send slot."
                  if change.changed else f"{email.strip()} was not suppressed.")

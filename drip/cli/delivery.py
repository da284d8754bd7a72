"""`drip enroll` and `drip dispatch`: join someone to a sequence, and send what is due."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from drip.addresses import zone
from drip.cli._common import (
    EXIT_FAILED,
    EXIT_PROVIDER,
    console,
    drip_from_env,
    guarded,
    print_json,
    sequence_key,
    stopping_on_signals,
)
from drip.operations import plural
from drip.subscriptions import enroll as enroll_subscriber


def register(app: typer.Typer) -> None:
    app.command("enroll")(enroll)
    app.command("dispatch")(dispatch)


@guarded
def enroll(
    email: Annotated[str, typer.Argument(help="The subscriber's email address.")],
    sequence: Annotated[str | None, typer.Option(
        "--sequence", "-s", metavar="KEY",
        help="Sequence key (may be left out when there is only one).")] = None,
    name: Annotated[str, typer.Option(help="The subscriber's name.")] = "",
    timezone: Annotated[str, typer.Option(help="IANA timezone, e.g. Europe/London.")] = "UTC",
    source: Annotated[str, typer.Option(help="purchase, optin or manual.")] = "manual",
    now: Annotated[str | None, typer.Option(help="Act as if it were this ISO 8601 time.")] = None,
) -> None:
    """Enroll EMAIL in a sequence. Enrolling someone twice changes nothing."""
    with drip_from_env(now) as drip:
        sequence = sequence_key(sequence, drip.library)
        outcome = enroll_subscriber(
            drip.store, drip.library, email=email, sequence_key=sequence,
            now=drip.clock.now(), name=name, timezone=timezone, source=source,
        )
    if outcome.created:
        console.print(f"Enrolled {email.strip()} in {sequence}; the first email goes out at "
                      "the next dispatch.")
    else:
        console.print(f"{email.strip()} is already enrolled in {sequence} "
                      f"({outcome.state}); nothing changed.")


@guarded
def dispatch(
    now: Annotated[str | None, typer.Option(help="Act as if it were this ISO 8601 time.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Make one pass: send everything due now, and print what was done."""
    with drip_from_env(now) as drip:
        provider = drip.provider()
        try:
            dispatcher = drip.dispatcher(provider)
            with stopping_on_signals(dispatcher.stop, "the batch in hand") as stopped:
                report = dispatcher.run_once(last=True)
        finally:
            provider.close()
    if as_json:
        print_json({
            "stopped_by": stopped.signal,
            "sent_count": report.sent_count,
            "sent": [{"email": s.email, "step": s.step_key, "variant": s.variant,
                      "at": s.at} for s in report.sent],
            "sent_listed": len(report.sent),
            "failed": report.failed, "retried": report.retried, "unknown": report.unknown,
            "expired_leases": report.expired_leases,
            "cancelled": report.cancelled, "rescheduled": report.rescheduled,
            "held": report.held, "released": report.released, "paused": report.paused,
            "halted": report.halted,
            "circuit_open": report.circuit_open, "throttled": report.throttled,
            "timings": {k: round(v, 3) for k, v in report.timings.items()},
        })
    else:
        if report.sent:
            from rich.table import Table

            table = Table(title="Sent")
            for column in ("Email", "Step", "Variant", "Local time"):
                table.add_column(column)
            for s in report.sent:
                local = s.at.astimezone(zone(s.timezone))
                table.add_row(s.email, s.step_key, s.variant,
                              f"{local:%a %Y-%m-%d %H:%M} {s.timezone}")
            console.print(table)
            if report.sent_count > len(report.sent):
                console.print(f"(the first {len(report.sent)} of {report.sent_count} are listed; "
                              "drip sends shows them all)")
        console.print(
            f"Sent {report.sent_count}, failed {report.failed}, retrying {report.retried}, "
            f"unknown {report.unknown}, cancelled {report.cancelled}, "
            f"moved to the next send window {report.rescheduled}."
            + (" Sending is paused (drip resume --all)." if report.paused else "")
        )
        if report.expired_leases:
            console.print(
                f"[yellow]{plural(report.expired_leases, 'in-flight send')} of a stopped worker "
                "became unknown[/] (the lease ran out): see `drip sends --state unknown`.")
    if stopped.signal is not None:
        if not as_json:
            console.print(
                f"[yellow]Stopped by {stopped.signal}[/] after the batch in hand: sent "
                f"{report.sent_count}, released {plural(report.released, 'claimed email')} "
                "unsent; everything not sent stays scheduled for the next pass.")
        raise typer.Exit(stopped.exit_code)
    if report.halted:
        if not as_json:  # the JSON says it as "halted"; stdout stays JSON only
            console.print(f"[bold red]Sending halted:[/] {escape(report.halted)}")
        raise typer.Exit(EXIT_PROVIDER)
    if report.failed or report.unknown or report.expired_leases:
        raise typer.Exit(EXIT_FAILED)

"""`drip status`: one screen that says what went out, what is due, and whether all is well."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.text import Text

from drip.cli._common import EXIT_FAILED, console, drip_from_env, guarded, print_json, within
from drip.operations import Status, duration, status
from drip.runtime import Drip


def register(app: typer.Typer) -> None:
    app.command("status")(status_command)


@guarded
def status_command(
    watch: Annotated[bool, typer.Option("--watch", help="Refresh the screen live.")] = False,
    check: Annotated[bool, typer.Option(
        "--check", help="Exit 1 when something needs a human (for cron and monitoring).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    max_lag: Annotated[int, typer.Option(
        callback=within(0), metavar="SECONDS",
        help="Seconds the oldest due email may wait before --check fails.")] = 900,
    stale_after: Annotated[int | None, typer.Option(
        callback=within(1), metavar="SECONDS",
        help="Seconds without a heartbeat before the scheduler counts as dead "
             "(default: three ticks, at least 3 minutes).")] = None,
    interval: Annotated[float, typer.Option(
        callback=within(0), metavar="SECONDS", help="Seconds between --watch refreshes.")] = 2.0,
    refreshes: Annotated[int | None, typer.Option(hidden=True)] = None,
) -> None:
    """Deliveries by state, what is due, subscribers, the circuit and the scheduler's health."""
    with drip_from_env() as drip:
        stale = timedelta(seconds=stale_after if stale_after is not None
                          else max(drip.settings.tick_seconds * 3, 180))

        def read() -> Status:
            return status(drip.store, drip.clock.now(), stale_after=stale,
                          max_lag=timedelta(seconds=max_lag),
                          activity=drip.settings.sendgrid_activity,
                          settle_after=timedelta(seconds=drip.settings.sendgrid_settle_seconds))

        if watch:
            _watch(drip, read, interval, refreshes)
            return
        current = read()
    if as_json:
        print_json(as_dict(current))
    else:
        console.print(render(current))
    if check and current.problems:
        raise typer.Exit(EXIT_FAILED)


def _watch(drip: Drip, read: Any, interval: float, refreshes: int | None) -> None:
    from rich.live import Live

    shown = 0
    try:
        with Live(render(read()), console=console, refresh_per_second=4,
                  screen=False) as live:
            while refreshes is None or shown < refreshes:
                time.sleep(interval)
                live.update(render(read()))
                shown += 1
    except KeyboardInterrupt:
        pass


def render(current: Status) -> RenderableType:
    from rich.panel import Panel
    from rich.table import Table

    parts: list[RenderableType] = [
        Text(f"drip status at {current.now:%Y-%m-%d %H:%M:%S} UTC", style="bold")]
    kill = current.kill_switch
    if kill is not None:
        since, reason = kill
        parts.append(Panel(Text(  # the operator's reason, printed as typed, never as markup
            f"KILL SWITCH ON since {since:%Y-%m-%d %H:%M} UTC"
            + (f" ({reason})" if reason else "")
            + ": nothing is sent. `drip resume --all` lifts it."),
            style="bold white on red", expand=False))
    table = Table(title="Deliveries", title_justify="left")
    for column in ("State", "Now", "Last hour", "Last day", "Last week"):
        table.add_column(column, justify="left" if column == "State" else "right")
    overview = current.overview
    for row in overview.states:
        style = {"failed": "red", "unknown": "yellow", "sent": "green"}.get(row.state, "")
        counts = (row.total, row.last_hour, row.last_day, row.last_week)
        table.add_row(f"[{style}]{row.state}[/]" if style else row.state,
                      *[str(n) for n in counts])
        if row.state == "scheduled":
            table.add_row("  due now", str(overview.due_now), "", "", "")
    parts.append(table)
    for group in current.unknown:
        parts.append(Text(
            f"Unknown ({group.cause}): {group.under_hour} under an hour old, "
            f"{group.under_day} under a day, {group.older} older; settled by "
            f"{group.settled_by}.", style="yellow"))
    parts.append(Text(f"Due: {overview.due_now} now, {overview.due_next_day} in the next "
                      f"24 h, {overview.due_next_week} in the next 7 days."))
    people = ", ".join(f"{n} {state}" for state, n in overview.subscribers.items())
    parts.append(Text(f"Subscribers: {people}."))
    # a circuit's reason is the provider's own error text: escaped, never read as markup
    circuits = [f"{escape(c.provider)} [red]open[/] until {c.retry_at:%H:%M} UTC: "
                f"{escape(c.reason or '')}" if c.state == "open" and c.retry_at else
                f"{escape(c.provider)} [red]{c.state}[/]" if c.state == "open" else
                f"{escape(c.provider)} [green]{c.state}[/]" for c in current.circuits]
    parts.append(Text.from_markup("Circuit: " + ("; ".join(circuits) if circuits
                                                 else "[green]closed[/]") + "."))
    sequence_pauses = [scope.removeprefix("sequence:") for scope, _, _ in current.pauses
                       if scope.startswith("sequence:")]
    if sequence_pauses:
        parts.append(Text(f"Paused sequences: {', '.join(sorted(sequence_pauses))}.",
                          style="yellow"))
    health = current.health
    parts.append(Text(health.verdict, style="green" if health.alive
                      else "yellow" if health.stopped else "bold red"))
    if health.detail and not health.stopped:
        parts.append(Text(f"Its last pass: {health.detail}."))
    if len(health.workers) > 1:
        workers = Table("scheduler", "state", "last tick", "last pass", box=None,
                        title="Schedulers heard from in the last day", title_justify="left")
        styles = {"alive": "green", "stopped": "dim", "silent": "bold red"}
        for w in health.workers:
            workers.add_row(Text(w.worker), Text(w.state, style=styles.get(w.state, "")),
                            f"{duration(w.seconds_since_tick)} ago", Text(w.detail or ""))
        parts.append(workers)
    lag = ("no email is waiting" if health.lag_seconds is None
           else f"the oldest due email has waited {duration(health.lag_seconds)}")
    parts.append(Text(f"Dispatch lag: {lag}."))
    if current.problems:
        parts.append(Text("Needs a human:", style="bold red"))
        parts.extend(Text(f"  - {problem}", style="red") for problem in current.problems)
    else:
        parts.append(Text("Nothing needs a human.", style="green"))
    return Group(*parts)


def as_dict(current: Status) -> dict[str, Any]:
    overview = current.overview
    health = current.health
    kill = current.kill_switch
    return {
        "now": current.now,
        "deliveries": {c.state: {"now": c.total, "last_hour": c.last_hour,
                                 "last_day": c.last_day, "last_week": c.last_week}
                       for c in overview.states},
        "due": {"now": overview.due_now, "next_24h": overview.due_next_day,
                "next_7d": overview.due_next_week},
        "subscribers": overview.subscribers,
        "unknown": [g.__dict__ for g in current.unknown],
        "circuits": [{"provider": c.provider, "state": c.state, "reason": c.reason,
                      "retry_at": c.retry_at} for c in current.circuits],
        "kill_switch": {"on": kill is not None, "since": kill[0] if kill else None,
                        "reason": kill[1] if kill else None},
        "paused_sequences": sorted(scope.removeprefix("sequence:")
                                   for scope, _, _ in current.pauses
                                   if scope.startswith("sequence:")),
        "scheduler": {"alive": health.alive, "stopped": health.stopped,
                      "last_tick": health.last_tick,
                      "worker": health.worker, "detail": health.detail,
                      "seconds_since_tick": health.seconds_since_tick,
                      "stale_after_seconds": health.stale_after,
                      "lag_seconds": health.lag_seconds, "verdict": health.verdict,
                      "workers": [{"worker": w.worker, "state": w.state,
                                   "last_tick": w.last_tick,
                                   "seconds_since_tick": w.seconds_since_tick,
                                   "detail": w.detail} for w in health.workers]},
        "problems": current.problems,
        "ok": not current.problems,
    }

"""`drip sends` and `drip subscriber`: what went out, and what happened to one person."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.text import Text

from drip.addresses import zone
from drip.cli._common import (
    MAX_ID,
    console,
    drip_from_env,
    guarded,
    print_json,
    sequence_key,
    within,
)
from drip.exports import send_record
from drip.operations import find_sends, timeline
from drip.store import ConsentRow, Timeline

if TYPE_CHECKING:
    from rich.table import Table

STATE_STYLE = {"sent": "green", "failed": "red", "unknown": "yellow", "cancelled": "dim",
               "held": "magenta", "sending": "cyan", "claimed": "cyan"}


def register(app: typer.Typer) -> None:
    app.command("sends")(sends)
    app.command("subscriber")(subscriber)


def utc(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else "-"


def local(moment: datetime | None, timezone: str) -> str:
    return f"{moment.astimezone(zone(timezone)):%a %d %b %H:%M}" if moment else "-"


def styled(state: str) -> Text:
    return Text(state, style=STATE_STYLE.get(state, ""))


def add_row(table: Table, *cells: str | Text) -> None:
    """A row of stored text (names, provider errors, reasons): printed as it is, never read
    as Rich markup, so a '[/x]' in a provider's error cannot break the listing."""
    table.add_row(*(Text(c) if isinstance(c, str) else c for c in cells))


#: Columns that may wrap onto more lines to fit the terminal; every other column (ids,
#: steps, states, dates) keeps to one line and is never cut short.
WRAPPING = {"Last error", "Details", "Why", "Detail", "Nudge", "Message id", "Email",
            "Product", "Order"}
#: How wide `--wide` lets a table grow, whatever the terminal's width.
WIDE = 400


def listing(title: str, columns: tuple[str, ...]) -> Table:
    """A compact table: dates and states never wrap, long text folds."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in columns:
        wraps = column in WRAPPING
        table.add_column(column, no_wrap=not wraps, overflow="fold",
                         min_width=(12 if column in ("Last error", "Details") else 8)
                         if wraps else len(column))
    return table


@guarded
def sends(
    state: Annotated[list[str] | None, typer.Option(
        "--state", help="Only this state (repeatable): scheduled, sent, failed, unknown, ...")]
    = None,
    sequence: Annotated[str | None, typer.Option("--sequence", "-s", help="Sequence key.")]
    = None,
    step: Annotated[str | None, typer.Option(help="Step key, such as week-3.")] = None,
    since: Annotated[str | None, typer.Option(
        help="From this time: ISO 8601, or an age such as 24h or 7d.")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time (same forms).")] = None,
    email: Annotated[str | None, typer.Option(help="Only this subscriber.")] = None,
    limit: Annotated[int, typer.Option(callback=within(0, MAX_ID), metavar="N",
                                         help="At most this many, newest first.")]
    = 50,
    offset: Annotated[int, typer.Option(callback=within(0, MAX_ID), metavar="N",
                                          help="Skip this many first (the next "
                                        "page: --offset 50).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List deliveries, newest first: when, to whom, which step, and what became of them."""
    with drip_from_env() as drip:
        if sequence is not None:  # a typo would list nothing and look like "no deliveries"
            sequence_key(sequence, drip.library, also=drip.store.enrolled_sequence_keys())
        rows = find_sends(drip.store, drip.clock.now(), states=state or (),
                          sequence_key=sequence, step_key=step, email=email, since=since,
                          until=until, limit=limit, offset=offset)
    if as_json:
        print_json([send_record(r) for r in rows])
        return
    if not rows:
        console.print("No deliveries match.")
        return
    shown = f"{offset + 1}-{offset + len(rows)}" if offset else str(len(rows))
    table = listing(f"Deliveries, newest first ({shown} shown)",
                    ("ID", "When (UTC)", "Email", "Step", "Variant", "Nudge", "State",
                     "Last error"))
    for r in rows:
        add_row(table, str(r.id), utc(r.at), r.email, r.step_key, r.variant, r.nudge or "",
                styled(r.state), r.last_error or "")
    console.print(table)
    if len(rows) == limit:
        console.print(f"There may be more: --offset {offset + limit} shows the next page.")


@guarded
def subscriber(
    email: Annotated[str, typer.Argument(help="The subscriber's email address.")],
    wide: Annotated[bool, typer.Option(
        "--wide", help="Every column (UTC times, message ids), however wide the terminal.")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One person's timeline: consents, enrollments, every delivery, events, answers, purchases."""
    with drip_from_env() as drip:
        found = timeline(drip.store, email)
        tags = drip.store.tags_of(found.subscriber.id)
        chosen = drip.store.send_preference(found.subscriber.id).preference
    when = {"send_time": chosen.send_time.strftime("%H:%M") if chosen.send_time else None,
            "weekday": chosen.weekday}
    if as_json:
        print_json({**timeline_dict(found), "tags": tags, "send_preference": when})
        return
    print_timeline(found, wide=wide)
    console.print(f"Tags: {', '.join(tags) if tags else 'none'}.")
    if not chosen.empty:
        console.print("Their choice of when: " + ", ".join(
            v for v in (when["send_time"], f"{chosen.weekday}s" if chosen.weekday else None)
            if v) + " (their time).")


def timeline_dict(found: Timeline) -> dict[str, Any]:
    person = found.subscriber
    return {
        "subscriber": {**asdict(person), "state": person.state},
        "consents": [asdict(c) for c in found.consents],
        "enrollments": [asdict(e) for e in found.enrollments],
        "deliveries": [send_record(d) for d in found.deliveries],
        "events": [asdict(e) for e in found.events],
        "checkpoint_answers": [asdict(a) for a in found.answers],
        "purchases": [asdict(p) for p in found.purchases],
    }


def consent_details(c: ConsentRow) -> str:
    """Everything stored with a consent, on one (wrapping) line."""
    parts = [f"{label}={value}" for label, value in (
        ("ip", c.ip), ("user agent", c.user_agent), ("text version", c.text_version))
        if value]
    parts.extend(f"{k}={v}" for k, v in (c.details or {}).items() if v not in (None, ""))
    return ", ".join(parts)


def print_timeline(found: Timeline, *, wide: bool = False) -> None:
    from rich.console import Console

    out = Console(width=WIDE) if wide else console
    person = found.subscriber
    tz = person.timezone
    out.print(Text.assemble(
        (person.email, "bold"), f" {person.name or ''} ({tz}), ", styled(person.state),
        f" since {utc(person.suppressed_at or person.unsubscribed_at or person.created_at)}"
        + (f": {person.suppressed_reason}" if person.suppressed_reason else "")
        + (", no offers" if person.offers_opt_out_at else "")))

    def section(title: str, columns: tuple[str, ...], rows: list[tuple[str | Text, ...]]) -> None:
        if not rows:
            out.print(f"{title}: none.")
            return
        table = listing(title, columns)
        for row in rows:
            add_row(table, *row)
        out.print(table)

    section("Consents", ("When (UTC)", "Sequence", "Source", "Confirmed", "Details"),
            [(utc(c.created_at), c.sequence_key or "-", c.source, utc(c.confirmed_at),
              consent_details(c)) for c in found.consents])
    section("Enrollments", ("ID", "Sequence", "Cycle", "State", "Source", "Enrolled",
                            "Finished", "Why"),
            [(str(e.id), e.sequence_key, str(e.cycle), styled(e.state), e.source,
              utc(e.enrolled_at), utc(e.finished_at), e.stop_reason or "")
             for e in found.enrollments])
    # The subscriber's local time is what an operator asks about; UTC and the provider's
    # message id (long, rarely read) only with --wide, so the table fits a terminal.
    if wide:
        section("Deliveries", ("ID", "Step", "Variant", "Nudge", "State", "UTC", "Local",
                               "Message id", "Last error"),
                [(str(d.id), d.step_key, d.variant, d.nudge or "", styled(d.state),
                  utc(d.at), local(d.at, tz), d.provider_message_id or "", d.last_error or "")
                 for d in found.deliveries])
    else:
        section("Deliveries", ("ID", "Step", "Variant", "Nudge", "State", "Local",
                               "Last error"),
                [(str(d.id), d.step_key, d.variant, d.nudge or "", styled(d.state),
                  local(d.at, tz), d.last_error or "") for d in found.deliveries])
    section("Events", ("When (UTC)", "Kind", "Delivery", "Detail"),
            [(utc(e.occurred_at), e.kind, str(e.delivery_id or ""), e.detail or "")
             for e in found.events])
    section("Checkpoint answers", ("When (UTC)", "Delivery", "Step", "Answer"),
            [(utc(a.answered_at), str(a.delivery_id), a.step_key, a.answer)
             for a in found.answers])
    section("Purchases", ("When (UTC)", "Product", "Source", "Order"),
            [(utc(p.purchased_at), p.product, p.source, p.order_id) for p in found.purchases])

"""The coach's tools: `drip lint`, `drip simulate`, `drip preview` and `drip test-send`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from drip.cli._common import (
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_PROVIDER,
    console,
    errors,
    fail,
    guarded,
    print_json,
    sequence_key,
    settings,
)
from drip.clock import parse_instant
from drip.db import database_exists
from drip.errors import ConfigError, SequenceError
from drip.planner import REMINDER
from drip.render import VARIANTS, Renderer
from drip.runtime import links_of, sender_of
from drip.sequence import load_library
from drip.settings import Settings
from drip.store import EnrollmentPosition, Store

if TYPE_CHECKING:
    from rich.table import Table

    from drip.lint import Finding
    from drip.simulation import Simulation


def register(app: typer.Typer) -> None:
    app.command("lint")(lint)
    app.command("simulate")(simulate)
    app.command("preview")(preview)
    app.command("test-send")(test_send)


def folders(path: Path | None, current: Settings) -> tuple[Path, Path]:
    """(sequences, templates) for PATH: a project folder holding both, or a sequences folder."""
    if path is None:
        return current.sequences_dir, current.templates_dir
    if (path / "sequences").is_dir():
        return path / "sequences", path / "templates"
    if path.is_file():
        path = path.parent
    return path, path.parent / "templates"


def positions(current: Settings) -> list[EnrollmentPosition] | None:
    """Where enrollments stand, if a database is configured and can be read; else None."""
    if not database_exists(current.database_url):
        return None
    from drip.db import make_engine

    engine = make_engine(current.database_url, connect_args={"connect_timeout": 3}) \
        if not current.is_sqlite else make_engine(current.database_url)
    try:
        return Store(engine).enrollment_positions()
    except ConfigError as exc:
        errors.print(f"[yellow]Note:[/] stranded enrollments not checked: {exc}",
                     highlight=False)
        return None
    finally:
        engine.dispose()


@guarded
def lint(
    path: Annotated[Path | None, typer.Argument(
        help="A folder with sequences/ and templates/, or a sequences folder "
             "(default: DRIP_SEQUENCES_DIR and DRIP_TEMPLATES_DIR).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
    no_database: Annotated[bool, typer.Option(
        "--no-database", help="Do not look for enrollments a removed step would strand.")]
    = False,
) -> None:
    """Check every sequence, template and offer; exit 1 if anything would go wrong."""
    from drip.lint import errors_in
    from drip.lint import lint as lint_files

    current = settings()
    sequences_dir, templates_dir = folders(path, current)
    found = lint_files(sequences_dir, templates_dir, sender_of(current), links_of(current),
                       None if no_database else positions(current))
    if as_json:
        print_json({"errors": len(errors_in(found)), "findings": [f.as_dict() for f in found]})
    else:
        show(found, sequences_dir, templates_dir)
    if errors_in(found):
        raise typer.Exit(EXIT_FAILED)


def show(found: list[Finding], sequences_dir: Path, templates_dir: Path,
         out: Console = console) -> None:
    from rich.markup import escape

    from drip.lint import errors_in

    for finding in found:
        # findings quote the coach's text and Markdown ([words](url)): not Rich markup
        colour = "red" if finding.severity == "error" else "yellow"
        where = escape(f"{finding.file}:{finding.line}" if finding.line else finding.file)
        out.print(f"[bold]{where}[/]: [{colour}]{finding.severity}[/]: "
                  f"{escape(finding.message)}", highlight=False, soft_wrap=True)
        if finding.fix:
            out.print(f"    [dim]Fix:[/] {escape(finding.fix)}", highlight=False,
                      soft_wrap=True)
    count = len(errors_in(found))
    warnings = len(found) - count
    if not found:
        out.print(f"[green]No problems[/] in {sequences_dir} and {templates_dir}.",
                  highlight=False)
    else:
        out.print(f"{count} error{'s' if count != 1 else ''}, {warnings} "
                  f"warning{'s' if warnings != 1 else ''}.", highlight=False)


@contextmanager
def lint_findings_on_failure(current: Settings) -> Iterator[None]:
    """A sequence or template that fails to load or render stops preview and simulate with
    every error `drip lint` finds, in lint's words, not only the first one."""
    from drip.lint import findings_behind

    try:
        yield
    except SequenceError as exc:
        if exc.file is None:
            raise  # not a file's mistake (an unknown --sequence, say): said as it is
        found = findings_behind(exc, current.sequences_dir, current.templates_dir,
                                sender_of(current), links_of(current))
        show(found, current.sequences_dir, current.templates_dir, errors)
        errors.print("Nothing was written: fix these, then run it again.", highlight=False)
        raise typer.Exit(EXIT_INVALID) from None


#: Every variant an email can go out as, for --variant's help.
VARIANT_HELP = (", ".join(VARIANTS) + f"; add {REMINDER} to a main email for the "
                "no-answer note (main+reminder). A step has only the variants its sequence "
                "defines for it.")


@guarded
def simulate(
    sequence: Annotated[str | None, typer.Option(
        "--sequence", "-s", help="Sequence key (may be left out when there is only one).")]
    = None,
    timezone: Annotated[str, typer.Option(help="The persona's IANA timezone.")] = "UTC",
    joined: Annotated[str | None, typer.Option(
        help="When the persona joins, ISO 8601 (default: now).")] = None,
    answers: Annotated[str, typer.Option(
        help="Checkpoint answers, one per weekly email (reminders are not counted): "
             "pass, notyet, back (repeat last week) or - (none).")] = "",
    buys: Annotated[list[str] | None, typer.Option(
        "--buys", help="OFFER@WEEK: buys that offer during that program week (repeatable).")]
    = None,
    pause: Annotated[list[int] | None, typer.Option(
        "--pause", help="WEEK: pauses for a week after that week's email (repeatable).")]
    = None,
    out: Annotated[Path | None, typer.Option(
        help="Write each email here as .eml and .html.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the calendar as JSON.")] = False,
) -> None:
    """Play one persona through a sequence in simulated time; no database is touched."""
    from datetime import UTC, datetime

    from drip.simulation import parse_answers, parse_buys, write_emails
    from drip.simulation import simulate as simulate_journey

    current = settings()
    joined_at = parse_instant(joined) if joined else datetime.now(UTC)
    with lint_findings_on_failure(current):
        library = load_library(current.sequences_dir)
        renderer = Renderer(current.templates_dir, library, sender_of(current))
        result = simulate_journey(library, renderer,
                                  sequence_key=sequence_key(sequence, library),
                                  timezone=timezone, joined_at=joined_at,
                                  answers=parse_answers(answers), buys=parse_buys(buys or []),
                                  pauses=pause or [])
    if out is not None:
        write_emails(result, library, renderer, sender_of(current), links_of(current), out)
    if as_json:
        print_json({"sequence": result.sequence_key, "timezone": result.timezone,
                    "ended": result.ended, "emails": [
                        {"number": e.number, "local": e.local.isoformat(), "at": e.at,
                         "step": e.step_key, "week": e.week, "variant": e.variant,
                         "nudge": e.nudge, "answer": e.answer, "subject": e.content.subject}
                        for e in result.emails]})
        return
    console.print(calendar(result), soft_wrap=True)
    if out is not None:
        console.print(f"Wrote {len(result.emails)} emails to {out} (.eml and .html).",
                      highlight=False, markup=False)


def calendar(result: Simulation) -> Table:
    from rich.table import Table

    table = Table(title=f"{result.sequence_key} for someone in {result.timezone} who joined "
                        f"{result.joined_at:%Y-%m-%d %H:%M} UTC",
                  caption=f"Ends: {result.ended}." + "".join(f" Persona {e}." for e in
                                                             result.events))
    for column in ("#", "Local send time", "Week", "Step", "Variant", "Nudge", "Answer"):
        table.add_column(column, no_wrap=True)
    table.add_column("Subject", overflow="fold", min_width=20)
    for e in result.emails:
        table.add_row(str(e.number), f"{e.local:%a %d %b %Y %H:%M %Z}", str(e.week), e.step_key,
                      e.variant, e.nudge or "-", e.answer or "-", e.content.subject)
    return table


@guarded
def preview(
    step: Annotated[str | None, typer.Argument(help="The step key, e.g. week-3.")] = None,
    sequence: Annotated[str | None, typer.Option(
        "--sequence", "-s", help="Sequence key (may be left out when there is only one).")]
    = None,
    variant: Annotated[str, typer.Option(help=VARIANT_HELP)] = "main",
    nudge: Annotated[str | None, typer.Option(
        help="The offer shown as the nudge (default: the one the step names, else the one a "
             "runner who passes every week gets; only main emails carry one).")] = None,
    no_nudge: Annotated[bool, typer.Option("--no-nudge", help="Show it without an offer.")]
    = False,
    out: Annotated[Path | None, typer.Option(help="Write the .html and .txt here.")] = None,
    serve: Annotated[bool, typer.Option("--serve", help="Start the local preview page.")]
    = False,
    host: Annotated[str, typer.Option(help="Address the page listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the preview page.")] = 8025,
    test_variant: Annotated[str | None, typer.Option(
        "--test-variant", help="A variant of the step's split test, e.g. b.")] = None,
) -> None:
    """Write one email as .html and .txt, or serve a page that shows every email live."""
    from drip.preview import Workspace, preview_app, preview_nudge, write_preview
    from drip.samples import render_sample

    current = settings()
    if serve:
        import uvicorn

        workspace = Workspace(current.sequences_dir, current.templates_dir,
                              sender_of(current), links_of(current))
        console.print(f"Previewing {current.sequences_dir} and {current.templates_dir} at "
                      f"http://{host}:{port}/ (Ctrl+C to stop).", highlight=False)
        uvicorn.run(preview_app(workspace), host=host, port=port, log_level="warning")
        return
    if step is None or out is None:
        fail("Give a STEP and --out (and --sequence when there are several), or use --serve "
             "for the live page.", EXIT_INVALID)
    with lint_findings_on_failure(current):
        library = load_library(current.sequences_dir)
        renderer = Renderer(current.templates_dir, library, sender_of(current))
        key = sequence_key(sequence, library)
        shown = preview_nudge(library, key, step, variant, nudge, no_nudge=no_nudge)
        message = render_sample(library, renderer, sender_of(current), links_of(current), key,
                                step, variant, shown, test_variant=test_variant)
    for path in write_preview(message, out, test_variant):
        console.print(f"Wrote {path}", highlight=False, markup=False)


@guarded
def test_send(
    step: Annotated[str, typer.Argument(help="The step key, e.g. week-3.")],
    sequence: Annotated[str, typer.Option("--sequence", "-s", help="Sequence key.")],
    to: Annotated[str, typer.Option("--to", help="Where to send it (your own address).")],
    variant: Annotated[str, typer.Option(help=VARIANT_HELP)] = "main",
    nudge: Annotated[str | None, typer.Option(help="The offer shown as the nudge.")] = None,
    test_variant: Annotated[str | None, typer.Option(
        "--test-variant", help="A variant of the step's split test, e.g. b.")] = None,
) -> None:
    """Send one step, for a sample subscriber, through the configured backend, marked [TEST]."""
    from drip.addresses import normalise_email
    from drip.clock import SystemClock
    from drip.providers import make_provider
    from drip.samples import send_test

    current = settings()
    library = load_library(current.sequences_dir)
    renderer = Renderer(current.templates_dir, library, sender_of(current))
    provider = make_provider(current, SystemClock().now)
    try:
        result = send_test(library, renderer, sender_of(current), links_of(current), provider,
                           sequence_key=sequence, step_key=step, to=normalise_email(to),
                           variant=variant, nudge=nudge, test_variant=test_variant)
    finally:
        provider.close()
    if result.verdict != "accepted":
        fail(f"The {current.backend} backend did not take the test email: "
             f"{result.reason or result.verdict}.", EXIT_PROVIDER)
    console.print(f"Sent {sequence}/{step} ({variant}) to {to} through {current.backend}; "
                  "it is not recorded as a delivery.", highlight=False)

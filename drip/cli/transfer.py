"""`drip import` and `drip export`: people in from a CSV file; subscribers or deliveries out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from drip.cli._common import (
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    console,
    drip_from_env,
    errors,
    fail,
    guarded,
    print_json,
    sequence_key,
)


def sentence(text: str) -> str:
    return text if text.endswith((".", "?", "!")) else text + "."


def register(app: typer.Typer) -> None:
    app.command("import")(import_csv)
    app.command("export")(export)


@guarded
def import_csv(
    file: Annotated[Path, typer.Argument(help="CSV file with a header row: email, name, "
                                         "timezone, joined_at, source.")],
    sequence: Annotated[str | None, typer.Option(
        "--sequence", "-s", metavar="KEY",
        help="Sequence key (may be left out when there is only one).")] = None,
    tool: Annotated[str, typer.Option("--from", help="The tool that wrote the file: kit, "
                                      "mailchimp, shopify or csv (drip's own columns).")]
    = "csv",
    mapping: Annotated[list[str] | None, typer.Option(
        "--map", help="A column of your own: 'Their Column=field' (repeatable).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and count; write "
                                          "nothing.")] = False,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Import the valid "
                                               "rows even if some are invalid.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Enroll everyone in a CSV file; invalid rows stop the whole import unless skipped."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from drip.import_formats import column_map
    from drip.imports import InvalidFile, import_rows, parse_csv

    columns = column_map(tool.strip().lower(), mapping or ())
    try:
        data = file.read_bytes()
    except OSError as exc:
        fail(f"Cannot read {file}: {exc.strerror}.", EXIT_INVALID)
    try:
        with drip_from_env() as drip, Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=errors, transient=True,
            disable=not errors.is_terminal,
        ) as progress:
            sequence = sequence_key(sequence, drip.library)
            # the lines after the header, as parse_csv counts them (a header-only file: 0)
            checking = progress.add_task("Checking rows",
                                         total=max(len(data.splitlines()) - 1, 0) or 1)
            try:
                parsed = parse_csv(data, columns=columns,
                                   progress=lambda n: progress.advance(checking, n))
                writing = progress.add_task("Importing" if not dry_run else "Comparing",
                                            total=len(parsed.rows) or 1)
                result = import_rows(
                    drip.store, drip.library, parsed, sequence_key=sequence, now=drip.clock.now(),
                    file_name=file.name, dry_run=dry_run, skip_invalid=skip_invalid,
                    progress=lambda n: progress.advance(writing, n),
                )
            except InvalidFile as exc:
                if not as_json:
                    raise
                print_json({"imported": False, "invalid": [{"line": p.line, "problem": p.message}
                                                           for p in exc.problems]})
                raise typer.Exit(EXIT_INVALID) from None
    except KeyboardInterrupt:  # the import is one transaction: it is all rolled back
        fail("Interrupted (Ctrl-C): nothing was imported; run the import again.",
             EXIT_INTERRUPTED)
    if as_json:
        print_json({"dry_run": dry_run, "rows": len(parsed.rows), **result.__dict__,
                    "invalid": [{"line": p.line, "problem": p.message}
                                for p in parsed.problems],
                    "merged": [{"line": p.line, "note": p.message} for p in parsed.merged],
                    "ignored_columns": parsed.ignored_columns})
        return
    for problem in parsed.problems:
        # problems and column names quote the file: print them as written, never as markup
        console.print(f"[yellow]{escape(sentence(f'Skipped {problem}'))}[/]", highlight=False)
    for note in parsed.merged:
        console.print(escape(sentence(f"Merged {note}")), highlight=False)
    if parsed.ignored_columns:
        console.print(escape(f"Ignored the columns {', '.join(parsed.ignored_columns)}."),
                      highlight=False)
    verb = "Would enroll" if dry_run else "Enrolled"
    console.print(
        f"{verb} {result.enrolled} of {len(parsed.rows)} people in {sequence} "
        f"({result.new_subscribers} new subscribers"
        + (f", {result.paused} of them paused" if result.paused else "") +
        f"); {result.already_enrolled} already "
        f"enrolled, {result.unsubscribed} unsubscribed and {result.suppressed} suppressed "
        "left as they are." + (" Nothing was written (--dry-run)." if dry_run else ""),
        highlight=False)


@guarded
def export(
    kind: Annotated[str, typer.Argument(help="subscribers or deliveries")],
    file_format: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of "
                                             "standard output.")] = None,
) -> None:
    """Write every subscriber, or every delivery, as CSV or JSON."""
    from drip.exports import export_rows, serialise

    with drip_from_env() as drip:
        rows = export_rows(drip.store, kind)
    text = serialise(rows, file_format)
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"Cannot write {out}: {exc.strerror}.", EXIT_INVALID)
    console.print(escape(f"Wrote {len(rows)} {kind} to {out}."), highlight=False)

"""The coach's tools: `drip lint`, `drip simulate`, `drip preview` and `drip test-send`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from drip.cli._common import EXIT_FAILED, console, errors, guarded, print_json, settings
from drip.db import database_exists
from drip.errors import ConfigError
from drip.links import Links
from drip.lint import Finding, errors_in
from drip.lint import lint as lint_files
from drip.render import Sender
from drip.settings import Settings
from drip.store import EnrollmentPosition, Store
from drip.tokens import Signer


def register(app: typer.Typer) -> None:
    app.command("lint")(lint)


def sender_of(current: Settings) -> Sender:
    return Sender(name=current.from_name, email=current.from_email,
                  postal_address=current.postal_address)


def links_of(current: Settings) -> Links:
    return Links(current.base_url, Signer(current.secret_key))


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


def show(found: list[Finding], sequences_dir: Path, templates_dir: Path) -> None:
    for finding in found:
        colour = "red" if finding.severity == "error" else "yellow"
        where = f"{finding.file}:{finding.line}" if finding.line else finding.file
        console.print(f"[bold]{where}[/]: [{colour}]{finding.severity}[/]: {finding.message}",
                      highlight=False, soft_wrap=True)
        if finding.fix:
            console.print(f"    [dim]Fix:[/] {finding.fix}", highlight=False, soft_wrap=True)
    count = len(errors_in(found))
    warnings = len(found) - count
    if not found:
        console.print(f"[green]No problems[/] in {sequences_dir} and {templates_dir}.",
                      highlight=False)
    else:
        console.print(f"{count} error{'s' if count != 1 else ''}, {warnings} "
                      f"warning{'s' if warnings != 1 else ''}.", highlight=False)

"""`drip init DIR`: start a new coach's project (drip.scaffold)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from drip.cli._common import console, guarded


def register(app: typer.Typer) -> None:
    app.command("init")(init)


@guarded
def init(directory: Annotated[Path, typer.Argument(
        help="A new (or empty) folder for the project.")]) -> None:
    """Start a project: a sample three-week sequence, layouts, offers, catalog, .env example."""
    from drip.scaffold import scaffold

    written = scaffold(directory)
    for path in written:
        console.print(escape(f"  {path}"), highlight=False)
    console.print(escape(f"Created {len(written)} files in {directory}. Next: cd {directory}, "
                         "copy .env.example to .env and fill it in, then run `drip lint` "
                         "and `drip preview --serve`."), highlight=False)

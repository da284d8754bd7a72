"""The `drip` command: one Typer app; each group of commands lives in its own module.

A command imports what only it needs (tables, progress bars, lint, imports) inside
itself, so that `drip dispatch`, run every minute, starts without loading them all.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup


class ReadableGroup(TyperGroup):
    """drip's command tree, with the help's metavars written for a person
    (cli._common.readable_metavars); Typer builds every command before this group."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        from drip.cli._common import readable_metavars

        readable_metavars(self)


app = typer.Typer(
    name="drip",
    cls=ReadableGroup,
    help="An email drip campaign engine: sequences as files, the database as the queue.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

from drip.cli import api_key as _api_key  # noqa: E402
from drip.cli import circuit as _circuit  # noqa: E402
from drip.cli import coach as _coach  # noqa: E402
from drip.cli import db as _db  # noqa: E402
from drip.cli import delivery as _delivery  # noqa: E402
from drip.cli import demo as _demo  # noqa: E402
from drip.cli import digest as _digest  # noqa: E402
from drip.cli import init as _init  # noqa: E402
from drip.cli import reconcile as _reconcile  # noqa: E402
from drip.cli import sends as _sends  # noqa: E402
from drip.cli import stats as _stats  # noqa: E402
from drip.cli import status as _status  # noqa: E402
from drip.cli import steering as _steering  # noqa: E402
from drip.cli import tags as _tags  # noqa: E402
from drip.cli import transfer as _transfer  # noqa: E402
from drip.cli import web as _web  # noqa: E402
from drip.cli import webhook as _webhook  # noqa: E402

app.add_typer(_db.app, name="db")
app.add_typer(_circuit.app, name="circuit")
app.add_typer(_api_key.app, name="api-key")
app.add_typer(_webhook.app, name="webhook")
app.add_typer(_tags.app, name="tag")
_delivery.register(app)
_demo.register(app)
_digest.register(app)
_coach.register(app)
_web.register(app)
_status.register(app)
_sends.register(app)
_steering.register(app)
_transfer.register(app)
_stats.register(app)
_reconcile.register(app)
_init.register(app)


def main() -> None:
    app()

"""What every command shares: building drip from the environment, errors and exit codes."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

from drip.clock import Clock, FixedClock, SystemClock, parse_instant
from drip.db import require_current, require_existing
from drip.errors import (
    ConfigError,
    Conflict,
    DripError,
    InvalidInput,
    NotFound,
    ProviderError,
)
from drip.runtime import Drip
from drip.sequence import Library
from drip.settings import Settings, load_settings

# Piped output is not squeezed into 80 columns: tables stay readable in files and logs.
console = Console(width=None if sys.stdout.isatty() else 160)
errors = Console(stderr=True)

#: Exit codes, the same for every command (see docs/operators.md).
EXIT_OK = 0
EXIT_FAILED = 1  # the command ran, but something needs attention (failed sends, a check)
EXIT_INVALID = 2  # bad input: an argument, a file, an address
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_CONFIG = 5  # configuration or database not ready
EXIT_PROVIDER = 6  # the email provider refused to work
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as a shell reports it

#: Said when Ctrl-C ends a command that does not stop on its own: each store method is
#: one transaction, so the one it was in is rolled back.
INTERRUPTED = "Interrupted (Ctrl-C); the change in progress was rolled back."

#: The largest id or count a database column holds (a 64-bit integer): a longer number
#: typed by mistake is a usage error, not an OverflowError from the database driver.
MAX_ID = 2**63 - 1

T = TypeVar("T")


def within(low: float | None = None, high: float | None = None) -> Callable[[Any], Any]:
    """A callback that keeps a number (or each of a list) between low and high.

    Instead of click's min=/max=, whose help tags read [x<=9223372036854775807]: the
    bounds are checked the same way (exit 2), and the help says them in words if it must.
    """
    def check(value: Any) -> Any:
        for number in value if isinstance(value, list | tuple) else [value]:
            if number is None:
                continue
            if low is not None and number < low:
                raise typer.BadParameter(f"{number} is too small; give {low:g} or more.")
            if high is not None and number > high:
                raise typer.BadParameter(f"{number} is too large; give {high:g} or less.")
        return value

    return check


#: Metavars for options whose name alone would not say what to type.
METAVARS = {"sequence": "KEY", "now": "WHEN", "since": "WHEN", "until": "WHEN",
            "joined": "WHEN", "resolution": "sent|resend", "file_format": "csv|json",
            "tool": "TOOL", "mapping": "'COLUMN=field'"}


def readable_metavars(command: Any) -> None:
    """Help a person reads: a flag shows no type tag (not <bool>), and an option without a
    metavar of its own shows its name (SINCE), not <str> or <list[str]>."""
    from typer.core import TyperArgument, TyperOption

    # --help is made on demand; make it now, so that it is a flag like the others
    command.get_help_option(typer.Context(command))
    for param in [*command.params, command.get_help_option(typer.Context(command))]:
        if param.metavar is not None:
            continue
        if isinstance(param, TyperOption):
            param.metavar = "" if param.is_flag else METAVARS.get(
                param.name or "", (param.name or "value").upper())
        elif isinstance(param, TyperArgument):
            param.metavar = (param.name or "value").upper()
    for param in command.params:
        if isinstance(param, TyperArgument):
            # An argument's name (EMAIL, PATH) is its metavar: Typer would add <str>
            # beside it whatever the metavar says, so this instance shows no tag.
            setattr(param, "display_type_rich", _no_type_tag)  # noqa: B010
    for sub in getattr(command, "commands", {}).values():
        readable_metavars(sub)


def _no_type_tag(ctx: Any) -> None:
    return None


def exit_code_for(error: DripError) -> int:
    for kind, code in ((InvalidInput, EXIT_INVALID), (NotFound, EXIT_NOT_FOUND),
                       (Conflict, EXIT_CONFLICT), (ConfigError, EXIT_CONFIG),
                       (ProviderError, EXIT_PROVIDER)):
        if isinstance(error, kind):
            return code
    return EXIT_FAILED


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    from rich.markup import escape

    # messages quote what was typed, like --sequence '[x]': print it, never read it as markup
    errors.print(f"[bold red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings() -> Settings:
    loaded = load_settings()
    logging.basicConfig(level=loaded.log_level, format="%(levelname)s %(name)s: %(message)s")
    # alembic's start-up chatter ("setup plugin ...", "Context impl ...") says nothing to
    # an operator; its "Running upgrade a -> b" lines do, and stay at INFO.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.migration").addFilter(_alembic_chatter)
    return loaded


def _alembic_chatter(record: logging.LogRecord) -> bool:
    """Keep "Running upgrade a -> b"; drop "Context impl SQLiteImpl." and "Will assume
    non-transactional DDL.", which alembic says before every upgrade."""
    return not str(record.msg).startswith(("Context impl", "Will assume"))


def clock_for(now: str | None, current: Settings) -> Clock:
    if now is None:
        return SystemClock()
    if current.sends_for_real:
        raise InvalidInput(
            "--now is refused while sending for real through SendGrid; it would send "
            "emails ahead of time. Use DRIP_SENDGRID_SANDBOX=1 or another backend to simulate."
        )
    return FixedClock(parse_instant(now))


@contextmanager
def drip_from_env(now: str | None = None, *, migrated: bool = True) -> Iterator[Drip]:
    current = settings()
    if migrated:
        require_existing(current.database_url)
    drip = Drip.from_settings(current, clock_for(now, current))
    try:
        if migrated:
            require_current(drip.store.engine)
        yield drip
    finally:
        drip.close()


def sequence_key(given: str | None, library: Library, option: str = "--sequence",
                 also: Iterable[str] = ()) -> str:
    """The sequence an operator means: the one given, or the library's only sequence.

    Raises InvalidInput (exit 2) naming the sequences there are when none is given and
    there are several, or when the one given does not exist (with a "did you mean").
    `also`: more keys that count as known (a listing may name a sequence whose file is gone).
    """
    import difflib

    known = sorted(set(library.sequences) | set(also)) if given is not None \
        else sorted(library.sequences)
    listed = ", ".join(known) if known else "none"
    if given is None:
        if len(known) == 1:
            return known[0]
        if not known:
            raise InvalidInput("There are no sequences yet; add one to the sequences folder "
                               "(DRIP_SEQUENCES_DIR), see docs/writing-sequences.md.")
        raise InvalidInput(f"Give {option}: there are {len(known)} sequences ({listed}).")
    if given in known:
        return given
    close = difflib.get_close_matches(given, known, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]}? Use" if close else "use"
    raise InvalidInput(f"There is no sequence '{given}'; {hint} {option} with one of: "
                       f"{listed}.")


def guarded(function: Callable[..., T]) -> Callable[..., T]:
    """Turn drip's errors into one red sentence and a meaningful exit code."""
    import functools

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return function(*args, **kwargs)
        except DripError as exc:
            fail(str(exc), exit_code_for(exc))
        except KeyboardInterrupt:
            errors.print(f"\n[yellow]{INTERRUPTED}[/]", highlight=False)
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper


class Stop:
    """Which signal, if any, asked a long command to stop (see `stopping_on_signals`)."""

    def __init__(self) -> None:
        self.signal: str | None = None

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a command a signal ended."""
        import signal

        return 128 + int(signal.Signals[self.signal]) if self.signal else EXIT_OK


@contextmanager
def stopping_on_signals(stop: Callable[[], None], doing: str) -> Iterator[Stop]:
    """Turn SIGINT (Ctrl-C) and SIGTERM into a request to stop cleanly, as scheduler.py does.

    The first signal calls `stop` (the command then finishes `doing` and returns); later
    ones only repeat that it is stopping, so a second Ctrl-C cannot leave work half done.
    """
    import signal
    from types import FrameType

    asked = Stop()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if asked.signal is None:
            asked.signal = name
            stop()
        errors.print(f"[yellow]{name}:[/] stopping after {doing}.", highlight=False)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield asked
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")

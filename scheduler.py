"""Run drip's scheduler: `python scheduler.py` dispatches due email every minute until stopped.

Stop it with Ctrl-C or SIGTERM; it finishes (or releases) the batch in hand first. A
signal that comes while it is still starting stops it there, with a line saying so.
Set DRIP_TICK_SECONDS to tick faster in tests and demos.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType


class _StoppedWhileStarting(Exception):
    """SIGINT or SIGTERM came before the ticker took over the signals."""


def _stop_while_starting(signum: int, _frame: FrameType | None) -> None:
    raise _StoppedWhileStarting(signal.Signals(signum).name)


def main() -> int:
    # drip's modules take a second to load: until the ticker handles the signals itself,
    # a stop request ends the start cleanly (nothing has been claimed or sent yet).
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, _stop_while_starting)
    try:
        from drip.cli._common import errors, exit_code_for, settings
        from drip.db import require_current, require_existing
        from drip.errors import DripError
        from drip.runtime import Drip
        from drip.ticker import Ticker

        try:
            current = settings()
            require_existing(current.database_url)
            drip = Drip.from_settings(current)
            require_current(drip.store.engine)
            drip.renderer.check()  # a template mistake stops the start, not an email
            Ticker(drip, interval_seconds=current.tick_seconds).run()
        except DripError as exc:
            errors.print(f"[bold red]Error:[/] {exc}", highlight=False, soft_wrap=True)
            return exit_code_for(exc)
    except _StoppedWhileStarting as stop:
        sys.stderr.write(f"scheduler: {stop} while starting; stopped before sending "
                         "anything.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

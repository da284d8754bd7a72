"""Run drip's scheduler: `python scheduler.py` dispatches due email every minute until stopped.

Stop it with Ctrl-C or SIGTERM; it finishes (or releases) the batch in hand first.
Set DRIP_TICK_SECONDS to tick faster in tests and demos.
"""

from __future__ import annotations

import sys

from drip.cli._common import errors, exit_code_for, settings
from drip.db import require_current, require_existing
from drip.errors import DripError
from drip.runtime import Drip
from drip.ticker import Ticker


def main() -> int:
    try:
        current = settings()
        require_existing(current.database_url)
        drip = Drip.from_settings(current)
        require_current(drip.store.engine)
        drip.renderer.check()  # a template mistake stops the start, not a subscriber's email
        Ticker(drip, interval_seconds=current.tick_seconds).run()
    except DripError as exc:
        errors.print(f"[bold red]Error:[/] {exc}", highlight=False, soft_wrap=True)
        return exit_code_for(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m drip` and the `drip` command's entry point.

It imports the CLI inside `main`, so a Ctrl-C while drip's modules load (a second or so)
ends with one line and exit 130, not a KeyboardInterrupt traceback.
"""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from drip.cli import main as run

        run()
    except KeyboardInterrupt:
        # A command that can be stopped halfway (dispatch, scheduler.py) handles the signal
        # itself; any other is one transaction, which a Ctrl-C rolls back.
        sys.stderr.write("\nInterrupted (Ctrl-C) while starting; nothing was done.\n")
        sys.exit(130)


if __name__ == "__main__":
    main()

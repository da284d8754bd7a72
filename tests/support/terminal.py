"""Run a real command in a pseudo-terminal, so that it draws what a person would see
(progress bars, colours, the terminal's width), and read everything it drew."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
from collections.abc import Sequence
from pathlib import Path


def run_in_terminal(args: Sequence[str], *, env: dict[str, str], cwd: Path,
                    columns: int = 100, timeout: float = 120.0,
                    interrupt_on: str | None = None) -> tuple[int, str]:
    """(exit code, everything written to the terminal) for `args` run on a pty.

    `interrupt_on`: send SIGINT (a real Ctrl-C) as soon as the terminal shows this text.
    """
    import signal
    import time

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    process = subprocess.Popen(list(args), cwd=cwd, env={**env, "COLUMNS": str(columns)},
                               stdin=follower, stdout=follower, stderr=follower,
                               close_fds=True)
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the command ended and closed its side
                    break
                if not chunk:
                    break
                chunks.append(chunk)
                if interrupt_on is not None and interrupt_on.encode() in b"".join(chunks):
                    process.send_signal(signal.SIGINT)
                    interrupt_on = None
            elif process.poll() is not None:
                break
        else:
            process.kill()
            raise AssertionError(f"{args} did not end within {timeout} s")
        code = process.wait(timeout=10)
    finally:
        os.close(leader)
    return code, b"".join(chunks).decode("utf-8", "replace")

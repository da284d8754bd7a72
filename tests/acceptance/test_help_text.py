"""`--help` of every command reads as words: no <bool>, <str> or <list[str]> type tags and
no [x<=9223372036854775807] ranges."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import typer.main
from typer.testing import CliRunner

from drip.cli import app
from tests.conftest import ROOT

TAG = re.compile(r"<[a-z][a-z_\[\], |]*>|\[x[<>]=|9223372036854775807")


def every_command(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found.extend(every_command(sub, (*path, name)))
    return found


def test_every_help_text_is_free_of_type_tags() -> None:
    runner = CliRunner()
    paths = every_command(typer.main.get_command(app))
    assert len(paths) > 25
    for path in paths:
        shown = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
        assert shown.exit_code == 0, (path, shown.output)
        assert not TAG.search(shown.output), (path, TAG.findall(shown.output), shown.output)


def test_the_real_command_shows_readable_metavars() -> None:
    shown = subprocess.run([sys.executable, "-m", "drip", "sends", "--help"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60,
                           env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"})
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert re.search(r"--limit\s+N\s", text) and re.search(r"--since\s+WHEN\s", text)
    assert re.search(r"--sequence\s+-s\s+KEY\s", text)
    assert not TAG.search(text), text
    bad = subprocess.run([sys.executable, "-m", "drip", "sends", "--limit", "-1"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60,
                         env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"})
    assert bad.returncode == 2 and "-1 is too small; give 0 or more" in bad.stderr

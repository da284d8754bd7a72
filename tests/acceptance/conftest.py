"""Acceptance tests run the real `drip` command and `scheduler.py` as processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.support.cli import cli, cli_env, live  # noqa: F401  (cli, live: the operator tests' fixtures)

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def process_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
    env.update(cli_env(tmp_path, database_url, DRIP_SECRET_KEY="acceptance-secret",
                       DRIP_LOG_LEVEL="INFO", PYTHONUNBUFFERED="1"))
    return env


@pytest.fixture
def drip_cli(process_env: dict[str, str]) -> Run:
    def run(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "drip", *args], cwd=ROOT, env=process_env,
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        )
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    return run

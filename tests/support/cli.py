"""The `drip` command run in-process through Typer's CliRunner, against a real database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from drip.cli import app
from drip.runtime import Drip
from drip.settings import VARIABLES, load_settings
from tests.conftest import FIXTURES


def cli_env(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    """DRIP_* settings for the small fixture sequence; every other DRIP_* variable unset."""
    return {
        "DRIP_DATABASE_URL": database_url,
        "DRIP_VAR_DIR": str(tmp_path / "var"),
        "DRIP_OUTBOX_DIR": str(tmp_path / "outbox"),
        "DRIP_SECRET_KEY": "operator-secret",
        "DRIP_SEQUENCES_DIR": str(FIXTURES / "basic" / "sequences"),
        "DRIP_TEMPLATES_DIR": str(FIXTURES / "basic" / "templates"),
        "DRIP_BASE_URL": "https://drip.test",
        "DRIP_LOG_LEVEL": "WARNING",
        **extra,
    }


class Cli:
    """Run `drip ARGS...` and check that it never shows a traceback."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.runner = CliRunner()

    def __call__(self, *args: str, code: int | None = 0) -> Result:
        unset: dict[str, str | None] = {name: None for name in VARIABLES}
        result = self.runner.invoke(app, list(args), env={**unset, **self.env},
                                    catch_exceptions=False)
        assert "Traceback" not in result.output, result.output
        if code is not None:
            assert result.exit_code == code, (result.exit_code, result.output)
        return result

    def json(self, *args: str, code: int | None = 0) -> Any:
        return json.loads(self(*args, "--json", code=code).stdout)

    def drip(self) -> Drip:
        """drip itself, on the same settings and the real clock, to set up and inspect."""
        return Drip.from_settings(load_settings(self.env))


def crash_mid_send(drip: Drip) -> list[int]:
    """Hand every due email to a worker that dies after committing `sending`: the next
    dispatch finds the lease expired and marks them unknown (docs/delivery.md)."""
    from datetime import timedelta

    from drip.store import Sending

    now = drip.clock.now()
    claimed = drip.store.claim_due(now, 100, "dead-worker", now + timedelta(minutes=5))
    drip.store.mark_sending(
        [Sending(c.id, c.step_key, c.variant, None, "0" * 64) for c in claimed],
        "dead-worker", now, now - timedelta(seconds=1))
    return [c.id for c in claimed]


def fail_due(drip: Drip, error: str = "550 5.1.1 mailbox unavailable") -> list[int]:
    """Every due email refused for good by the provider, as dispatch records it."""
    from datetime import timedelta

    from drip.store import Outcome

    now = drip.clock.now()
    claimed = drip.store.claim_due(now, 100, "test-worker", now + timedelta(minutes=5))
    drip.store.record_outcomes(
        [Outcome(c.id, "failed", provider="outbox", error=error) for c in claimed], now)
    return [c.id for c in claimed]


@pytest.fixture
def cli(tmp_path: Path, database_url: str) -> Cli:
    """`drip` on a fresh database (SQLite and PostgreSQL) with the small fixture sequence."""
    return Cli(cli_env(tmp_path, database_url))


@pytest.fixture
def live(cli: Cli) -> Iterator[Drip]:
    """drip on the same database as `cli`, with the real clock."""
    drip = cli.drip()
    try:
        yield drip
    finally:
        drip.close()

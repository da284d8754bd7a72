"""Shared fixtures: real SQLite files and a real PostgreSQL database, migrated with Alembic.

Database tests run once per backend. PostgreSQL runs when DRIP_TEST_DATABASE_URL is set
(CI always sets it) and is skipped, with the reason shown, when it is not.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from drip.clock import FixedClock
from drip.db import make_engine, upgrade
from drip.models import Base
from drip.runtime import Drip
from drip.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PG_URL = os.environ.get("DRIP_TEST_DATABASE_URL", "")


def _pg_url(url: str) -> str:
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy, which is much faster than migrating."""
    path = tmp_path_factory.mktemp("sqlite-template") / "drip.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    if not PG_URL:
        pytest.skip("PostgreSQL tests need DRIP_TEST_DATABASE_URL (CI sets it)")
    admin_url = make_url(_pg_url(PG_URL))
    name = f"drip_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
            ), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated, empty database: a SQLite file, or the session's PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "drip.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_database")
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "var_dir": tmp_path / "var",
        "database_url": database_url,
        "secret_key": "test-secret-key",
        "sequences_dir": ROOT / "sequences",
        "templates_dir": ROOT / "templates",
        "postal_address": "Dayna's Running Lab, 1 Test Street, Springfield, OR 97477, USA",
        "base_url": "https://drip.test",
    }
    values.update(overrides)
    return load_settings({}, **values)


@contextmanager
def fixture_drip(tmp_path: Path, database_url: str, clock: FixedClock, fixture: str,
                 at: datetime) -> Iterator[Drip]:
    """A Drip over one of `tests/fixtures/<fixture>`'s sequences, its clock set to `at`."""
    settings = make_settings(tmp_path, database_url,
                             sequences_dir=FIXTURES / fixture / "sequences",
                             templates_dir=FIXTURES / fixture / "templates")
    clock.at = at
    instance = Drip.from_settings(settings, clock)
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture
def clock() -> FixedClock:
    from datetime import UTC, datetime

    return FixedClock(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


@pytest.fixture
def drip(settings: Settings, clock: FixedClock) -> Iterator[Drip]:
    instance = Drip.from_settings(settings, clock)
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture
def basic_settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings for the small fixture sequence in tests/fixtures/basic."""
    return make_settings(
        tmp_path, database_url,
        sequences_dir=FIXTURES / "basic" / "sequences",
        templates_dir=FIXTURES / "basic" / "templates",
    )


@pytest.fixture
def basic_drip(basic_settings: Settings, clock: FixedClock) -> Iterator[Drip]:
    instance = Drip.from_settings(basic_settings, clock)
    try:
        yield instance
    finally:
        instance.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per reason a test was skipped, with a count (without PostgreSQL that is
    one line for every PostgreSQL test, not one each)."""
    from collections import Counter

    reasons: Counter[str] = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    if not reasons:
        return
    terminalreporter.write_sep("=", "skipped, by reason")
    for reason, count in reasons.most_common():
        terminalreporter.write_line(f"SKIPPED {count} {'test' if count == 1 else 'tests'}: "
                                    f"{reason}")

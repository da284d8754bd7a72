"""Database engines and migrations, for SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from alembic import command
from drip.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def make_engine(url: str, **options: Any) -> Engine:
    """An engine tuned for drip: WAL and a busy timeout on SQLite, pre-ping on PostgreSQL."""
    parsed = make_url(url)
    # Without this, SQLAlchemy 2.1 reports rowcount -1 for INSERT .. ON CONFLICT on psycopg,
    # and every "was it new?" answer (a pause, an event) would read as "no".
    options.setdefault("execution_options", {"preserve_rowcount": True})
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **options
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        # Take the write lock at BEGIN, so two writers queue instead of deadlocking.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    options.setdefault("pool_pre_ping", True)
    # Sessions talk UTC whatever the server's TimeZone: psycopg then returns instants
    # with datetime.UTC itself, which drip uses as they are (as_utc need not convert).
    options.setdefault("connect_args", {"options": "-c TimeZone=UTC"})
    return create_engine(url, **options)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # drip issues BEGIN itself (see above)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config(engine: Engine) -> Config:
    script_location = ROOT / "alembic"
    if not script_location.is_dir():
        raise ConfigError(
            f"The migrations folder {script_location} is missing; install drip from a "
            "checkout with `pip install -e .`."
        )
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["database_url"] = engine.url.render_as_string(hide_password=False)
    return config


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the database to the newest migration. Returns (revision before, revision now)."""
    before = current_revision(engine)
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return before, head_revision(engine)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(engine: Engine) -> str:
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    return head or ""


def require_current(engine: Engine) -> None:
    """Refuse to work on a database that cannot be reached or whose schema is behind the code."""
    try:
        current = current_revision(engine)
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise ConfigError(
            f"Could not reach the database {engine.url.render_as_string(hide_password=True)} "
            f"({reason}); check DRIP_DATABASE_URL and that the server is running."
        ) from exc
    head = head_revision(engine)
    if current != head:
        raise ConfigError(
            f"The database is at migration {current or 'none'} but drip needs {head}; "
            "run `drip db upgrade`."
        )


def database_exists(url: str) -> bool:
    """False for a SQLite file that was never created (opening it would create it)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return True
    return bool(parsed.database) and parsed.database != ":memory:" and Path(
        str(parsed.database)).exists()

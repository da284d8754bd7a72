"""Database engines and migrations, for SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from drip.errors import ConfigError

if TYPE_CHECKING:
    from alembic.config import Config

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "alembic"
#: Where alembic keeps the database's revision (its default table name).
VERSION_TABLE = "alembic_version"


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
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_script_location(MIGRATIONS)))
    config.attributes["database_url"] = engine.url.render_as_string(hide_password=False)
    return config


def _script_location(script_location: Path) -> Path:
    if not script_location.is_dir():
        raise ConfigError(
            f"The migrations folder {script_location} is missing; install drip from a "
            "checkout with `pip install -e .`."
        )
    return script_location


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the database to the newest migration. Returns (revision before, revision now)."""
    from alembic import command

    before = current_revision(engine)
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return before, head_revision()


# Every command checks the revision before it starts, so the two functions below answer
# without importing alembic, which would cost each command a few tenths of a second.


def current_revision(engine: Engine) -> str | None:
    """The revision in alembic's version table, as alembic's MigrationContext reads it."""
    with engine.connect() as connection:
        if not connection.dialect.has_table(connection, VERSION_TABLE):
            return None
        revisions = connection.execute(
            text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(revisions) > 1:
        raise ConfigError(
            f"The database has more than one migration head ({', '.join(revisions)}); "
            "drip cannot tell which schema it has."
        )
    return revisions[0] if revisions else None


def head_revision(script_location: Path = MIGRATIONS) -> str:
    """The newest migration in the folder, as alembic's ScriptDirectory finds it.

    A plain chain, each migration naming one parent, is read straight from the files;
    anything else (branches, merges, labels, computed names) is left to alembic.
    """
    versions = _script_location(script_location) / "versions"
    head = _plain_chain_head(versions)
    if head is None:
        from alembic.script import ScriptDirectory

        head = ScriptDirectory(str(script_location)).get_current_head()
    return head or ""


def _plain_chain_head(versions: Path) -> str | None:
    """The newest revision if the migrations form one unbranched chain, else None."""
    parents: dict[str, str | None] = {}
    # The files alembic loads: its pattern is (?!\.\#|__init__)(.*\.py)$, not recursive.
    for path in sorted(versions.glob("*.py")):
        if path.name.startswith((".#", "__init__")) or not path.is_file():
            continue
        names = _literal_names(path)
        if names is None or names.get("branch_labels") or names.get("depends_on"):
            return None
        revision, parent = names.get("revision"), names.get("down_revision")
        if not isinstance(revision, str) or revision in parents or not (
                parent is None or isinstance(parent, str)):
            return None
        parents[revision] = parent
    heads = set(parents) - set(parents.values())
    if len(heads) != 1:
        return None
    head = heads.pop()
    current: str | None = head
    walked = 0
    while current is not None and current in parents and walked < len(parents):
        current, walked = parents[current], walked + 1
    return head if current is None and walked == len(parents) else None


def _literal_names(path: Path) -> dict[str, Any] | None:
    """What a migration file sets its revision names to; None unless each is a plain literal."""
    try:
        module = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError):
        return None
    names: dict[str, Any] = {}
    for statement in module.body:
        target, value = _simple_assignment(statement)
        if isinstance(target, ast.Name) and target.id in _REVISION_NAMES and value is not None:
            try:
                names[target.id] = ast.literal_eval(value)
                continue
            except (ValueError, TypeError, SyntaxError, RecursionError):
                return None
        if any(name in _REVISION_NAMES for name in _bound_names(statement)):
            return None
    return names


_REVISION_NAMES = ("revision", "down_revision", "branch_labels", "depends_on")


def _simple_assignment(statement: ast.stmt) -> tuple[ast.expr | None, ast.expr | None]:
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        return statement.targets[0], statement.value
    if isinstance(statement, ast.AnnAssign):
        return statement.target, statement.value
    return None, None


def _bound_names(statement: ast.stmt) -> Iterator[str]:
    """Every module-level name a statement could set, however it does it."""
    for node in ast.walk(statement):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            yield node.id
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node.name
        elif isinstance(node, ast.alias) and node.name == "*":
            yield from _REVISION_NAMES
        elif isinstance(node, ast.alias):
            yield node.asname or node.name.split(".")[0]
        elif isinstance(node, ast.Global | ast.Nonlocal):
            yield from node.names


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
    head = head_revision()
    if current != head:
        raise ConfigError(
            f"The database is at migration {current or 'none'} but drip needs {head}; "
            "run `drip db upgrade`."
        )


def require_existing(url: str) -> None:
    """Refuse a SQLite file that is not there: opening it would create an empty database
    (and its folder), and a typo in DRIP_DATABASE_URL would look like a database with
    nobody in it. Only `drip db upgrade` creates one."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database \
            or parsed.database == ":memory:":
        return
    path = Path(parsed.database)
    if not path.exists():
        folder = "" if path.parent.is_dir() else f" (nor the folder {path.parent})"
        raise ConfigError(
            f"There is no SQLite database at {path}{folder}; create it with `drip db "
            "upgrade`, or point DRIP_DATABASE_URL at the database you have.")


def database_exists(url: str) -> bool:
    """False for a SQLite file that was never created (opening it would create it)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return True
    return bool(parsed.database) and parsed.database != ":memory:" and Path(
        str(parsed.database)).exists()

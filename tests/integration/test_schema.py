"""The models and the Alembic migrations describe the same schema, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from drip.db import current_revision, head_revision, make_engine, upgrade
from drip.models import Base


def test_models_and_migrations_agree(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []


def test_upgrade_is_idempotent(database_url: str) -> None:
    engine = make_engine(database_url)
    head = head_revision()
    assert current_revision(engine) == head
    assert upgrade(engine) == (head, head)
    engine.dispose()

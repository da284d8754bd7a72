"""The array literals the PostgreSQL hot path binds arrive exactly as the lists they encode."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import create_engine, text

from drip.store._base import pg_array

AWKWARD = ['plain', 'with "quotes"', "back\\slash", "{braces}", "a,b", "NULL", "", " lead",
           "ünïcödé ✓", "new\nline", None]


def test_text_int_and_time_arrays_round_trip(postgres_database: str) -> None:
    """PostgreSQL only (SQLite binds rows with executemany): skipped without
    DRIP_TEST_DATABASE_URL."""
    engine = create_engine(postgres_database)
    try:
        with engine.connect() as conn:
            texts = conn.execute(text("SELECT CAST(:v AS text[])"),
                                 {"v": pg_array(AWKWARD)}).scalar_one()
            ints = conn.execute(text("SELECT CAST(:v AS bigint[])"),
                                {"v": pg_array([1, None, 2**62])}).scalar_one()
            moments = [datetime(2026, 3, 2, 12, 0, 0, 123456, tzinfo=UTC), None]
            times = conn.execute(text("SELECT CAST(:v AS timestamptz[])"),
                                 {"v": pg_array(moments)}).scalar_one()
            empty = conn.execute(text("SELECT cardinality(CAST(:v AS text[]))"),
                                 {"v": pg_array([])}).scalar_one()
    finally:
        engine.dispose()
    assert texts == AWKWARD
    assert ints == [1, None, 2**62]
    assert times == moments
    assert empty == 0

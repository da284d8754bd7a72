"""A database fingerprint: each table's row count and a hash of its rows, to show that a
refused request changed nothing."""

from __future__ import annotations

import hashlib

from sqlalchemy import Engine, select

from drip.models import Base


def fingerprint(engine: Engine) -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = sorted(repr(tuple(row)) for row in conn.execute(select(table)))
            out[table.name] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
    return out

"""Seed a benchmark database fast: N subscribers, each with one delivery due now.

This is a benchmark harness, not part of drip: it writes rows with SQLAlchemy Core in
large batches so that seeding a million rows does not dominate the run.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, insert

from drip.models import Delivery, Enrollment, Subscriber

ZONES = ("America/Los_Angeles", "Europe/London", "Australia/Sydney", "Asia/Kolkata")
CHUNK = 20_000


def seed_due(engine: Engine, count: int, now: datetime, sequence_key: str = "pht-7-week",
             step_key: str = "week-1") -> None:
    """`count` subscribers enrolled at `now`, each with `step_key` due at `now`."""
    for start in range(0, count, CHUNK):
        ids = range(start + 1, min(start + CHUNK, count) + 1)
        with engine.begin() as conn:
            conn.execute(insert(Subscriber), [
                {"id": i, "email": f"runner{i:07d}@example.com", "name": f"Runner {i}",
                 "timezone": ZONES[i % len(ZONES)], "created_at": now} for i in ids])
            conn.execute(insert(Enrollment), [
                {"id": i, "subscriber_id": i, "sequence_key": sequence_key, "cycle": 1,
                 "state": "active", "source": "import", "enrolled_at": now} for i in ids])
            conn.execute(insert(Delivery), [
                {"id": i, "enrollment_id": i, "subscriber_id": i, "sequence_key": sequence_key,
                 "seq_no": 1, "step_key": step_key, "variant": "main", "state": "scheduled",
                 "due_at": now, "window_end_at": None, "attempts": 0, "created_at": now}
                for i in ids])
    if engine.dialect.name == "postgresql":  # explicit ids: move the sequences past them
        with engine.begin() as conn:
            for table in ("subscribers", "enrollments", "deliveries"):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))")

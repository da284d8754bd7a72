"""Import benchmark: generate a CSV of N people and time the real `drip import` command.

    python bench/import_csv.py [--rows 100000] [--db sqlite|postgresql]

Runs `drip import FILE --sequence pht-7-week` as a process on a fresh database (the whole
command: start-up, checking every row, writing subscribers, consents, enrollments and
first deliveries), then runs it again to time the idempotent re-run. Then, on another
fresh database, times the store alone: the already-parsed rows through
`drip.imports.import_rows` (first emails planned, one Store.import_enrollments call).
Prints rows/s. The targets are 100,000 rows in under 30 s on SQLite and at least 5,000
enrollments/s.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dispatch import drop_database, fresh_database  # noqa: E402
from drip.db import make_engine, upgrade  # noqa: E402

ZONES = ("America/Los_Angeles", "Europe/London", "Australia/Sydney", "Asia/Kolkata",
         "America/New_York", "Europe/Berlin")


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name", "timezone", "joined_at", "source", "order_id"])
        for i in range(rows):
            writer.writerow([f"runner{i:07d}@example.com", f"Runner {i}",
                             ZONES[i % len(ZONES)], f"2026-0{1 + i % 9}-1{i % 10}T08:00:00Z",
                             "shop", f"order-{i}"])


def run_import(env: dict[str, str], path: Path) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "drip", "import", str(path), "--sequence", "pht-7-week"],
        cwd=ROOT, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(result.stdout + result.stderr)
    return elapsed, result.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        path = workdir / "people.csv"
        write_csv(path, args.rows)
        url, cleanup = fresh_database(args.db, workdir)
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
        env.update({"DRIP_DATABASE_URL": url, "DRIP_VAR_DIR": str(workdir / "var"),
                    "DRIP_SECRET_KEY": "bench", "DRIP_LOG_LEVEL": "WARNING"})
        try:
            first, said = run_import(env, path)
            print(f"{args.db}: imported {args.rows:,} rows in {first:.1f} s "
                  f"({args.rows / first:,.0f} rows/s), whole command")
            print(f"  drip said: {said}")
            again, said = run_import(env, path)
            print(f"{args.db}: re-ran the same file in {again:.1f} s "
                  f"({args.rows / again:,.0f} rows/s); drip said: {said}")
        finally:
            drop_database(cleanup)
        seconds = store_only(workdir, path, args.db)
        print(f"{args.db}: the store alone enrolled {args.rows:,} people in {seconds:.1f} s "
              f"({args.rows / seconds:,.0f} enrollments/s)")


def store_only(workdir: Path, path: Path, kind: str) -> float:
    """Seconds for the store to take the parsed file: no process start-up, no CSV parsing."""
    from datetime import UTC, datetime

    from drip.imports import import_rows, parse_csv
    from drip.sequence import load_library
    from drip.store import Store

    url, cleanup = fresh_database(kind, workdir / "store")
    try:
        engine = make_engine(url)
        upgrade(engine)
        parsed = parse_csv(path.read_bytes())
        library = load_library(ROOT / "sequences")
        started = time.perf_counter()
        result = import_rows(Store(engine), library, parsed, sequence_key="pht-7-week",
                             now=datetime(2026, 3, 2, 12, 0, tzinfo=UTC), file_name=path.name)
        seconds = time.perf_counter() - started
        engine.dispose()
        assert result.enrolled == len(parsed.rows), result
        return seconds
    finally:
        drop_database(cleanup)


if __name__ == "__main__":
    main()

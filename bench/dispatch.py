"""Dispatch benchmark: N subscribers all due in one send slot, sent through the SendGrid
stand-in (schema validation off), end to end by the real `drip dispatch` command.

    python bench/dispatch.py --subscribers 10000,100000 [--db sqlite|postgresql] [--workers 1]
                             [--code DIR[,DIR...]]

Prints emails per second, the dispatching processes' peak RSS, the split of time between
the database, rendering and HTTP, and the TCP connections the stand-in accepted; then the
render-only floor (same emails, no database, no HTTP, best of three up to 200,000).
`--code` runs `drip dispatch` from other checkouts too (e.g. a `git archive` of the code
before a change), alternating with this one, for a before/after in one sitting. Appends
the table to bench/README.md with --record.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import nullcontext
from datetime import UTC, datetime
from itertools import product
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.seed import seed_due  # noqa: E402
from drip.db import make_engine  # noqa: E402

KEY = "SG.bench-key"
FLOOR_RUNS = 3
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def start_standin() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.sendgrid_standin", "--port", "0",
         "--no-validate", "--api-key", KEY],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    assert process.stdout is not None
    url = process.stdout.readline().strip().split()[-1]
    return process, url


def fresh_database(kind: str, workdir: Path) -> tuple[str, object]:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}", None
    base = os.environ.get("DRIP_TEST_DATABASE_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    admin_url = make_url(base.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"drip_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return admin_url.set(database=name).render_as_string(hide_password=False), (admin, name)


def drop_database(handle: object) -> None:
    if handle is None:
        return
    admin, name = handle  # type: ignore[misc]
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def stop_standin(process: subprocess.Popen[str]) -> dict[str, int]:
    """Stop the stand-in; what it served (TCP connections, requests)."""
    process.terminate()
    out, _ = process.communicate(timeout=30)
    served: dict[str, int] = json.loads(out.strip().splitlines()[-1])
    return served


class BackendCPU:
    """The CPU time of the PostgreSQL backends serving one database, read from /proc while
    they live (the server runs on this machine): sampled every 50 ms from a thread, so a
    backend's last few milliseconds before it exits can be missed."""

    def __init__(self, url: str) -> None:
        self._engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        self._ticks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> BackendCPU:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._engine.dispose()

    def _watch(self) -> None:
        with self._engine.connect() as conn:
            query = text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                         " AND pid <> pg_backend_pid()")
            while not self._stop.wait(0.05):
                for pid in conn.execute(query).scalars():
                    try:
                        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    except OSError:
                        continue
                    self._ticks[pid] = int(fields[11]) + int(fields[12])  # utime + stime

    @property
    def seconds(self) -> float:
        return sum(self._ticks.values()) / os.sysconf("SC_CLK_TCK")


def run(count: int, kind: str, workers: int, code: Path = ROOT,
        profile: Path | None = None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url, handle = fresh_database(kind, workdir)
        try:
            # Migrated by the code under test: code before a schema change wants its own head.
            subprocess.run([sys.executable, "-m", "drip", "db", "upgrade"], cwd=code,
                           env={**os.environ, "DRIP_DATABASE_URL": url,
                                "DRIP_SECRET_KEY": "bench", "DRIP_LOG_LEVEL": "WARNING",
                                "DRIP_VAR_DIR": str(workdir / "var")},
                           check=True, capture_output=True, stdin=subprocess.DEVNULL)
            engine = make_engine(url)
            started = time.perf_counter()
            seed_due(engine, count, NOW)
            seeded = time.perf_counter() - started
            engine.dispose()
            standin, standin_url = start_standin()
            env = {**os.environ, "DRIP_DATABASE_URL": url, "DRIP_BACKEND": "sendgrid",
                   "DRIP_SENDGRID_HOST": standin_url, "SENDGRID_API_KEY": KEY,
                   "DRIP_SECRET_KEY": "bench", "DRIP_VAR_DIR": str(workdir / "var"),
                   "DRIP_BATCH_SIZE": "1000", "DRIP_LOG_LEVEL": "WARNING"}
            backends = BackendCPU(url) if kind == "postgresql" else nullcontext()
            try:
                backends.__enter__()
                started = time.perf_counter()
                # Output goes to files, not pipes: a report of 100k sends would fill a pipe
                # and block the worker before os.wait4 returns.
                outputs = [(workdir / f"out-{i}.json", workdir / f"err-{i}.log")
                           for i in range(workers)]
                processes = []
                for out_path, err_path in outputs:
                    with out_path.open("w") as out_file, err_path.open("w") as err_file:
                        # --profile: py-spy's collapsed stacks of every thread, idle included.
                        spy = ([] if profile is None else
                               ["py-spy", "record", "--format", "raw", "--idle", "--threads",
                                "--rate", "250", "--output",
                                str(profile / f"worker-{len(processes)}.txt"), "--"])
                        processes.append(subprocess.Popen(
                            [*spy, sys.executable, "-m", "drip", "dispatch", "--json",
                             "--now", NOW.isoformat()],
                            cwd=code, env=env, stdout=out_file, stderr=err_file, text=True))
                reports, peak_kb, cpu = [], 0, 0.0
                for process, (out_path, err_path) in zip(processes, outputs, strict=True):
                    _, status, usage = os.wait4(process.pid, 0)
                    out, err = out_path.read_text(), err_path.read_text()
                    out = "".join(line for line in out.splitlines(keepends=True)
                                  if not line.startswith("py-spy>"))
                    process.returncode = os.waitstatus_to_exitcode(status)
                    if process.returncode not in (0, 1):
                        raise RuntimeError(f"dispatch failed: {err[-2000:]}")
                    reports.append(json.loads(out))
                    peak_kb = max(peak_kb, usage.ru_maxrss)
                    cpu += usage.ru_utime + usage.ru_stime
                elapsed = time.perf_counter() - started
            finally:
                backends.__exit__(None, None, None)
                served = stop_standin(standin)
            sent = sum(r["sent_count"] for r in reports)
            timings = {part: sum(r["timings"].get(part, 0.0) for r in reports)
                       for part in ("database", "rendering", "provider")}
            return {"subscribers": count, "sent": sent, "seconds": elapsed,
                    "per_second": sent / elapsed, "peak_rss_mb": peak_kb / 1024,
                    "seed_seconds": seeded, "worker_cpu": cpu,
                    "worker_cpu_us": cpu / max(sent, 1) * 1e6,
                    "pg_backend_cpu_us": (backends.seconds / max(sent, 1) * 1e6
                                          if isinstance(backends, BackendCPU) else 0.0),
                    **timings,
                    "connections": served["connections"], "requests": served["posts"],
                    "connections_per_100k": served["connections"] * 100_000 / max(sent, 1)}
        finally:
            drop_database(handle)


def render_floor(count: int) -> float:
    """Seconds to build `count` messages with no database and no HTTP (the render floor)."""
    from drip.links import Links
    from drip.message import Message, recipient_values
    from drip.render import Renderer, Sender
    from drip.sequence import load_library
    from drip.tokens import Signer

    library = load_library(ROOT / "sequences")
    renderer = Renderer(ROOT / "templates", library, Sender("Dayna", "coach@example.com", "x"))
    links = Links("https://drip.test", Signer("bench"))
    started = time.perf_counter()
    body_bytes = 0
    for i in range(1, count + 1):
        content = renderer.content("pht-7-week", "week-1", "main", "strength-assessment")
        values = recipient_values({
            "first_name": "Runner", "email": f"runner{i}@example.com",
            "unsubscribe_url": links.unsubscribe(i, i), "pause_url": links.pause(i),
            "checkpoint_passed_url": links.checkpoint(i, "passed"),
            "checkpoint_not_yet_url": links.checkpoint(i, "not-yet"),
        })
        message = Message(i, i, "pht-7-week", "week-1", "main", f"runner{i}@example.com",
                          "Runner", "coach@example.com", "Dayna", content, values)
        body_bytes += len(json.dumps(values)) + len(message.headers())
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", default="10000,100000")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workers", default="1")
    parser.add_argument("--code", default=str(ROOT),
                        help="checkouts whose drip to run, comma-separated, alternating")
    parser.add_argument("--record", action="store_true", help="append to bench/README.md")
    parser.add_argument("--profile", type=Path, default=None,
                        help="a folder for py-spy's collapsed stacks of each worker (CPU "
                             "figures then include py-spy's)")
    parser.add_argument("--no-floor", dest="floor", action="store_false",
                        help="skip the render floor (this checkout's code, three runs a row)")
    args = parser.parse_args()
    rows = []
    codes = [Path(c).resolve() for c in args.code.split(",")]
    sizes = [int(n) for n in args.subscribers.split(",")]
    for workers, count, code in product([int(w) for w in args.workers.split(",")], sizes, codes):
        result = run(count, args.db, workers, code, args.profile)
        # The floor is CPU-bound and this machine's speed swings from minute to minute:
        # take the best of three, the least disturbed estimate (so the ratio errs high);
        # once above 200,000, where one run takes minutes and varies less.
        runs = FLOOR_RUNS if count <= 200_000 else 1
        floor = min(render_floor(count) for _ in range(runs)) if args.floor else float("nan")
        result.update(workers=workers, render_floor=floor,
                      floor_ratio=result["seconds"] / floor)
        rows.append((code, result))
        print(json.dumps({"code": str(code), **{
            k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}}),
            flush=True)
    header = ("| code | db | workers | emails | seconds | emails/s | peak RSS MB | "
              "worker CPU s | worker CPU µs/email | PG backend CPU µs/email | database s | "
              "rendering s | provider s | render floor s | "
              "end-to-end / floor | TCP connections | per 100,000 emails |")
    lines = [header, "|" + "---|" * 17]
    for code, r in rows:
        lines.append(
            f"| {code.name} | {args.db} | {r['workers']} | {r['sent']:,} | {r['seconds']:.1f} | "
            f"{r['per_second']:,.0f} | {r['peak_rss_mb']:.0f} | {r['worker_cpu']:.1f} | "
            f"{r['worker_cpu_us']:.0f} | {r['pg_backend_cpu_us']:.0f} | "
            f"{r['database']:.1f} | "
            f"{r['rendering']:.1f} | {r['provider']:.1f} | {r['render_floor']:.1f} | "
            f"{r['floor_ratio']:.1f} | {r['connections']:,} | "
            f"{r['connections_per_100k']:,.0f} |")
    table = "\n".join(lines)
    print(table)
    if args.record:
        with open(ROOT / "bench" / "README.md", "a") as handle:
            handle.write(f"\n### dispatch, {args.db}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
                         f"{platform.node()} ({os.cpu_count()} cores)\n\n{table}\n")


if __name__ == "__main__":
    main()

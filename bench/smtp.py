"""SMTP benchmark: N subscribers due at once, sent by the real `drip dispatch` command to an
aiosmtpd sink (its own process) that waits --latency-ms before answering each DATA.

    python bench/smtp.py [--emails 20000] [--latency-ms 0,50] [--db sqlite|postgresql]
                         [--connections 4] [--code DIR[,DIR...]] [--peer] [--record]

Prints emails per second and CPU per email: the worker's (user+system, from wait4) and
the sink's. `--code` runs other checkouts too (e.g. a `git archive` of the code before a
change), alternating, for a before/after in one sitting. `--peer` also runs
django-post_office (`pip install -e '.[bench]'`) on the same sink, with the same number of
emails of the same size: its `send_queued_mail_until_done`, with its default settings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from itertools import product
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dispatch import NOW, drop_database, fresh_database  # noqa: E402
from bench.seed import seed_due  # noqa: E402


def start_sink(latency_ms: float) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.smtp_sink", "--latency-ms", str(latency_ms),
         "--pipelining", "--discard"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    assert process.stdout is not None
    port = int(process.stdout.readline().strip().rsplit(":", 1)[1])
    return process, port


def stop_sink(process: subprocess.Popen[str]) -> tuple[dict[str, int], float]:
    """Stop the sink: its counts and the CPU seconds it used."""
    process.terminate()
    _, status, usage = os.wait4(process.pid, 0)
    assert process.stdout is not None
    counts: dict[str, int] = json.loads(process.stdout.read().strip().splitlines()[-1])
    process.returncode = os.waitstatus_to_exitcode(status)
    return counts, usage.ru_utime + usage.ru_stime


def run_drip(count: int, latency_ms: float, kind: str, connections: int,
             code: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url, handle = fresh_database(kind, workdir)
        base_env = {**os.environ, "DRIP_DATABASE_URL": url, "DRIP_SECRET_KEY": "bench",
                    "DRIP_LOG_LEVEL": "WARNING", "DRIP_VAR_DIR": str(workdir / "var")}
        try:
            subprocess.run([sys.executable, "-m", "drip", "db", "upgrade"], cwd=code,
                           env=base_env, check=True, capture_output=True,
                           stdin=subprocess.DEVNULL)
            from drip.db import make_engine

            engine = make_engine(url)
            seed_due(engine, count, NOW)
            engine.dispose()
            sink, port = start_sink(latency_ms)
            env = {**base_env, "DRIP_BACKEND": "smtp", "DRIP_SMTP_HOST": "127.0.0.1",
                   "DRIP_SMTP_PORT": str(port), "DRIP_SMTP_TLS": "none",
                   "DRIP_SMTP_CONNECTIONS": str(connections), "DRIP_BATCH_SIZE": "500"}
            try:
                out_path, err_path = workdir / "out.json", workdir / "err.log"
                started = time.perf_counter()
                with out_path.open("w") as out, err_path.open("w") as err:
                    worker = subprocess.Popen(
                        [sys.executable, "-m", "drip", "dispatch", "--json",
                         "--now", NOW.isoformat()], cwd=code, env=env, stdout=out, stderr=err)
                _, status, usage = os.wait4(worker.pid, 0)
                elapsed = time.perf_counter() - started
                if os.waitstatus_to_exitcode(status) not in (0, 1):
                    raise RuntimeError(f"dispatch failed: {err_path.read_text()[-2000:]}")
            finally:
                counts, sink_cpu = stop_sink(sink)
            report = json.loads(out_path.read_text())
            sent = report["sent_count"]
            cpu = usage.ru_utime + usage.ru_stime
            return {"emails": count, "sent": sent, "accepted_by_sink": counts["accepted"],
                    "connections": counts["connections"], "seconds": elapsed,
                    "per_second": sent / elapsed, "worker_cpu_us": cpu / max(sent, 1) * 1e6,
                    "sink_cpu_us": sink_cpu / max(sent, 1) * 1e6,
                    "peak_rss_mb": usage.ru_maxrss / 1024}
        finally:
            drop_database(handle)


def run_peer(count: int, latency_ms: float, kind: str) -> dict[str, float]:
    """django-post_office, in its own process, on the same kind of sink."""
    with tempfile.TemporaryDirectory() as tmp:
        url, handle = fresh_database(kind, Path(tmp))
        sink, port = start_sink(latency_ms)
        try:
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, str(Path(__file__)), "--peer-child", str(count),
                 "--peer-db", url, "--peer-port", str(port)],
                cwd=ROOT, capture_output=True, text=True, check=False,
                stdin=subprocess.DEVNULL)
            if done.returncode != 0:
                raise RuntimeError(f"post_office failed: {done.stderr[-2000:]}")
            elapsed = time.perf_counter() - started
        finally:
            counts, sink_cpu = stop_sink(sink)
            drop_database(handle)
        result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
        sent = counts["accepted"]
        return {**result, "emails": count, "sent": sent, "accepted_by_sink": sent,
                "connections": counts["connections"], "process_seconds": elapsed,
                "per_second": sent / result["seconds"],
                "worker_cpu_us": result["cpu"] / max(sent, 1) * 1e6,
                "sink_cpu_us": sink_cpu / max(sent, 1) * 1e6}


def peer_child(count: int, url: str, port: int) -> None:
    """Queue `count` emails in django-post_office and time sending them all."""
    import django
    from django.conf import settings
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = {"ENGINE": "django.db.backends.sqlite3", "NAME": parsed.database}
    else:
        database = {"ENGINE": "django.db.backends.postgresql", "NAME": parsed.database,
                    "USER": parsed.username or "", "PASSWORD": parsed.password or "",
                    "HOST": parsed.host or "", "PORT": str(parsed.port or "")}
    settings.configure(
        DATABASES={"default": database}, USE_TZ=True,
        INSTALLED_APPS=["django.contrib.contenttypes", "post_office"],
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=port, POST_OFFICE={"LOG_LEVEL": 0},
        LOGGING_CONFIG=None, DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}])
    django.setup()
    from django.core.management import call_command
    from post_office import mail

    call_command("migrate", verbosity=0)
    html, text = _sample_bodies()
    for start in range(0, count, 1000):
        mail.send_many([{
            "recipients": [f"Runner {i} <runner{i:07d}@example.com>"],
            "sender": "Dayna <coach@example.com>",
            "subject": "Week 1: settle the tendon with isometric holds",
            "message": text.replace("%%first_name%%", f"Runner{i}"),
            "html_message": html.replace("%%first_name%%", f"Runner{i}"),
            "headers": {"List-Unsubscribe": f"<https://drip.test/u/{i}>",
                        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        } for i in range(start, min(start + 1000, count))])
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    lockfile = Path(tempfile.gettempdir()) / f"post-office-bench-{os.getpid()}"
    mail.send_queued_mail_until_done(processes=1, lockfile=str(lockfile))
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(json.dumps({"seconds": seconds, "cpu": cpu}))


def _sample_bodies() -> tuple[str, str]:
    """Week 1's HTML and text as drip renders them, so both send emails of one size."""
    from drip.render import Renderer, Sender
    from drip.sequence import load_library

    library = load_library(ROOT / "sequences")
    renderer = Renderer(ROOT / "templates", library, Sender("Dayna", "coach@example.com", "x"))
    content = renderer.content("pht-7-week", "week-1", "main", None)
    return content.html.replace("%%first_name:html%%", "%%first_name%%"), content.text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", default="20000", help="comma-separated, one per latency")
    parser.add_argument("--latency-ms", default="0,50")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--code", default=str(ROOT))
    parser.add_argument("--peer", action="store_true", help="also run django-post_office")
    parser.add_argument("--record", action="store_true", help="append to bench/README.md")
    parser.add_argument("--peer-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--peer-db", help=argparse.SUPPRESS)
    parser.add_argument("--peer-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer_child is not None:
        peer_child(args.peer_child, args.peer_db, args.peer_port)
        return
    latencies = [float(x) for x in args.latency_ms.split(",")]
    sizes = [int(x) for x in args.emails.split(",")]
    sizes += [sizes[-1]] * (len(latencies) - len(sizes))
    codes = [Path(c).resolve() for c in args.code.split(",")]
    rows = []
    for (latency, count), code in product(zip(latencies, sizes, strict=True), codes):
        result = run_drip(count, latency, args.db, args.connections, code)
        rows.append((code.name, latency, result))
        print(json.dumps({"code": code.name, "latency_ms": latency, **result}), flush=True)
    if args.peer:
        for latency, count in zip(latencies, sizes, strict=True):
            result = run_peer(count, latency, args.db)
            rows.append(("django-post_office", latency, result))
            print(json.dumps({"code": "post_office", "latency_ms": latency, **result}),
                  flush=True)
    lines = ["| code | db | latency ms | emails | seconds | emails/s | worker CPU µs/email | "
             "sink CPU µs/email | connections |", "|" + "---|" * 9]
    for name, latency, r in rows:
        lines.append(f"| {name} | {args.db} | {latency:g} | {r['sent']:,} | {r['seconds']:.1f} "
                     f"| {r['per_second']:,.0f} | {r['worker_cpu_us']:,.0f} | "
                     f"{r['sink_cpu_us']:,.0f} | {r['connections']} |")
    table = "\n".join(lines)
    print(table)
    if args.record:
        with open(ROOT / "bench" / "README.md", "a") as handle:
            handle.write(f"\n### smtp, {args.db}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
                         f"{platform.node()} ({os.cpu_count()} cores)\n\n{table}\n")


if __name__ == "__main__":
    main()

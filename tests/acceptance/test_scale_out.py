"""Scale out on PostgreSQL: many real worker processes on one database (issue 8).

- concurrency: 4 `drip dispatch` processes share 20,000 due emails; each goes exactly once;
  3 `python scheduler.py` processes on one database do the same for 3,000;
- chaos: 3 workers, one SIGKILLed at random every 1-3 s and restarted; nothing goes twice,
  and the only unknowns are emails that were in flight at a kill;
- DB outage: `python scheduler.py` talks to PostgreSQL through a proxy that is cut for a
  while; it keeps running, says so in its log, and catches up with nothing lost or doubled;
  cut while SendGrid holds a batch, that batch ends sent or unknown and never goes again.

These need several processes writing at once, which is what PostgreSQL is for: on SQLite
they are skipped (one writer; a second scheduler refuses to start, tested elsewhere).
"""

from __future__ import annotations

import email
import email.utils
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

from bench.seed import seed_due
from drip.clock import SystemClock
from drip.models import Delivery, Heartbeat, Subscriber
from drip.runtime import Drip
from drip.settings import load_settings
from drip.store import DeliveryRow
from drip.subscriptions import enroll as enroll_subscriber
from tests.conftest import FIXTURES, ROOT
from tests.support.sendgrid_standin import SendGridStandIn
from tests.support.tcp_proxy import TcpProxy

KEY = "SG.test-key"
EMAILS = 20_000
FINAL_STATES = {"sent", "failed", "unknown"}


@pytest.fixture
def pg_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("several workers on one database need PostgreSQL "
                    "(SQLite has one writer); set DRIP_TEST_DATABASE_URL")
    return database_url


# --- helpers ----------------------------------------------------------------------------------


def seed(url: str, count: int) -> None:
    """`count` subscribers of the 7-week program, each with week 1 due a minute ago."""
    engine = create_engine(url)
    try:
        seed_due(engine, count, datetime.now(UTC) - timedelta(minutes=1))
    finally:
        engine.dispose()


def sendgrid_env(process_env: dict[str, str], standin: SendGridStandIn,
                 **extra: str) -> dict[str, str]:
    """Workers send the real 7-week program (what bench/seed.py seeds) to the stand-in."""
    return {**process_env, "DRIP_BACKEND": "sendgrid", "DRIP_SENDGRID_HOST": standin.url,
            "SENDGRID_API_KEY": KEY, "DRIP_SEQUENCES_DIR": str(ROOT / "sequences"),
            "DRIP_TEMPLATES_DIR": str(ROOT / "templates"), "DRIP_LOG_LEVEL": "WARNING",
            **extra}


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_worker(env: dict[str, str], log: Path) -> Worker:
    """One `drip dispatch` pass as a process; output to a file (a pipe could fill and block)."""
    with log.open("wb") as handle:
        process = subprocess.Popen([sys.executable, "-m", "drip", "dispatch", "--json"],
                                   cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    return Worker(process, log)


def start_scheduler(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        return subprocess.Popen([sys.executable, "scheduler.py"], cwd=ROOT, env=env,
                                stdout=handle, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)


def finish(worker: Worker, deadline: float) -> int:
    """Wait for a worker until `deadline` (monotonic); kill it and fail if it is still busy."""
    try:
        return worker.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired as exc:
        worker.process.kill()
        worker.process.wait()
        raise AssertionError(
            f"worker {worker.pid} did not finish:\n{worker.output()[-3000:]}") from exc


def assert_clean_exit(worker: Worker, code: int) -> None:
    # 0: everything went; 1 (EXIT_FAILED): some deliveries failed or became unknown.
    assert code in (0, 1), f"worker {worker.pid} exited {code}:\n{worker.output()[-3000:]}"
    assert "Traceback" not in worker.output(), worker.output()[-3000:]


def drip_for(url: str, tmp_path: Path, content: Path = ROOT) -> Drip:
    settings = load_settings({}, database_url=url, var_dir=tmp_path / "check",
                             secret_key="x", sequences_dir=content / "sequences",
                             templates_dir=content / "templates")
    return Drip.from_settings(settings, SystemClock())


def enroll(url: str, tmp_path: Path, addresses: list[str]) -> None:
    """Enroll each address in the small `basic` sequence now, straight to the database."""
    drip = drip_for(url, tmp_path, FIXTURES / "basic")
    try:
        for address in addresses:
            enroll_subscriber(drip.store, drip.library, email=address, sequence_key="basic",
                              now=drip.clock.now())
    finally:
        drip.close()


def week_one(url: str, tmp_path: Path) -> list[DeliveryRow]:
    drip = drip_for(url, tmp_path)
    try:
        return [r for r in drip.store.deliveries() if r.seq_no == 1]
    finally:
        drip.close()


def listed_as_unknown(url: str, tmp_path: Path) -> set[str]:
    """The recipients an operator is shown as unknown, by the real `drip sends` command."""
    env = {**os.environ, "DRIP_DATABASE_URL": url, "DRIP_VAR_DIR": str(tmp_path / "var"),
           "DRIP_SECRET_KEY": "x"}
    listed = subprocess.run(
        [sys.executable, "-m", "drip", "sends", "--state", "unknown", "--limit", "100000",
         "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL)
    assert listed.returncode == 0, listed.stderr
    return {row["email"] for row in json.loads(listed.stdout)}


def sending_by(url: str, pid: int) -> set[str]:
    """Recipients whose delivery the worker with this pid had marked `sending` (in flight)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(
                select(Subscriber.email)
                .join(Delivery, Delivery.subscriber_id == Subscriber.id)
                .where(Delivery.state == "sending",
                       Delivery.claimed_by.like(f"{socket.gethostname()}:{pid}:%"))
            ).scalars())
    finally:
        engine.dispose()


def accepted_steps(standin: SendGridStandIn) -> Counter[tuple[str, str]]:
    with standin.lock:
        return Counter((p["to_email"], p["custom_args"]["step_key"])
                       for p in standin.personalizations)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


# --- 1. concurrency ---------------------------------------------------------------------------


def test_four_workers_send_twenty_thousand_emails_exactly_once(
    pg_url: str, process_env: dict[str, str], tmp_path: Path,
) -> None:
    seed(pg_url, EMAILS)
    started = time.monotonic()
    with SendGridStandIn(api_key=KEY) as standin:
        env = sendgrid_env(process_env, standin, DRIP_BATCH_SIZE="500")
        workers = [start_worker(env, tmp_path / f"worker-{n}.log") for n in range(4)]
        deadline = time.monotonic() + 240
        shares = []
        for worker in workers:
            code = finish(worker, deadline)
            assert code == 0, f"worker {worker.pid} exited {code}:\n{worker.output()[-3000:]}"
            shares.append(json.loads(worker.output())["sent_count"])
        accepted = accepted_steps(standin)
        requests = len(standin.requests)
        standin.assert_no_violations()
    elapsed = time.monotonic() - started
    print(f"\nconcurrency: {EMAILS} emails, {requests} requests, {elapsed:.1f} s; "
          f"sent per worker {shares}")

    assert sum(shares) == EMAILS
    assert sorted(shares)[-2] > 0, "one worker did all the work: nothing ran concurrently"
    assert [key for key, n in accepted.items() if n > 1] == [], "an email went twice"
    assert set(accepted) == {(f"runner{i:07d}@example.com", "week-1")
                             for i in range(1, EMAILS + 1)}
    rows = week_one(pg_url, tmp_path)
    assert Counter((r.step_key, r.state) for r in rows) == {("week-1", "sent"): EMAILS}
    assert {r.email for r in rows} == {email for email, _ in accepted}


def test_several_schedulers_on_one_database_send_each_email_once(
    pg_url: str, process_env: dict[str, str], tmp_path: Path,
) -> None:
    count = 3_000
    seed(pg_url, count)
    with SendGridStandIn(api_key=KEY) as standin:
        env = sendgrid_env(process_env, standin, DRIP_BATCH_SIZE="100",
                           DRIP_TICK_SECONDS="1", DRIP_LOG_LEVEL="INFO")
        schedulers = [start_scheduler(env, tmp_path / f"scheduler-{n}.log") for n in range(3)]
        try:
            wait_for(lambda: len(standin.accepted_emails()) >= count, 120, "every email")
            wait_for(lambda: heartbeats(pg_url) >= 3, 30, "every scheduler to beat")
            time.sleep(2)  # more ticks on an empty queue: nothing may go again
            for scheduler in schedulers:
                scheduler.send_signal(signal.SIGTERM)
            codes = [scheduler.wait(timeout=30) for scheduler in schedulers]
        finally:
            for scheduler in schedulers:
                if scheduler.poll() is None:
                    scheduler.kill()
                    scheduler.wait()
        accepted = accepted_steps(standin)
        standin.assert_no_violations()
    logs = [(tmp_path / f"scheduler-{n}.log").read_text() for n in range(3)]
    shares = [sum(int(n) for n in re.findall(r"pass: sent (\d+)", log)) for log in logs]
    print(f"\nschedulers: {count} emails, sent per scheduler {shares}")
    assert codes == [0, 0, 0], logs
    assert not any("Traceback" in log for log in logs), logs
    assert sum(shares) == count
    assert sorted(shares)[-2] > 0, "one scheduler did all the work"
    assert [key for key, n in accepted.items() if n > 1] == [], "an email went twice"
    assert len(accepted) == count
    rows = week_one(pg_url, tmp_path)
    assert Counter(r.state for r in rows) == {"sent": count}


def heartbeats(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return len(conn.execute(select(Heartbeat.worker)).all())
    finally:
        engine.dispose()


# --- 2. chaos ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kill:
    pid: int
    at: float
    #: Recipients of requests the stand-in had read and not yet answered at the kill.
    unanswered: frozenset[str]
    #: Recipients the killed worker had committed as `sending` (handed, or about to be).
    sending: frozenset[str]


def test_workers_killed_mid_send_never_send_twice_and_leave_only_in_flight_unknowns(
    pg_url: str, process_env: dict[str, str], tmp_path: Path,
) -> None:
    lease = 5
    seed(pg_url, EMAILS)
    rng = random.Random(os.environ.get("DRIP_CHAOS_SEED", "8"))
    started = time.monotonic()
    kills: list[Kill] = []
    with SendGridStandIn(api_key=KEY) as standin:
        # Some answers come late, so that kills land while a batch is in the provider's hands.
        for _ in range(200):
            standin.delay_next(rng.choice((0.0, 0.0, 0.3, 0.8, 1.5)))
        env = sendgrid_env(process_env, standin, DRIP_BATCH_SIZE="200",
                           DRIP_LEASE_SECONDS=str(lease), DRIP_SENDGRID_TIMEOUT="30")
        logs = iter(tmp_path / f"worker-{n}.log" for n in range(100))
        workers = [start_worker(env, next(logs)) for _ in range(3)]
        exited: list[Worker] = []
        deadline = time.monotonic() + 150
        while len(kills) < 8 and time.monotonic() < deadline:
            time.sleep(rng.uniform(1.0, 3.0))
            for worker in [w for w in workers if w.process.poll() is not None]:
                workers.remove(worker)
                exited.append(worker)
            if not workers:
                break
            victim = rng.choice(workers)
            os.kill(victim.pid, signal.SIGKILL)
            victim.process.wait(timeout=10)
            kills.append(Kill(victim.pid, time.monotonic(),
                              frozenset(standin.unanswered_emails()),
                              frozenset(sending_by(pg_url, victim.pid))))
            workers[workers.index(victim)] = start_worker(env, next(logs))
        for worker in workers:
            assert_clean_exit(worker, finish(worker, deadline))
        for worker in exited:
            assert_clean_exit(worker, worker.process.returncode)
        # The dead workers' leases run out; one clean pass reaps them and sends the rest.
        if kills:
            time.sleep(max(kills[-1].at + lease + 1 - time.monotonic(), 0))
        final = start_worker(env, next(logs))
        assert_clean_exit(final, finish(final, time.monotonic() + 120))
        accepted = accepted_steps(standin)
        rows = week_one(pg_url, tmp_path)
        listed = listed_as_unknown(pg_url, tmp_path)
        # Then SendGrid is asked about each batch in doubt (the dead workers recorded their
        # batch keys with `sending`): what it holds is sent, the rest goes once more.
        asked = subprocess.run(
            [sys.executable, "-m", "drip", "reconcile", "--json", "--limit", "1000"],
            cwd=ROOT, env={**env, "DRIP_SENDGRID_SETTLE_SECONDS": "0"}, capture_output=True,
            text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert asked.returncode == 0, asked.stdout + asked.stderr
        resend = start_worker(env, next(logs))
        assert_clean_exit(resend, finish(resend, time.monotonic() + 120))
        accepted_after = accepted_steps(standin)
        standin.assert_no_violations()
    elapsed = time.monotonic() - started

    states = Counter(r.state for r in rows)
    unknown = {r.email for r in rows if r.state == "unknown"}
    unanswered = sum(len(k.unanswered) for k in kills)
    sending = sum(len(k.sending) for k in kills)
    in_flight = frozenset().union(*(k.unanswered | k.sending for k in kills))
    reached = {email for email, _ in accepted}
    print(f"\nchaos: {elapsed:.1f} s, {len(kills)} kills, states {dict(states)} "
          f"({len(unknown & reached)} of the unknown reached the stand-in); in flight at the "
          f"kills: {unanswered} unanswered by the stand-in, {sending} `sending` by the killed "
          f"worker, {len(in_flight)} distinct")

    assert len(kills) >= 3, "the workers finished before the chaos began"
    assert [key for key, n in accepted.items() if n > 1] == [], "a recipient got a step twice"
    assert len(rows) == EMAILS == len({r.email for r in rows})
    assert {r.step_key for r in rows} == {"week-1"}
    assert set(states) <= FINAL_STATES, f"left unfinished: {dict(states)}"
    assert all(r.last_error for r in rows if r.state in ("failed", "unknown"))
    assert len(unknown) <= unanswered + sending
    assert unknown <= in_flight, f"unknown but not in flight: {sorted(unknown - in_flight)[:10]}"
    # What a killed worker had committed as `sending` is exactly what is now unknown.
    assert unknown == frozenset().union(*(k.sending for k in kills))
    assert listed == unknown
    sent = {r.email for r in rows if r.state == "sent"}
    assert sent <= reached, "recorded as sent but never reached SendGrid"
    assert len(sent) + len(unknown) + states["failed"] == EMAILS

    settled = week_one(pg_url, tmp_path)
    print(f"after drip reconcile: states {dict(Counter(r.state for r in settled))}, "
          f"{len(json.loads(asked.stdout))} batches asked about")
    assert [key for key, n in accepted_after.items() if n > 1] == [], "sent twice after asking"
    assert {r.state for r in settled} <= {"sent", "failed"}
    assert listed_as_unknown(pg_url, tmp_path) == set()
    assert {e for e, _ in accepted_after} == {r.email for r in settled if r.state == "sent"}


# --- 3. DB outage -----------------------------------------------------------------------------


def outbox_steps(outbox: Path) -> Counter[tuple[str, str]]:
    """(recipient, step) of every .eml in the outbox; the step is the file name's last part."""
    found: Counter[tuple[str, str]] = Counter()
    for path in outbox.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes())
        address = email.utils.parseaddr(str(message["To"]))[1]
        found[(address, path.stem.split("-", 2)[2])] += 1
    return found


def test_scheduler_rides_out_a_database_outage(
    pg_url: str, process_env: dict[str, str], tmp_path: Path,
) -> None:
    outbox = tmp_path / "outbox"
    before = [f"before{n}@example.com" for n in range(5)]
    during = [f"during{n}@example.com" for n in range(5)]
    target = make_url(pg_url)
    with TcpProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
        proxied = target.set(host="127.0.0.1", port=proxy.port)
        env = {**process_env, "DRIP_TICK_SECONDS": "1",
               "DRIP_DATABASE_URL": proxied.render_as_string(hide_password=False)}
        enroll(pg_url, tmp_path, before)
        log = tmp_path / "scheduler.log"
        scheduler = start_scheduler(env, log)
        try:
            wait_for(lambda: Counter(r.state for r in week_one(pg_url, tmp_path))
                     == {"sent": len(before)}, 60, "the first emails to be sent")
            proxy.cut()
            enroll(pg_url, tmp_path, during)  # due while the scheduler cannot reach its database
            time.sleep(5)
            assert scheduler.poll() is None, log.read_text()
            proxy.restore()
            everyone = len(before) + len(during)
            wait_for(lambda: Counter(r.state for r in week_one(pg_url, tmp_path))
                     == {"sent": everyone}, 60, "the scheduler to catch up")
            time.sleep(3)  # a few more ticks: nothing may go a second time
            assert scheduler.poll() is None, log.read_text()
            scheduler.send_signal(signal.SIGTERM)
            scheduler.wait(timeout=30)
        finally:
            if scheduler.poll() is None:
                scheduler.kill()
                scheduler.wait()
    output = log.read_text()
    print(f"\noutage: {proxy.severed} connections severed, {proxy.refused} refused, "
          f"{output.count('dispatch pass failed')} failed passes logged")
    assert scheduler.returncode == 0, output
    assert proxy.refused > 0, "the scheduler never tried the database during the outage"
    assert "dispatch pass failed" in output and "OperationalError" in output, output
    assert "stopped" in output
    sent = outbox_steps(outbox)
    assert sent == Counter({(address, "week-1"): 1 for address in before + during}), sent


def test_an_outage_while_sendgrid_has_the_batch_never_sends_it_twice(
    pg_url: str, process_env: dict[str, str], tmp_path: Path,
) -> None:
    in_flight = [f"inflight{n}@example.com" for n in range(10)]
    later = [f"later{n}@example.com" for n in range(5)]
    target = make_url(pg_url)
    with SendGridStandIn(api_key=KEY) as standin, \
            TcpProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
        standin.delay_next(4.0)  # SendGrid takes the first batch and answers late
        env = {**process_env, "DRIP_TICK_SECONDS": "1", "DRIP_LEASE_SECONDS": "5",
               "DRIP_BACKEND": "sendgrid", "DRIP_SENDGRID_HOST": standin.url,
               "SENDGRID_API_KEY": KEY, "DRIP_DATABASE_URL": target.set(
                   host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)}
        enroll(pg_url, tmp_path, in_flight)
        log = tmp_path / "scheduler.log"
        scheduler = start_scheduler(env, log)
        try:
            wait_for(lambda: bool(standin.unanswered_emails()), 60, "the batch to reach SendGrid")
            proxy.cut()  # the answer comes while the database is out of reach
            wait_for(lambda: not standin.unanswered_emails(), 30, "SendGrid to answer")
            enroll(pg_url, tmp_path, later)
            time.sleep(3)
            assert scheduler.poll() is None, log.read_text()
            proxy.restore()
            everyone = len(in_flight) + len(later)
            wait_for(lambda: settled(week_one(pg_url, tmp_path)) == everyone, 60,
                     "every email to be settled")
            time.sleep(2)  # a few more ticks: nothing may go a second time
            assert scheduler.poll() is None, log.read_text()
            scheduler.send_signal(signal.SIGTERM)
            scheduler.wait(timeout=30)
        finally:
            if scheduler.poll() is None:
                scheduler.kill()
                scheduler.wait()
        accepted = accepted_steps(standin)
        standin.assert_no_violations()
    output = log.read_text()
    rows = {r.email: r for r in week_one(pg_url, tmp_path)}
    print(f"\noutage mid-send: {dict(Counter(r.state for r in rows.values()))}, "
          f"{proxy.refused} connections refused")
    assert scheduler.returncode == 0, output
    assert "dispatch pass failed" in output, output
    assert accepted == Counter({(a, "week-1"): 1 for a in in_flight + later}), accepted
    # SendGrid took the batch, but drip could not write that down: it may call them sent
    # or unknown (with the reason), never send them again.
    assert all(rows[a].state == "sent" or (rows[a].state == "unknown" and rows[a].last_error)
               for a in in_flight), [(a, rows[a].state) for a in in_flight]
    assert all(rows[a].state == "sent" for a in later)


def settled(rows: list[DeliveryRow]) -> int:
    return sum(1 for r in rows if r.state in FINAL_STATES)


def test_started_while_the_database_is_down_says_so_in_one_sentence(
    pg_url: str, process_env: dict[str, str], tmp_path: Path,
) -> None:
    target = make_url(pg_url)
    with TcpProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
        proxy.cut()
        env = {**process_env, "DRIP_TICK_SECONDS": "1", "DRIP_DATABASE_URL": target.set(
            host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)}
        results = [subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=60, stdin=subprocess.DEVNULL)
                   for command in ([sys.executable, "scheduler.py"],
                                   [sys.executable, "-m", "drip", "dispatch"])]
    for result in results:
        output = result.stdout + result.stderr
        assert result.returncode == 5, output  # EXIT_CONFIG: configuration or database
        assert "Traceback" not in output, output
        assert "Could not reach the database" in output, output
        assert f":{proxy.port}/" in output, output  # which database, to check the setting

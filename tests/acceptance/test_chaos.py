"""Settled delivery under chaos, on PostgreSQL (issue 18): 3 `python scheduler.py` workers
SIGKILLed at random and restarted, a SendGrid stand-in that misbehaves on 20% of the
requests (429, 5xx, a reset, a late answer, no answer with and without taking the mail),
connections to it refused now and then, and its Event Webhook posting signed `delivered`
events to `drip serve`, late and sometimes not at all.

At the end no recipient got a step twice; every email is `sent` or `failed` with a reason;
with DRIP_SENDGRID_ACTIVITY=1 (its API itself answering 429 and 5xx at times) nothing is
left unknown once the settle delay has passed, and `drip sends --state unknown` lists
nothing; with it off, an email is unknown only where no event about it arrived.

DRIP_CHAOS_EMAILS sets the size (default 3,000; the issue's full run is 20,000) and
DRIP_CHAOS_SEED the randomness.
"""

from __future__ import annotations

import base64
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.acceptance.test_scale_out import (
    accepted_steps,
    listed_as_unknown,
    pg_url,  # noqa: F401  (a fixture)
    seed,
    sendgrid_env,
    start_scheduler,
    wait_for,
    week_one,
)
from tests.conftest import ROOT
from tests.support.loopback import free_port
from tests.support.sendgrid_standin import SendGridStandIn
from tests.support.tcp_proxy import TcpProxy

EMAILS = int(os.environ.get("DRIP_CHAOS_EMAILS", "3000"))
SEED = os.environ.get("DRIP_CHAOS_SEED", "18")
WORKERS = 3
KILLS = 6
DOOR_CLOSURES = 2
#: Sends per second, all workers together: the sending lasts about 20 s whatever the size,
#: so the kills and faults fall while it goes on.
RATE = max(EMAILS // 20, 100)
SETTLE = 2  # DRIP_SENDGRID_SETTLE_SECONDS


def start_web(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`drip serve` on a free port, for the stand-in's events; its URL once it answers."""
    port = free_port()
    with log.open("wb") as handle:
        process = subprocess.Popen([sys.executable, "-m", "drip", "serve", "--port", str(port)],
                                   cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(url + "/", timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    wait_for(up, 60, "drip serve")
    return process, url


def stop(processes: list[subprocess.Popen[bytes]]) -> list[int]:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    codes = []
    for process in processes:
        try:
            codes.append(process.wait(timeout=60))
        except subprocess.TimeoutExpired:
            process.kill()
            codes.append(process.wait())
    return codes


@pytest.mark.parametrize("activity", [True, False], ids=["activity-api", "events-only"])
def test_chaos_settles_every_email_and_sends_none_twice(
    pg_url: str, process_env: dict[str, str], tmp_path: Path,  # noqa: F811
    activity: bool,
) -> None:
    rng = random.Random(f"{SEED}-{activity}")
    seed(pg_url, EMAILS)
    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    started = time.monotonic()
    kills = door_closed = 0
    with SendGridStandIn() as standin, TcpProxy("127.0.0.1", standin.port) as door:
        env = sendgrid_env(process_env, standin, DRIP_BATCH_SIZE="25",
                           DRIP_MAX_PER_SECOND=str(RATE),
                           DRIP_TICK_SECONDS="1", DRIP_LEASE_SECONDS="8",
                           DRIP_SENDGRID_TIMEOUT="2",
                           DRIP_SENDGRID_HOST=f"http://127.0.0.1:{door.port}",
                           DRIP_SENDGRID_ACTIVITY="1" if activity else "0",
                           DRIP_SENDGRID_SETTLE_SECONDS=str(SETTLE),
                           DRIP_SENDGRID_ACTIVITY_PER_MINUTE="600",
                           # the circuit opens as it should; its first wait is cut short
                           DRIP_CIRCUIT_WAIT_SECONDS="2",
                           DRIP_SENDGRID_WEBHOOK_PUBLIC_KEY=public)
        web, web_url = start_web(env, tmp_path / "web.log")
        standin.chaos(0.2, activity=0.3 if activity else 0.0, seed=f"{SEED}-{activity}")
        standin.fail_activity_next(429)  # the first questions about a batch in doubt fail
        standin.fail_activity_next(503)
        standin.emit_events(web_url + "/hooks/sendgrid", key, loss=0.05, max_delay=2.0)
        logs = iter(tmp_path / f"scheduler-{n}.log" for n in range(100))
        workers = [start_scheduler(env, next(logs)) for _ in range(WORKERS)]
        born = [time.monotonic()] * WORKERS
        try:
            wait_for(lambda: len(standin.accepted_emails()) > 0, 60, "the first sends")
            # chaos while the emails go: a worker that has been up a few seconds (a new
            # one needs that long to start sending) SIGKILLed every 1.5-3.5 s and started
            # again, up to KILLS times; the door to SendGrid shut now and then
            deadline = time.monotonic() + 180
            while len(standin.accepted_emails()) < EMAILS and time.monotonic() < deadline:
                time.sleep(rng.uniform(1.5, 3.5))
                ripe = [n for n in range(WORKERS) if time.monotonic() - born[n] > 4]
                if kills < KILLS and ripe:
                    victim = rng.choice(ripe)
                    workers[victim].kill()
                    workers[victim].wait(timeout=10)
                    kills += 1
                    workers[victim] = start_scheduler(env, next(logs))
                    born[victim] = time.monotonic()
                if door_closed < DOOR_CLOSURES and rng.random() < 0.3:
                    door.refuse()  # connecting is refused (each costs the circuit a wait)
                    door_closed += 1
                    time.sleep(0.3)
                    door.listen()
            chaos_seconds = time.monotonic() - started
            standin.chaos(0.0, activity=0.3 if activity else 0.0, seed=SEED)

            def settled() -> bool:
                states = Counter(r.state for r in week_one(pg_url, tmp_path))
                done = {"sent", "failed"} if activity else {"sent", "failed", "unknown"}
                return set(states) <= done and standin.events_pending() == 0

            wait_for(settled, 240, "every email to settle")
            time.sleep(2 * SETTLE + 2)  # more ticks: nothing may go again
            codes = stop(workers)
            stop([web])
        finally:
            stop([*workers, web])
        accepted = accepted_steps(standin)
        hits = dict(standin.chaos_hits)
        posts = standin.posts
        delivered = standin.events_delivered()
        lost = standin.events_lost()
        asked = len(standin.activity_queries)
        standin.assert_no_violations()
    elapsed = time.monotonic() - started
    rows = week_one(pg_url, tmp_path)
    states = Counter(r.state for r in rows)
    listed = listed_as_unknown(pg_url, tmp_path)
    logs_text = [p.read_text(errors="replace") for p in sorted(tmp_path.glob("scheduler-*.log"))]
    print(f"\nchaos ({'activity API' if activity else 'events only'}): {EMAILS} emails, "
          f"{elapsed:.1f} s ({chaos_seconds:.1f} s of kills), {kills} kills, door shut "
          f"{door_closed} times, {posts} requests, faults {hits}, {len(delivered)} events "
          f"delivered, {len(lost)} lost, {asked} activity queries, states {dict(states)}")

    assert codes == [0] * WORKERS, codes
    assert not any("Traceback" in text for text in logs_text)
    assert kills >= 3, "the workers finished before the chaos began"
    assert sum(n for fault, n in hits.items() if not fault.startswith("activity")) > 0
    assert [k for k, n in accepted.items() if n > 1] == [], "a recipient got a step twice"
    assert len(rows) == EMAILS == len({r.email for r in rows})
    assert all(r.last_error for r in rows if r.state == "failed")
    sent = {r.email for r in rows if r.state == "sent"}
    assert sent <= {email for email, _ in accepted}, "recorded as sent, never taken"
    unknown = {r.email for r in rows if r.state == "unknown"}
    assert listed == unknown
    if activity:
        assert asked >= 3, "the activity API was asked too little to have failed"
        assert set(states) <= {"sent", "failed"}, dict(states)
        assert listed == set()
    else:
        assert set(states) <= {"sent", "failed", "unknown"}
        heard = {email for email, _ in delivered}
        assert not unknown & heard, "unknown although its event arrived"
        taken = {email for email, _ in accepted}
        assert unknown <= {email for email, _ in lost} | (
            {r.email for r in rows} - taken), "unknown, though neither lost nor untaken"

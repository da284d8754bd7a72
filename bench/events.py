"""SendGrid event burst: N signed events in ONE POST to a real `drip serve` on loopback.

    python bench/events.py [--events 10000] [--db sqlite|postgresql]

Seeds N subscribers with a sent week-1 email (a tenth of them `unknown`), then posts N
events (delivered, processed, open, click and 1% hard bounces) matched to those deliveries
through drip's custom_args, signed with a P-256 key made here. Prints the events per second
of the first POST (everything new) and of a replay of the same POST (everything a duplicate).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dispatch import fresh_database  # noqa: E402
from bench.seed import seed_due  # noqa: E402
from drip.db import make_engine, upgrade  # noqa: E402

KINDS = ("delivered", "processed", "delivered", "open", "delivered", "click", "processed",
         "open", "delivered", "processed")


def events(count: int, at: int) -> list[dict[str, Any]]:
    out = []
    for i in range(1, count + 1):
        kind = "bounce" if i % 100 == 0 else KINDS[i % len(KINDS)]
        item: dict[str, Any] = {
            "email": f"runner{i:07d}@example.com", "timestamp": at, "event": kind,
            "sg_event_id": f"bench-{i}-{kind}", "sg_message_id": f"msg{i // 1000}.filter01",
            "delivery_id": str(i), "enrollment_id": str(i), "step_key": "week-1",
            "category": ["pht-7-week", "pht-7-week:week-1"], "smtp-id": f"<{i}@drip>",
        }
        if kind == "bounce":
            item.update({"type": "bounce", "reason": "550 5.1.1 The email account does not "
                         "exist", "status": "5.1.1", "bounce_classification": "Invalid Address"})
        if kind in ("open", "click"):
            item.update({"useragent": "Mozilla/5.0 (iPhone)", "ip": "203.0.113.9"})
        if kind == "click":
            item["url"] = "https://www.example.com/running-workshop"
        out.append(item)
    return out


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    with tempfile.TemporaryDirectory(prefix="drip-bench-events-") as workdir:
        url, cleanup = fresh_database(args.db, Path(workdir))
        engine = make_engine(url)
        upgrade(engine)
        seed_due(engine, args.events, datetime.now(UTC))
        with engine.begin() as conn:
            conn.execute(text("UPDATE deliveries SET state = CASE WHEN id % 10 = 0 "
                              "THEN 'unknown' ELSE 'sent' END, sent_at = due_at"))
        engine.dispose()
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
        env.update({"DRIP_DATABASE_URL": url, "DRIP_VAR_DIR": str(Path(workdir) / "var"),
                    "DRIP_SECRET_KEY": "bench", "DRIP_SENDGRID_WEBHOOK_PUBLIC_KEY": public,
                    "DRIP_LOG_LEVEL": "WARNING"})
        server = subprocess.Popen([sys.executable, "-m", "drip", "serve", "--port", str(port)],
                                  cwd=ROOT, env=env, stdin=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            body = json.dumps(events(args.events, int(time.time()))).encode()
            for label in ("new", "replayed"):
                stamp = str(int(time.time()))
                signature = base64.b64encode(key.sign(stamp.encode() + body,
                                                      ec.ECDSA(hashes.SHA256()))).decode()
                started = time.perf_counter()
                answer = httpx.post(f"{base}/hooks/sendgrid", content=body, timeout=300, headers={
                    "Content-Type": "application/json",
                    "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
                    "X-Twilio-Email-Event-Webhook-Signature": signature})
                elapsed = time.perf_counter() - started
                assert answer.status_code == 200, answer.text
                print(f"{args.db}: {args.events} events ({len(body) / 1024:.0f} KiB) {label}: "
                      f"{elapsed:.2f} s, {args.events / elapsed:,.0f} events/s  "
                      f"{answer.json()}")
        finally:
            server.terminate()
            server.wait(timeout=30)
            if cleanup is not None:
                admin, name = cleanup  # type: ignore[misc]
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()

"""One whole path through `drip serve` (real uvicorn on loopback) and the real dispatcher:
opt-in -> confirmation .eml -> confirm -> enrolled -> week 1 sent -> one-click unsubscribe
-> the next dispatch sends that subscriber nothing."""

from __future__ import annotations

import email
import email.policy
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from drip.clock import FixedClock
from drip.runtime import Drip
from tests.conftest import ROOT, make_settings

SECRET = "server-test-secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[str]:
    with drip_serve(tmp_path, database_url) as base:
        yield base


@contextmanager
def drip_serve(tmp_path: Path, database_url: str, **extra: str) -> Iterator[str]:
    """The real `drip serve` command as a process on loopback, with DRIP_* `extra`."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
    env.update({"DRIP_DATABASE_URL": database_url, "DRIP_VAR_DIR": str(tmp_path / "var"),
                "DRIP_OUTBOX_DIR": str(tmp_path / "outbox"), "DRIP_SECRET_KEY": SECRET,
                "DRIP_SEQUENCES_DIR": str(ROOT / "sequences"),
                "DRIP_TEMPLATES_DIR": str(ROOT / "templates"), "DRIP_BASE_URL": base,
                "DRIP_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1", **extra})
    process = subprocess.Popen([sys.executable, "-m", "drip", "serve", "--port", str(port)],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"drip serve exited: {output}")
            time.sleep(0.1)
        else:
            pytest.fail("drip serve did not start listening")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
        if process.stdout:
            process.stdout.close()


def read(path: Path) -> email.message.EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def test_opt_in_to_one_click_unsubscribe_through_a_real_server(
        server: str, tmp_path: Path, database_url: str) -> None:
    outbox = tmp_path / "outbox"
    with httpx.Client(base_url=server, timeout=30) as web:
        answer = web.post("/subscribe", data={"email": "gil@example.com", "name": "Gil",
                                              "sequence": "pht-7-week", "timezone": "UTC"})
        assert answer.status_code == 200 and "Check your inbox" in answer.text
        (confirmation,) = outbox.glob("*.eml")
        body = read(confirmation).get_body(("plain",)).get_content()  # type: ignore[union-attr]
        (link,) = re.findall(re.escape(server) + r"/confirm/\S+", body)
        assert web.get(link).status_code == 200
        confirmed = web.post(link)
        assert confirmed.status_code == 200 and "You are in" in confirmed.text

        settings = make_settings(tmp_path, database_url, secret_key=SECRET, base_url=server,
                                 outbox_dir=outbox)
        clock = FixedClock(datetime.now(UTC))
        drip = Drip.from_settings(settings, clock)
        try:
            (due,) = drip.store.deliveries(email="gil@example.com")
            clock.at = due.due_at + timedelta(minutes=1)
            report = drip.dispatcher().run_once()
            assert [(s.email, s.step_key) for s in report.sent] == [("gil@example.com",
                                                                     "week-1")]
            (week_one,) = [p for p in outbox.glob("*.eml") if p.name.endswith("-week-1.eml")]
            message = read(week_one)
            assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            unsubscribe = str(message["List-Unsubscribe"]).strip("<>")
            assert unsubscribe.startswith(f"{server}/u/")
            one_click = web.post(unsubscribe, content=b"List-Unsubscribe=One-Click",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert one_click.status_code == 200 and one_click.content == b""

            for _ in range(10):  # ten weeks of dispatch passes: nothing more for Gil
                clock.advance(days=7)
                assert drip.dispatcher().run_once().sent == []
            assert drip.store.subscriber_by_email("gil@example.com").state == "unsubscribed"
        finally:
            drip.close()


@pytest.mark.parametrize("trusted", ["", "127.0.0.1"])
def test_x_forwarded_for_counts_only_from_a_trusted_proxy(tmp_path: Path, database_url: str,
                                                          trusted: str) -> None:
    """Rotating X-Forwarded-For from loopback got past the opt-in rate limit: uvicorn
    believed 127.0.0.1. Now only DRIP_TRUSTED_PROXIES are believed (none by default)."""
    extra = {"DRIP_SUBSCRIBE_LIMIT": "2"}
    if trusted:
        extra["DRIP_TRUSTED_PROXIES"] = trusted
    with drip_serve(tmp_path, database_url, **extra) as base:
        answers = [httpx.post(f"{base}/subscribe", headers={"X-Forwarded-For": f"203.0.113.{n}"},
                              data={"email": f"r{n}@example.com", "sequence": "pht-7-week",
                                    "timezone": "UTC"},
                              timeout=30).status_code for n in range(3)]
    assert answers == ([200, 200, 200] if trusted else [200, 200, 429])

"""SMTP delivery against a real aiosmtpd server on loopback: AUTH, a few connections per worker."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from drip.clock import FixedClock
from drip.runtime import Drip
from drip.subscriptions import enroll
from tests.conftest import FIXTURES, make_settings


class Sink:
    """Keeps every message and counts the SMTP sessions it saw."""

    def __init__(self, refuse: str | None = None) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.sessions: set[int] = set()
        self.refuse = refuse
        self.lock = threading.Lock()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: Any) -> str:
        if self.refuse and address == self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)  # type: ignore[arg-type]
            self.sessions.add(id(session))
        return "250 Message accepted for delivery"


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                  auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"coach", b"s3cret")
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    handler = Sink(refuse="bounce@example.com")
    with socket.socket() as probe:  # aiosmtpd needs a real port number up front
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port,
                            authenticator=authenticator, auth_require_tls=False)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def smtp_drip(tmp_path: Path, database_url: str, clock: FixedClock, port: int,
              password: str = "s3cret") -> Drip:
    settings = make_settings(
        tmp_path, database_url, backend="smtp", smtp_host="127.0.0.1", smtp_port=port,
        smtp_user="coach", smtp_password=password, smtp_tls="none",
        sequences_dir=FIXTURES / "basic" / "sequences",
        templates_dir=FIXTURES / "basic" / "templates",
    )
    return Drip.from_settings(settings, clock)


def test_smtp_sends_a_batch_over_a_few_connections(tmp_path: Path, database_url: str,
                                                clock: FixedClock,
                                                sink: tuple[Sink, int]) -> None:
    handler, port = sink
    drip = smtp_drip(tmp_path, database_url, clock, port)
    addresses = [f"runner{n}@example.com" for n in range(5)] + ["bounce@example.com"]
    for address in addresses:
        enroll(drip.store, drip.library, email=address, sequence_key="basic", now=clock.now())
    report = drip.dispatcher().run_once()
    assert len(report.sent) == 5 and report.failed == 1
    assert 1 <= len(handler.sessions) <= 4  # DRIP_SMTP_CONNECTIONS, 4 by default
    received = sorted(str(m["To"]) for m in handler.messages)
    assert received == sorted(addresses[:5])
    for message in handler.messages:
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message.get_body(("plain",)) is not None
        assert message.get_body(("html",)) is not None
    (failed,) = [r for r in drip.store.deliveries() if r.state == "failed"]
    assert failed.email == "bounce@example.com" and "550" in (failed.last_error or "")
    drip.close()


def test_a_refused_login_halts_sending(tmp_path: Path, database_url: str, clock: FixedClock,
                                       sink: tuple[Sink, int]) -> None:
    handler, port = sink
    drip = smtp_drip(tmp_path, database_url, clock, port, password="wrong")
    enroll(drip.store, drip.library, email="runner@example.com", sequence_key="basic",
           now=clock.now())
    report = drip.dispatcher().run_once()
    assert report.halted and "refused the login" in report.halted
    assert handler.messages == []
    assert [r.state for r in drip.store.deliveries()] == ["scheduled"]
    drip.close()

"""An SMTP sink on loopback (aiosmtpd) that keeps what it is sent and misbehaves on request.

It can refuse some recipients (550 at RCPT), drop the connection after an email's content
(mid-DATA: before it answers), never answer an email's DATA (a timeout), wait before each
answer to DATA (a relay's latency) and offer PIPELINING. In a test it runs in a thread
(`SmtpSink.start`); for a benchmark, as its own process, so its CPU is not drip's:

    python -m tests.support.smtp_sink --port 0 [--latency-ms 50] [--pipelining] [--discard]

prints "listening on 127.0.0.1:PORT" and, when terminated, one JSON line of counts.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import json
import signal
import socket
import threading
from collections.abc import Iterable
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpSink:
    """The aiosmtpd handler: what it took, from how many connections."""

    def __init__(self, *, refuse: Iterable[str] = (), drop: Iterable[str] = (),
                 stall: Iterable[str] = (), latency: float = 0.0, pipelining: bool = False,
                 discard: bool = False) -> None:
        self.refuse, self.drop, self.stall = set(refuse), set(drop), set(stall)
        self.latency = latency
        self.pipelining = pipelining
        self.discard = discard  # a benchmark keeps counts only
        self.raw: list[bytes] = []
        self.sessions: set[int] = set()
        self.accepted = 0
        self.dropped = 0
        self.lock = threading.Lock()
        self.controller: Controller | None = None
        self.port = 0

    @property
    def messages(self) -> list[EmailMessage]:
        return [email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[misc]
                for raw in self.raw]

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: Any) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        recipient = envelope.rcpt_tos[0] if envelope.rcpt_tos else ""
        if recipient in self.drop:
            with self.lock:
                self.dropped += 1
            server.transport.abort()  # the content arrived; the answer never will
            return "250 never seen"
        if recipient in self.stall:
            await asyncio.sleep(3600)
        if self.latency:
            await asyncio.sleep(self.latency)
        with self.lock:
            self.accepted += 1
            self.sessions.add(id(session))
            if not self.discard:
                self.raw.append(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"

    def start(self, *, login: tuple[str, str] | None = None, port: int = 0) -> SmtpSink:
        self.port = port or free_port()  # aiosmtpd needs a real port number up front

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                          auth_data: Any) -> AuthResult:
            ok = isinstance(auth_data, LoginPassword) and login is not None and (
                auth_data.login.decode(), auth_data.password.decode()) == login
            return AuthResult(success=ok, handled=False)

        self.controller = Controller(self, hostname="127.0.0.1", port=self.port,
                                     authenticator=authenticator if login else None,
                                     auth_require_tls=False, decode_data=False)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()

    def counts(self) -> dict[str, int]:
        return {"accepted": self.accepted, "connections": len(self.sessions),
                "dropped": self.dropped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--pipelining", action="store_true")
    parser.add_argument("--discard", action="store_true", help="keep counts, not messages")
    args = parser.parse_args()
    sink = SmtpSink(latency=args.latency_ms / 1000, pipelining=args.pipelining,
                    discard=args.discard).start(port=args.port)
    print(f"listening on 127.0.0.1:{sink.port}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    sink.stop()
    print(json.dumps(sink.counts()), flush=True)


if __name__ == "__main__":
    main()

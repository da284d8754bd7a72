"""Any SMTP server (a provider's relay, Mailpit, a local sink): STARTTLS or implicit TLS, AUTH,
and DRIP_SMTP_CONNECTIONS connections per worker, kept open from batch to batch.

A relay takes 20-200 ms to answer each message, so one connection caps a worker at a few
dozen emails a second: a batch is shared out over several connections at once, each
taking the next email as it is free, with the envelope pipelined (RFC 2920) where the
server offers it. What became of each email is judged by how far it got: refused or cut
off before its content went out, it was not sent (refused, or tried again later); cut
off after, the server may have queued it, so it is `unknown`.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from drip.errors import InvalidInput, SendingHalted
from drip.message import Message
from drip.mime import MimeWriter, Wire
from drip.providers.base import SendResult, Verdict

if TYPE_CHECKING:
    import ssl

_LEADING_DOT = re.compile(rb"(?m)^\.")
#: Reconnects one connection makes in a batch after being cut off before an email's content.
RECONNECTS = 1


class _CutOff(Exception):
    """The connection broke; `sent` says whether the email's content had gone out."""

    def __init__(self, reason: str, *, sent: bool) -> None:
        super().__init__(reason)
        self.sent = sent


class _Batch:
    """One batch's emails, taken one at a time by the connections sending it."""

    def __init__(self, jobs: list[tuple[Message, Wire]]) -> None:
        self._jobs = deque(jobs)
        self._lock = threading.Lock()
        self.results: list[SendResult] = []
        self.halted: SendingHalted | None = None
        #: Why the last connection that gave up did (for the emails left over).
        self.trouble = ""

    def take(self) -> tuple[Message, Wire] | None:
        with self._lock:
            if self.halted is not None or not self._jobs:
                return None
            return self._jobs.popleft()

    def put_back(self, job: tuple[Message, Wire]) -> None:
        with self._lock:
            self._jobs.appendleft(job)

    def answer(self, result: SendResult) -> None:
        with self._lock:
            self.results.append(result)

    def left_over(self) -> list[Message]:
        with self._lock:
            left = [message for message, _ in self._jobs]
            self._jobs.clear()
            return left


class SMTPProvider:
    name = "smtp"

    def __init__(self, *, host: str, port: int, user: str = "", password: str = "",
                 tls: Literal["starttls", "ssl", "none"] = "starttls", timeout: float = 30.0,
                 connections: int = 4, now: Callable[[], datetime]) -> None:
        self.host, self.port, self.user, self.password = host, port, user, password
        self.tls = tls
        self.timeout = timeout
        self.connections = max(1, connections)
        self._now = now
        self._writer = MimeWriter()
        self._idle: list[smtplib.SMTP] = []
        self._idle_lock = threading.Lock()
        self._lanes: ThreadPoolExecutor | None = None
        self._context: ssl.SSLContext | None = None

    def close(self) -> None:
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for server in idle:
            _quit(server)
        if self._lanes is not None:
            self._lanes.shutdown(wait=True)
            self._lanes = None

    # --- connections ---------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        if self._context is None:  # built once, and only when TLS is on
            import ssl

            self._context = ssl.create_default_context()
        return self._context

    def _connect(self) -> smtplib.SMTP:
        server: smtplib.SMTP
        if self.tls == "ssl":
            server = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                      context=self._ssl_context())
        else:
            server = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.tls == "starttls":
                server.starttls(context=self._ssl_context())
        if self.user:
            try:
                server.login(self.user, self.password)
            except smtplib.SMTPAuthenticationError as exc:
                server.close()
                raise SendingHalted(f"The SMTP server refused the login for {self.user}: "
                                    f"{exc.smtp_error!r}") from None
        server.ehlo_or_helo_if_needed()
        return server

    def _checkout(self) -> tuple[smtplib.SMTP, bool]:
        """An open connection (reused if one is idle, so possibly closed by the server
        meanwhile) and whether it was reused."""
        with self._idle_lock:
            if self._idle:
                return self._idle.pop(), True
        return self._connect(), False

    def _checkin(self, server: smtplib.SMTP) -> None:
        with self._idle_lock:
            if len(self._idle) < self.connections:
                self._idle.append(server)
                return
        _quit(server)

    # --- a batch ---------------------------------------------------------------------------

    def send_batch(self, messages: Sequence[Message]) -> list[SendResult]:
        sent_at = self._now()
        jobs: list[tuple[Message, Wire]] = []
        unwritable: list[SendResult] = []
        for message in messages:
            try:
                jobs.append((message, self._writer.write(message, sent_at=sent_at)))
            except InvalidInput as exc:  # this email alone: the rest of the batch goes
                unwritable.append(SendResult(message.delivery_id, "permanent", reason=str(exc)))
        batch = _Batch(jobs)
        batch.results.extend(unwritable)
        lanes = min(self.connections, len(jobs))
        if lanes == 1:
            self._lane(batch)
        elif lanes > 1:
            if self._lanes is None:
                self._lanes = ThreadPoolExecutor(self.connections,
                                                 thread_name_prefix="drip-smtp")
            for lane in [self._lanes.submit(self._lane, batch) for _ in range(lanes)]:
                lane.result()
        left = batch.left_over()
        batch.results.extend(
            SendResult(m.delivery_id, "transient", reason=f"not attempted: {batch.trouble}")
            for m in left)
        order = {m.delivery_id: index for index, m in enumerate(messages)}
        results = sorted(batch.results, key=lambda r: order[r.delivery_id])
        if batch.halted is not None:
            batch.halted.answered = [r for r in results
                                     if r.delivery_id not in {m.delivery_id for m in left}]
            raise batch.halted
        return results

    def _lane(self, batch: _Batch) -> None:
        """One connection's share of a batch: take the next email until none is left, or
        the connection cannot be had; the emails it leaves are sent by the others."""
        reconnects = 0
        server: smtplib.SMTP | None = None
        while True:
            if server is None:
                try:
                    server, reused = self._checkout()
                except SendingHalted as exc:
                    batch.halted = exc
                    return
                except (OSError, smtplib.SMTPException) as exc:
                    batch.trouble = f"Cannot connect to {self.host}:{self.port}: {exc}"
                    return
            job = batch.take()
            if job is None:
                self._checkin(server)
                return
            message, wire = job
            try:
                verdict, reason, close = _transaction(server, message, wire, self.host)
            except _CutOff as exc:
                _drop(server)
                server = None
                if exc.sent:  # the server may have queued it before the line dropped
                    batch.answer(SendResult(message.delivery_id, "unknown",
                                            reason=f"The connection dropped: {exc}"))
                else:  # its content never went: another connection, or a new one, sends it
                    batch.put_back(job)
                    batch.trouble = f"the connection dropped: {exc}"
                    if not reused:
                        reconnects += 1
                    if reconnects > RECONNECTS:
                        return
                continue
            reused = True
            if verdict == "accepted":
                batch.answer(SendResult(message.delivery_id, "accepted",
                                        message_id=wire.message_id))
            else:
                batch.answer(SendResult(message.delivery_id, verdict, reason=reason))
            if close:
                _drop(server)
                server = None


def _transaction(server: smtplib.SMTP, message: Message, wire: Wire, host: str
                 ) -> tuple[Verdict, str | None, bool]:
    """Send one email: its verdict, the server's reason for a refusal, and whether the
    connection must be closed. _CutOff if the connection broke."""
    options = []
    if server.has_extn("size"):
        options.append(f"SIZE={len(wire.data)}")
    if server.has_extn("8bitmime"):
        options.append("BODY=8BITMIME")
    if wire.smtputf8:
        if not server.has_extn("smtputf8"):
            return ("permanent", f"The server at {host} takes no address outside ASCII (no "
                    "SMTPUTF8), so this email cannot be sent through it.", False)
        options.append("SMTPUTF8")
    sender = smtplib.quoteaddr(message.from_email)
    recipient = smtplib.quoteaddr(message.to_email)
    mail_from = f"MAIL FROM:{sender}{''.join(' ' + o for o in options)}\r\n"
    rcpt_to = f"RCPT TO:{recipient}\r\n"
    try:
        if server.has_extn("pipelining"):
            server.send(f"{mail_from}{rcpt_to}DATA\r\n".encode())
            mail, rcpt, data = server.getreply(), server.getreply(), server.getreply()
        else:
            server.send(mail_from.encode())
            mail = server.getreply()
            rcpt = data = (0, b"")
            if mail[0] == 250:
                server.send(rcpt_to.encode())
                rcpt = server.getreply()
                if rcpt[0] in (250, 251):
                    server.send(b"DATA\r\n")
                    data = server.getreply()
    except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
        raise _CutOff(str(exc) or type(exc).__name__, sent=False) from None
    refusal: tuple[int, bytes, str] | None = None
    if mail[0] != 250:
        refusal = (*mail, "")
    elif rcpt[0] not in (250, 251):
        refusal = (*rcpt, f"{message.to_email}: ")
    if refusal is None and data[0] != 354:
        refusal = (*data, "")
    try:
        if refusal is None:
            server.send(_LEADING_DOT.sub(b"..", wire.data) + b".\r\n")
        elif data[0] == 354:  # a server that took DATA after refusing the recipient
            server.send(b".\r\n")
            server.getreply()
    except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
        raise _CutOff(str(exc) or type(exc).__name__, sent=refusal is None) from None
    if refusal is not None:
        code, text, prefix = refusal
        if code == 421:  # the server is closing the connection
            return "transient", f"{prefix}{code} {text!r}", True
        try:
            server.rset()
        except (smtplib.SMTPException, OSError):
            return _verdict(code), f"{prefix}{code} {text!r}", True
        return _verdict(code), f"{prefix}{code} {text!r}", False
    try:
        code, text = server.getreply()
    except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
        raise _CutOff(str(exc) or type(exc).__name__, sent=True) from None
    if code == 250:
        return "accepted", None, False
    return _verdict(code), f"{code} {text!r}", code == 421


def _verdict(code: int) -> Verdict:
    return "permanent" if 500 <= code < 600 else "transient"


def _drop(server: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        server.close()


def _quit(server: smtplib.SMTP) -> None:
    try:
        server.quit()
    except (smtplib.SMTPException, OSError):
        _drop(server)

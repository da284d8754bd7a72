"""Any SMTP server (a provider's relay, Mailpit, a local sink): STARTTLS or implicit TLS, AUTH,
and one reused connection per batch."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal

from drip.errors import InvalidInput, SendingHalted
from drip.message import Message, to_mime
from drip.providers.base import SendResult, Verdict


class SMTPProvider:
    name = "smtp"

    def __init__(self, *, host: str, port: int, user: str = "", password: str = "",
                 tls: Literal["starttls", "ssl", "none"] = "starttls", timeout: float = 30.0,
                 now: Callable[[], datetime]) -> None:
        self.host, self.port, self.user, self.password = host, port, user, password
        self.tls = tls
        self.timeout = timeout
        self._now = now

    def close(self) -> None:
        return None

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        server: smtplib.SMTP
        if self.tls == "ssl":
            server = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                      context=context)
        else:
            server = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.tls == "starttls":
                server.starttls(context=context)
        if self.user:
            try:
                server.login(self.user, self.password)
            except smtplib.SMTPAuthenticationError as exc:
                server.close()
                raise SendingHalted(f"The SMTP server refused the login for {self.user}: "
                                    f"{exc.smtp_error!r}") from None
        return server

    def send_batch(self, messages: Sequence[Message]) -> list[SendResult]:
        try:
            server = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            return [SendResult(m.delivery_id, "transient",
                               reason=f"Cannot connect to {self.host}:{self.port}: {exc}")
                    for m in messages]
        results: list[SendResult] = []
        try:
            for index, message in enumerate(messages):
                try:
                    mime = to_mime(message, sent_at=self._now())
                except InvalidInput as exc:  # this email alone: the rest of the batch goes
                    results.append(SendResult(message.delivery_id, "permanent",
                                              reason=str(exc)))
                    continue
                try:
                    refused = server.send_message(mime)
                except smtplib.SMTPRecipientsRefused as exc:
                    reason = "; ".join(f"{k}: {v[0]} {v[1]!r}" for k, v in exc.recipients.items())
                    results.append(SendResult(message.delivery_id, "permanent", reason=reason))
                    continue
                except smtplib.SMTPResponseException as exc:
                    verdict: Verdict = "permanent" if 500 <= exc.smtp_code < 600 else "transient"
                    results.append(SendResult(message.delivery_id, verdict,
                                              reason=f"{exc.smtp_code} {exc.smtp_error!r}"))
                    continue
                except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
                    # The server may have queued this one before the line dropped.
                    results.append(SendResult(message.delivery_id, "unknown",
                                              reason=f"The connection dropped: {exc}"))
                    results.extend(SendResult(m.delivery_id, "transient",
                                              reason="not attempted: the connection dropped")
                                   for m in messages[index + 1:])
                    return results
                if refused:
                    results.append(SendResult(message.delivery_id, "permanent",
                                              reason=str(refused)))
                else:
                    results.append(SendResult(message.delivery_id, "accepted",
                                              message_id=str(mime["Message-ID"])))
        finally:
            try:
                server.quit()
            except (smtplib.SMTPException, OSError):
                server.close()
        return results

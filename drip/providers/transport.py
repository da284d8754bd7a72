"""Pooled HTTP/1.1 connections for a provider's API, and which phase a failure happened in.

A worker keeps its connections open between batches (one TCP and TLS handshake per
worker, not per request), and every failure says whether the request was fully written:
before that (DNS, refused, connect timeout, TLS handshake, a reset while writing) the
provider cannot have acted on it, so it is safe to send again; after it, nobody knows.
Built on http.client, whose steps (connect, write, read) are ours to tell apart.
"""

from __future__ import annotations

import http.client
import select
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message as Headers
from urllib.parse import urlsplit

from drip.errors import NoAnswer, RequestNotSent

#: An idle connection older than this is closed rather than reused: servers close idle
#: keep-alive connections (often after 60 s), and a request racing that close is in doubt.
MAX_IDLE_SECONDS = 30.0
MAX_IDLE_CONNECTIONS = 4


@dataclass(frozen=True)
class Answer:
    """A response read in full: what python_http_client's Response reads from urllib's."""

    status: int
    reason: str
    headers: Headers
    body: bytes

    def getcode(self) -> int:
        return self.status

    def read(self) -> bytes:
        return self.body

    def info(self) -> Headers:
        return self.headers


@dataclass
class _Idle:
    connection: http.client.HTTPConnection
    since: float


@dataclass
class PooledTransport:
    """Connections to any number of hosts, kept per (scheme, host, port) and reused.

    Thread-safe; a connection serves one request at a time. `connections_opened` counts
    the TCP connections this transport made (the benchmark reports it).
    """

    ssl_context: ssl.SSLContext | None = None
    max_idle_seconds: float = MAX_IDLE_SECONDS
    monotonic: Callable[[], float] = time.monotonic
    connections_opened: int = 0
    _idle: dict[tuple[str, str, int], list[_Idle]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def request(self, method: str, url: str, *, headers: Mapping[str, str],
                body: bytes | None, timeout: float | None) -> Answer:
        """Send one request and read its answer.

        Raises RequestNotSent if it failed before the request was fully written, and
        NoAnswer if it failed after (a timeout, a dropped or reset connection).
        """
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise RequestNotSent(f"Cannot send to {url!r}: not an http(s) URL.")
        port = parts.port or (443 if scheme == "https" else 80)
        key = (scheme, parts.hostname, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection = self._reusable(key)
        if connection is not None:
            try:
                self._write(connection, method, target, headers, body, timeout)
            except RequestNotSent:
                # The server closed the idle connection just as we reused it; nothing
                # reached it, so the request goes once more on a fresh connection.
                connection.close()
                connection = None
        if connection is None:
            connection = self._connect(key, timeout)
            self._write(connection, method, target, headers, body, timeout)
        return self._read(key, connection)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for entries in idle.values():
            for entry in entries:
                entry.connection.close()

    # --- the phases --------------------------------------------------------------------------

    def _connect(self, key: tuple[str, str, int], timeout: float | None
                 ) -> http.client.HTTPConnection:
        scheme, host, port = key
        connection: http.client.HTTPConnection
        if scheme == "https":
            connection = http.client.HTTPSConnection(
                host, port, timeout=timeout,
                context=self.ssl_context or ssl.create_default_context())
        else:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            connection.connect()  # DNS, TCP and, for https, the TLS handshake
        except (OSError, http.client.HTTPException) as exc:  # ssl.SSLError is an OSError
            connection.close()
            raise RequestNotSent(
                f"Could not connect to {host}:{port} ({_describe(exc)}); nothing was sent."
            ) from exc
        with self._lock:
            self.connections_opened += 1
        return connection

    @staticmethod
    def _write(connection: http.client.HTTPConnection, method: str, target: str,
               headers: Mapping[str, str], body: bytes | None, timeout: float | None) -> None:
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        try:
            connection.putrequest(method, target, skip_accept_encoding=True)
            for name, value in headers.items():
                connection.putheader(name, value)
            connection.putheader("Content-Length", str(len(body or b"")))
            connection.endheaders(body)  # sendall: it returns once every byte is written
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise RequestNotSent(
                f"The connection failed while the request was being written "
                f"({_describe(exc)}); it was not fully sent.") from exc

    def _read(self, key: tuple[str, str, int],
              connection: http.client.HTTPConnection) -> Answer:
        try:
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise NoAnswer(f"No answer after the request was sent ({_describe(exc)}).") from exc
        if response.will_close:
            connection.close()
        else:
            self._keep(key, connection)
        return Answer(response.status, response.reason, response.msg, body)

    # --- the pool ----------------------------------------------------------------------------

    def _reusable(self, key: tuple[str, str, int]) -> http.client.HTTPConnection | None:
        """The most recently used idle connection that is still open, if any."""
        now = self.monotonic()
        while True:
            with self._lock:
                entries = self._idle.get(key)
                entry = entries.pop() if entries else None
            if entry is None:
                return None
            if now - entry.since <= self.max_idle_seconds and _still_open(entry.connection):
                return entry.connection
            entry.connection.close()

    def _keep(self, key: tuple[str, str, int], connection: http.client.HTTPConnection) -> None:
        with self._lock:
            entries = self._idle.setdefault(key, [])
            entries.append(_Idle(connection, self.monotonic()))
            surplus = entries[:-MAX_IDLE_CONNECTIONS]
            del entries[:-MAX_IDLE_CONNECTIONS]
        for entry in surplus:
            entry.connection.close()


def _still_open(connection: http.client.HTTPConnection) -> bool:
    """An idle connection the server has not closed: nothing is waiting to be read (a
    readable idle socket means the server closed it, or sent something unasked)."""
    sock = connection.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


__all__ = ["Answer", "PooledTransport"]

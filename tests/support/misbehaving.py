"""Loopback servers that fail an HTTP request at one chosen phase, for the transport's tests.

    with MisbehavingServer("reset-while-writing") as server:   # point a client at server.url

Phases, in the order a request meets them:
    connect-timeout      the listen queue is full: the TCP handshake never completes
    tls-handshake        TCP connects, then the server answers the TLS hello with plain text
    reset-while-writing  the server reads the headers, then resets before the body is in
    reset-after-body     the server reads the whole request, then resets without answering
    silent-after-body    the server reads the whole request and never answers
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType

PHASES = ("connect-timeout", "tls-handshake", "reset-while-writing", "reset-after-body",
          "silent-after-body")


class MisbehavingServer:
    def __init__(self, phase: str) -> None:
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}")
        self.phase = phase
        self._listener = socket.socket()
        if phase == "reset-while-writing":
            # a small receive window, so a large body cannot all sit in buffers unread
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0 if phase == "connect-timeout" else 16)
        self.port: int = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        #: Requests read in full (their bodies reached the server).
        self.requests_read = 0

    @property
    def url(self) -> str:
        scheme = "https" if self.phase == "tls-handshake" else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> MisbehavingServer:
        if self.phase == "connect-timeout":
            self._fill_listen_queue()
        else:
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._closing.set()
        for sock in self._held:
            sock.close()
        self._listener.close()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _fill_listen_queue(self) -> None:
        """Connect until the kernel stops completing handshakes nobody accepts: from then
        on, a new connection's SYN is dropped and its connect times out."""
        for _ in range(64):
            probe = socket.socket()
            probe.settimeout(0.2)
            try:
                probe.connect(("127.0.0.1", self.port))
            except TimeoutError:
                probe.close()
                return
            self._held.append(probe)
        raise RuntimeError("the listen queue never filled")

    def _serve(self) -> None:
        self._listener.settimeout(0.1)
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._misbehave, args=(conn,), daemon=True).start()

    def _misbehave(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            if self.phase == "tls-handshake":
                conn.recv(4096)  # the client hello
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                conn.close()
                return
            head = self._read_head(conn)
            if self.phase == "reset-while-writing":
                _reset(conn)
                return
            length = _content_length(head)
            received = len(head.split(b"\r\n\r\n", 1)[1])
            while received < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                received += len(chunk)
            self.requests_read += 1
            if self.phase == "reset-after-body":
                _reset(conn)
                return
            self._closing.wait(30)  # silent-after-body: never answers
            conn.close()
        except OSError:
            conn.close()

    @staticmethod
    def _read_head(conn: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(1024)
            if not chunk:
                break
            data += chunk
        return data


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def _reset(conn: socket.socket) -> None:
    """Close with a TCP RST instead of a FIN: the client sees "connection reset"."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()

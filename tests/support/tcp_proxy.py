"""A TCP proxy on loopback that a test can cut and restore, to stage a database outage.

    with TcpProxy("127.0.0.1", 5432) as proxy:   # clients connect to proxy.port
        proxy.cut()       # every open connection is closed; new ones are closed at once
        proxy.restore()   # connections are forwarded again
        proxy.refuse()    # stop listening: a new connection is refused (ECONNREFUSED)
        proxy.listen()    # listen again on the same port

Threads, not asyncio: each connection is two blocking pumps, which is plenty for a test.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = threading.Event()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        #: Connections refused while cut, and connections closed by cut().
        self.refused = 0
        self.severed = 0

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def cut(self) -> None:
        """Close every forwarded connection and refuse new ones until `restore()`."""
        with self._lock:
            self._cut.set()
            doomed = list(self._open)
            self._open.clear()
            self.severed += len(doomed) // 2
        for sock in doomed:
            _close(sock)

    def restore(self) -> None:
        self._cut.clear()

    def refuse(self) -> None:
        """Cut every connection and stop listening, so that connecting is refused."""
        self.cut()
        _close(self._listener)
        self._thread.join(timeout=5)

    def listen(self) -> None:
        """After `refuse()`: listen on the same port again and forward as before."""
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        self.restore()

    def close(self) -> None:
        self._closing.set()
        self.cut()
        _close(self._listener)
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._cut.is_set():
                self.refused += 1
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:  # a cut() while we connected upstream closes this one too
                refused = self._cut.is_set()
                if not refused:
                    self._open.update((client, upstream))
            if refused:
                self.refused += 1
                _close(client)
                _close(upstream)
                continue
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)
            _close(source)
            _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()

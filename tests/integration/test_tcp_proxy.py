"""The loopback TCP proxy that stages database outages: it forwards, cuts, and restores."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from tests.support.tcp_proxy import TcpProxy


class Echo(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        while line := self.rfile.readline():
            self.wfile.write(line)


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def ask(sock: socket.socket, text: bytes) -> bytes:
    sock.sendall(text)
    return sock.recv(100)


def test_it_forwards_then_cuts_then_forwards_again(echo_port: int) -> None:
    with TcpProxy("127.0.0.1", echo_port) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as before:
            assert ask(before, b"one\n") == b"one\n"
            proxy.cut()
            assert before.recv(100) == b""  # the open connection was closed
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as during:
            assert during.recv(100) == b""  # and new ones are closed at once
        assert proxy.severed == 1 and proxy.refused == 1
        proxy.restore()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as after:
            assert ask(after, b"two\n") == b"two\n"


def test_it_can_refuse_connections_then_listen_again(echo_port: int) -> None:
    with TcpProxy("127.0.0.1", echo_port) as proxy:
        proxy.refuse()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        proxy.listen()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as after:
            assert ask(after, b"three\n") == b"three\n"

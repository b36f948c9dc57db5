"""engine.storage.http_connections against a real HTTP/1.1 server on loopback: connections
are kept and reused, one the server closed is replaced without the caller seeing it, and
the two timeouts and a refused connection are told apart."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine.storage.http_connections import ConnectError, Connections, ExchangeError


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        server: Server = self.server  # type: ignore[assignment]
        if self.path == "/slow":
            time.sleep(0.5)
        body = f"{self.path} {self.headers['x-probe']}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except BrokenPipeError:
            return  # the client timed out (test_timeouts_and_refusals_are_told_apart)
        server.connections.add(self.client_address)

    def log_message(self, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    connections: set[tuple[str, int]]


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.connections = set()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def connections(server: Server, read_timeout: float = 5.0) -> Connections:
    return Connections("http", f"127.0.0.1:{server.server_address[1]}", connect_timeout=2,
                       read_timeout=read_timeout, kept=4, ca_certs=None)


def test_a_kept_connection_is_reused(server: Server) -> None:
    pool = connections(server)
    for n in range(3):
        answer = pool.request("GET", f"/a?n={n}", {"x-probe": "p"})
        assert (answer.status, answer.body) == (200, f"/a?n={n} p".encode())
        assert answer.headers["content-length"] == str(len(answer.body))
    assert len(server.connections) == 1


def test_a_connection_the_server_closed_is_replaced(server: Server) -> None:
    pool = connections(server)
    pool.request("GET", "/first", {"x-probe": "1"})
    for kept in pool._idle:  # as a server closing an idle keep-alive connection does
        assert kept.sock is not None
        kept.sock.shutdown(socket.SHUT_RDWR)
    assert pool.request("GET", "/second", {"x-probe": "2"}).body == b"/second 2"
    assert len(server.connections) == 2


def test_timeouts_and_refusals_are_told_apart(server: Server) -> None:
    with pytest.raises(ExchangeError) as slow:
        connections(server, read_timeout=0.1).request("GET", "/slow", {"x-probe": "s"})
    assert slow.value.timed_out
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    refused = Connections("http", f"127.0.0.1:{port}", connect_timeout=2, read_timeout=2,
                          kept=1, ca_certs=None)
    with pytest.raises(ConnectError) as error:
        refused.request("GET", "/", {})
    assert not error.value.timed_out

"""engine.storage.http_connections against a real HTTP/1.1 server on loopback: connections
are kept and reused, one the server closed is replaced without the caller seeing it, and
the two timeouts and a refused connection are told apart."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from engine.storage.http_connections import ConnectError, Connections, ExchangeError


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path in RAW:
            self.wfile.write(RAW[self.path])
            self.close_connection = True
            return
        if self.path == "/slow":
            time.sleep(0.5)
        body = f"{self.path} {self.headers['x-probe']}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError):  # test_timeouts_and_refusals_are_told_apart
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


#: answers written as they are, byte for byte, then the connection is closed
RAW = {
    "/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Folded: a\r\n b\r\n\r\n"
                b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: t\r\n\r\n",
    "/until-closed": b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nall of it",
    "/interim": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nConnection: close"
                b"\r\n\r\n",
    "/short": b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf",
    "/garbage": b"SMTP ready\r\n",
}


class Server(ThreadingHTTPServer):
    daemon_threads = True
    #: connections accepted (counted before any of their requests is answered)
    accepted = 0

    def get_request(self) -> tuple[socket.socket, Any]:
        found = super().get_request()
        self.accepted += 1
        return found


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = Server(("127.0.0.1", 0), Handler)
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
    assert server.accepted == 1


def test_a_connection_the_server_closed_is_replaced(server: Server) -> None:
    pool = connections(server)
    pool.request("GET", "/first", {"x-probe": "1"})
    for kept in pool._idle:  # as a server closing an idle keep-alive connection does
        assert kept.sock is not None
        kept.sock.shutdown(socket.SHUT_RDWR)
    assert pool.request("GET", "/second", {"x-probe": "2"}).body == b"/second 2"
    assert server.accepted == 2


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


def test_answers_are_framed_as_the_server_says(server: Server) -> None:
    pool = connections(server)
    chunked = pool.request("GET", "/chunked", {})
    assert (chunked.status, chunked.body, chunked.headers["x-folded"]) == (200, b"hello world",
                                                                           "a b")
    assert pool.request("GET", "/until-closed", {}).body == b"all of it"
    assert (pool.request("GET", "/interim", {}).status, len(pool._idle)) == (204, 0)


def test_a_broken_answer_is_an_error_and_is_not_sent_again(server: Server) -> None:
    """Only a kept connection closed before any answer is tried again on a new one."""
    for path in ("/short", "/garbage"):
        pool = connections(server)
        pool.request("GET", "/a", {"x-probe": "p"})
        before = server.accepted
        with pytest.raises(ExchangeError) as error:
            pool.request("GET", path, {})  # on the kept connection
        assert not error.value.timed_out
        assert server.accepted == before  # no new connection: not sent again


def test_a_header_cannot_smuggle_a_line(server: Server) -> None:
    with pytest.raises(ValueError, match="line break"):
        connections(server).request("GET", "/a", {"x-probe": "p\r\nx-evil: 1"})


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for localhost and its key (moto's own dependency makes them)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_against_the_ca_bundle_given(server: Server, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    host = f"localhost:{server.server_address[1]}"
    trusted = Connections("https", host, connect_timeout=2, read_timeout=5, kept=2,
                          ca_certs=str(cert))
    assert trusted.request("GET", "/tls", {"x-probe": "t"}).body == b"/tls t"
    strangers = Connections("https", host, connect_timeout=2, read_timeout=5, kept=2,
                            ca_certs=None)
    with pytest.raises(ConnectError, match="certificate verify failed"):
        strangers.request("GET", "/tls", {})

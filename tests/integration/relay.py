"""A loopback TCP relay in front of a real emulator, switched between fault modes while
clients talk through it, always on the same port:

- pass: relay every byte to the target (optionally rewriting each request's Host header);
- hang: accept connections and read requests, never answer;
- answer: reply to every HTTP request with one fixed status and body (a 503 with a
  throttling body, a 500, a 401...);
- down: refuse connections.

Switching cuts the connections already open, so that pooled keep-alive connections meet the
new mode at their next request."""

from __future__ import annotations

import contextlib
import functools
import http
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Literal


@dataclass(frozen=True)
class Answer:
    """The reply to every request in "answer" mode."""

    status: int
    body: bytes = b""
    content_type: str = "application/xml"
    headers: tuple[tuple[str, str], ...] = ()


Mode = Literal["pass", "hang"] | Answer


class TcpRelay:
    def __init__(self, target_host: str, target_port: int, *, rewrite_host: bool = False) -> None:
        """``rewrite_host``: requests reach the target with its own address in the Host
        header, as behind a reverse proxy (Azurite serves a cross-account copy only when the
        request's Host is the copy source's host)."""
        self.target = (target_host, target_port)
        self.rewrite_host = rewrite_host
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._mode: Mode = "pass"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mode(self) -> Mode:
        return self._mode

    def up(self) -> None:
        """Accept connections again (in the current mode)."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """Refuse new connections and cut the open ones."""
        if self._listener is not None:
            # shutdown first: a bare close leaves a thread blocked in accept() listening
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        self._cut()

    def switch(self, mode: Mode) -> None:
        """Serve new connections in ``mode`` and cut the open ones."""
        self._mode = mode
        self._cut()

    def _cut(self) -> None:
        with self._lock:
            conns, self._open = self._open, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _track(self, *conns: socket.socket) -> None:
        with self._lock:
            self._open += conns

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # switched off
            self._track(client)
            threading.Thread(target=self._serve, args=(client, self._mode), daemon=True).start()

    def _serve(self, client: socket.socket, mode: Mode) -> None:
        if mode == "hang":
            _drain(client)
        elif isinstance(mode, Answer):
            with contextlib.suppress(OSError, ValueError):
                _answer(client, mode)
            client.close()
        else:
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                return
            server.settimeout(None)
            self._track(server)
            upstream: Callable[[socket.socket, socket.socket], None] = _pump
            if self.rewrite_host:
                host = f"{self.target[0]}:{self.target[1]}".encode()
                upstream = functools.partial(_forward_requests, host=host)
            threading.Thread(target=upstream, args=(client, server), daemon=True).start()
            _pump(server, client)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    _close_both(source, sink)


def _close_both(*conns: socket.socket) -> None:
    for conn in conns:
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)


def _drain(conn: socket.socket) -> None:
    """Read and forget until the client gives up (or the relay cuts the connection)."""
    with contextlib.suppress(OSError):
        while conn.recv(65536):
            pass
    conn.close()


# --- a minimal HTTP/1.1 request reader ------------------------------------------------------

def _read_head(reader: BinaryIO) -> list[bytes] | None:
    """The request line and header lines of the next request; None once the client closed."""
    lines: list[bytes] = []
    while True:
        line = reader.readline(65537)
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            if lines:
                return lines
            continue  # stray blank lines between requests
        lines.append(line)


def _header(lines: list[bytes], name: bytes) -> bytes | None:
    for line in lines[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


def _copy_body(reader: BinaryIO, lines: list[bytes], sink: Callable[[bytes], None]) -> None:
    """Pass the request's body (Content-Length or chunked) to ``sink``."""
    if (_header(lines, b"transfer-encoding") or b"").lower() == b"chunked":
        while True:
            size_line = reader.readline(65537)
            sink(size_line)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (trailer := reader.readline(65537)) not in (b"\r\n", b"\n", b""):
                    sink(trailer)
                sink(b"\r\n")
                return
            sink(reader.read(size + 2))
    left = int(_header(lines, b"content-length") or b"0")
    while left > 0:
        piece = reader.read(min(left, 65536))
        if not piece:
            return
        sink(piece)
        left -= len(piece)


def _forward_requests(client: socket.socket, server: socket.socket, host: bytes) -> None:
    """Relay requests with ``host`` in their Host header."""
    with contextlib.suppress(OSError, ValueError), client.makefile("rb") as reader:
        while (lines := _read_head(reader)) is not None:
            head = [b"Host: " + host + b"\r\n" if line.lower().startswith(b"host:") else line
                    for line in lines]
            server.sendall(b"".join(head) + b"\r\n")
            _copy_body(reader, lines, server.sendall)
    _close_both(client, server)


def _answer(client: socket.socket, answer: Answer) -> None:
    """Reply ``answer`` to each request on the connection. A client that waits for
    "100 Continue" gets the reply instead, and the connection is closed after it."""
    with client.makefile("rb") as reader:
        while (lines := _read_head(reader)) is not None:
            method = lines[0].split(b" ", 1)[0].upper()
            waits = (_header(lines, b"expect") or b"").lower() == b"100-continue"
            if not waits:
                _copy_body(reader, lines, lambda _: None)
            reason = http.HTTPStatus(answer.status).phrase
            head = [f"HTTP/1.1 {answer.status} {reason}",
                    f"Content-Type: {answer.content_type}",
                    f"Content-Length: {len(answer.body)}",
                    *(f"{name}: {value}" for name, value in answer.headers),
                    f"Connection: {'close' if waits else 'keep-alive'}"]
            body = b"" if method == b"HEAD" else answer.body
            client.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            if waits:
                client.shutdown(socket.SHUT_WR)
                _drain(client)
                return


# --- what each cloud answers when it throttles, fails or refuses credentials ----------------

def _s3_error(code: str, message: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>relay</RequestId></Error>").encode()


def _gcs_error(status: int, reason: str, message: str) -> bytes:
    return json.dumps({"error": {"code": status, "message": message, "errors": [
        {"message": message, "domain": "global", "reason": reason}]}}).encode()


def _azure_error(status: int, code: str, message: str) -> Answer:
    body = (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code>'
            f"<Message>{message}\nRequestId:relay</Message></Error>").encode()
    return Answer(status, body, headers=(("x-ms-error-code", code),))


#: the provider asks to slow down, per cloud (S3 and Azure: 503, GCS: 429)
THROTTLED = {
    "s3": Answer(503, _s3_error("SlowDown", "Please reduce your request rate.")),
    "gcs": Answer(429, _gcs_error(429, "rateLimitExceeded", "The rate of change requests to "
                                  "the object is too high, please slow down."),
                  "application/json"),
    "azure": _azure_error(503, "ServerBusy", "The server is busy."),
}
#: the provider fails every request with a 500, per cloud
SERVER_ERROR = {
    "s3": Answer(500, _s3_error("InternalError", "We encountered an internal error. Please "
                                "try again.")),
    "gcs": Answer(500, _gcs_error(500, "backendError", "We encountered an internal error. "
                                  "Please try again."), "application/json"),
    "azure": _azure_error(500, "InternalError", "The server encountered an internal error. "
                          "Please retry the request."),
}
#: GCS refusing an access token (fake-gcs-server checks no credentials)
GCS_UNAUTHORIZED = Answer(401, _gcs_error(401, "authError", "Invalid Credentials"),
                          "application/json")

"""Keep-alive HTTP/1.1 connections to one host, for requests without a body.

The lean S3 path (engine.storage.s3_wire) makes hundreds of small requests a second at fleet
size. urllib3's pool put about a fifth of btar's CPU on top of http.client's own, and
http.client itself reads every answer's headers through the email package (a third of its
cost). This keeps what that path needs, on a socket: reused connections, a connect and a
read timeout, TLS against a CA bundle, one new connection when the server had closed a kept
one, and answers framed by Content-Length, chunked, or the end of the connection.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Mapping
from typing import BinaryIO
from urllib.parse import urlsplit

#: errors of a kept connection the server closed while it was idle: the request never got
#: an answer, so it is sent again once on a new connection
_STALE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)
#: the longest status, header or chunk-size line read (as http.client's limit)
_LINE = 65536
#: methods whose request says it has no body (a server may wait for one otherwise)
_EMPTY_BODY = frozenset({"PUT", "POST", "PATCH"})


class ConnectError(Exception):
    """No connection could be made (``timed_out``: the connect timeout ran out)."""

    def __init__(self, host: str, cause: OSError) -> None:
        super().__init__(f"cannot connect to {host}: {cause}")
        self.timed_out = isinstance(cause, TimeoutError)


class ExchangeError(Exception):
    """A request got no whole answer (``timed_out``: the read timeout ran out)."""

    def __init__(self, host: str, cause: Exception) -> None:
        super().__init__(f"no answer from {host}: {cause}")
        self.timed_out = isinstance(cause, TimeoutError)


class Answer:
    """A whole HTTP answer: status, headers (names lower-case), body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


class _Connection:
    """One socket and its buffered reader."""

    __slots__ = ("reader", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader: BinaryIO = sock.makefile("rb")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class Connections:
    """Connections to ``host`` (``name[:port]``) over http or https, at most ``kept`` idle."""

    def __init__(self, scheme: str, host: str, *, connect_timeout: float, read_timeout: float,
                 kept: int, ca_certs: str | None) -> None:
        self._host = host
        https = scheme == "https"
        parts = urlsplit(f"//{host}")
        self._address = (parts.hostname or host, parts.port or (443 if https else 80))
        self._context = ssl.create_default_context(cafile=ca_certs) if https else None
        self._connect_timeout, self._read_timeout = connect_timeout, read_timeout
        self._kept = kept
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()

    def request(self, method: str, target: str, headers: Mapping[str, str]) -> Answer:
        """Send a request without a body and read its whole answer."""
        message = self._message(method, target, headers)
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        if connection is not None:
            try:
                return self._exchange(connection, method, message)
            except ExchangeError as error:
                if not isinstance(error.__cause__, _STALE):
                    raise
        return self._exchange(self._connect(), method, message)

    def _message(self, method: str, target: str, headers: Mapping[str, str]) -> bytes:
        lines = [f"{method} {target} HTTP/1.1"]
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        names = {name.lower() for name in headers}
        if "host" not in names:
            lines.append(f"Host: {self._host}")
        if "accept-encoding" not in names:
            lines.append("Accept-Encoding: identity")
        if method in _EMPTY_BODY:
            lines.append("Content-Length: 0")
        if any("\r" in line or "\n" in line for line in lines):
            raise ValueError("a line break in an HTTP request line or header")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _connect(self) -> _Connection:
        try:
            sock = socket.create_connection(self._address, timeout=self._connect_timeout)
        except OSError as error:
            raise ConnectError(self._host, error) from error
        try:
            if self._context is not None:
                sock = self._context.wrap_socket(sock, server_hostname=self._address[0])
            sock.settimeout(self._read_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as error:
            sock.close()
            raise ConnectError(self._host, error) from error
        return _Connection(sock)

    def _exchange(self, connection: _Connection, method: str, message: bytes) -> Answer:
        try:
            connection.sock.sendall(message)
            answer, keep = _read_answer(connection.reader, method)
        except (OSError, ValueError, EOFError) as error:
            connection.close()
            raise ExchangeError(self._host, error) from error
        if keep:
            with self._lock:
                if len(self._idle) < self._kept:
                    self._idle.append(connection)
                    return answer
        connection.close()
        return answer


def _read_answer(reader: BinaryIO, method: str) -> tuple[Answer, bool]:
    """The answer on ``reader``, and whether the connection can carry another request."""
    while True:
        line = reader.readline(_LINE + 1)
        if not line:
            # A kept connection the server closed: nothing of this request was answered.
            raise ConnectionResetError("the server closed the connection")
        version, _, rest = line.partition(b" ")
        if not version.startswith(b"HTTP/1.") or len(rest) < 3 or not rest[:3].isdigit():
            raise ValueError(f"not an HTTP/1.x status line: {line[:80]!r}")
        status = int(rest[:3])
        headers = _read_headers(reader)
        if not 100 <= status < 200:  # an interim answer comes before the real one
            break
    keep = version == b"HTTP/1.1" and "close" not in headers.get("connection", "").lower()
    if method == "HEAD" or status in (204, 304):
        body = b""
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        body = _read_chunked(reader)
    elif "content-length" in headers:
        body = _read_exactly(reader, int(headers["content-length"]))
    else:
        body, keep = reader.read(), False  # framed by the end of the connection
    return Answer(status, headers, body), keep


def _read_headers(reader: BinaryIO) -> dict[str, str]:
    headers: dict[str, str] = {}
    name = ""
    while True:
        line = reader.readline(_LINE + 1)
        if not line:
            raise EOFError("the answer ended in its headers")
        if line in (b"\r\n", b"\n"):
            return headers
        if len(line) > _LINE:
            raise ValueError("an answer's header line is too long")
        text = line.decode("latin-1")
        if text[0] in " \t" and name:  # an obsolete folded line continues the last header
            headers[name] += " " + text.strip()
            continue
        name, colon, value = text.partition(":")
        if not colon:
            raise ValueError(f"not an HTTP header line: {text[:80]!r}")
        name = name.strip().lower()
        headers[name] = value.strip()


def _read_exactly(reader: BinaryIO, size: int) -> bytes:
    if size < 0:
        raise ValueError("a negative Content-Length")
    data = reader.read(size)
    if len(data) < size:
        raise EOFError(f"the answer ended after {len(data)} of its {size} bytes")
    return data


def _read_chunked(reader: BinaryIO) -> bytes:
    parts: list[bytes] = []
    while True:
        line = reader.readline(_LINE + 1)
        if not line:
            raise EOFError("the answer ended before its last chunk")
        size = int(line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            _read_headers(reader)  # the trailer, up to the empty line
            return b"".join(parts)
        parts.append(_read_exactly(reader, size))
        if reader.readline(_LINE + 1) not in (b"\r\n", b"\n"):
            raise ValueError("a chunk is longer than its size says")

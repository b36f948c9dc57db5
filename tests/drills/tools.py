"""What the disaster-recovery drills share: the OS user servers run as, folders that user owns,
subprocesses as that user, a free port, a moto S3 server in its own process (so that stopping
it is a real outage of the primary region), the `btar` command line in process, and a
stopwatch whose table `pytest -s` shows."""

from __future__ import annotations

import contextlib
import io
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.cli import main

DEBIAN_HINT = "apt-get install -y postgresql pgbackrest mariadb-server mariadb-backup"


@dataclass(frozen=True)
class OsUser:
    """The OS user that owns a drill's folders and runs its servers (servers refuse root)."""

    name: str
    uid: int
    gid: int

    @property
    def switch(self) -> bool:
        return self.uid != os.geteuid()

    def argv(self, command: Sequence[str]) -> list[str]:
        if not self.switch:
            return list(command)
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", "--",
                *command]


def server_user(root_default: str) -> OsUser | None:
    """``root_default`` (postgres, mysql) when the tests run as root, else the current user;
    None when that user does not exist."""
    name = root_default if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return OsUser(name, entry.pw_uid, entry.pw_gid)


def missing_tools(*names: str) -> list[str]:
    return [n for n in names if shutil.which(n) is None and not Path(n).exists()]


@contextlib.contextmanager
def owned_folder(user: OsUser, label: str) -> Iterator[Path]:
    """A fresh folder under the system temp dir, owned by ``user`` (pytest's tmp_path is not
    reachable by other users when the tests run as root); removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix=f"btar-drill-{label}-"))
    try:
        os.chmod(root, 0o755)
        os.chown(root, user.uid, user.gid)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(user: OsUser | None, command: Sequence[str], *, check: bool = True,
        env: dict[str, str] | None = None, timeout: float = 120) -> str:
    argv = user.argv(command) if user else list(command)
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout,
                            check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} exited {result.returncode}:\n"
                             f"{result.stdout}\n{result.stderr}")
    return result.stdout


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def btar(*argv: str) -> tuple[int, str, str]:
    """The `btar` command line, in process."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def chown_tree(root: Path, user: OsUser) -> None:
    for folder, dirs, files in os.walk(root):
        os.chown(folder, user.uid, user.gid)
        for name in (*dirs, *files):
            os.chown(os.path.join(folder, name), user.uid, user.gid, follow_symlinks=False)


@dataclass
class Stopwatch:
    """Measured steps of one drill, printed as a table (visible with pytest -s)."""

    title: str
    steps: list[tuple[str, float]] = field(default_factory=list)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.steps.append((name, time.monotonic() - started))

    def add(self, name: str, seconds: float) -> None:
        self.steps.append((name, seconds))

    def seconds(self, name: str) -> float:
        return sum(s for n, s in self.steps if n == name)

    def report(self, *extra: str) -> str:
        width = max(len(n) for n, _ in self.steps)
        lines = [f"== drill: {self.title}"]
        lines += [f"  {n.ljust(width)}  {s:7.2f} s" for n, s in self.steps]
        lines += [f"  {line}" for line in extra]
        text = "\n".join(lines)
        print("\n" + text)
        return text


@dataclass
class MotoProcess:
    """moto's S3 server in a process of its own: its own backend (no clash with the session's
    in-process server) and a real outage when stopped."""

    endpoint: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def create_bucket(self, bucket: str, region: str) -> None:
        import boto3

        client = boto3.session.Session().client("s3", region_name=region,
                                                endpoint_url=self.endpoint)
        client.create_bucket(Bucket=bucket,
                             CreateBucketConfiguration={"LocationConstraint": region})
        client.close()


@contextlib.contextmanager
def moto_process() -> Iterator[MotoProcess]:
    port = free_port()
    binary = Path(sys.executable).parent / "moto_server"
    command = [str(binary)] if binary.exists() else [sys.executable, "-m", "moto.server"]
    process = subprocess.Popen([*command, "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = MotoProcess(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("moto_server did not start")
            time.sleep(0.05)
        yield server
    finally:
        server.stop()

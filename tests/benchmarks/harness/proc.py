"""Run a command as a child process: wall time, exit code, peak RSS (os.wait4's ru_maxrss,
KiB on Linux: the child's own peak, no sampling), and its output. Every command goes through
harness/launch.py, which keeps the harness's own memory out of the child's ru_maxrss."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]
    seconds: float
    returncode: int
    max_rss_kib: int
    stdout: str
    stderr: str
    #: user + system CPU of the command itself (its own rusage, children it reaped included)
    cpu_seconds: float = 0.0

    @property
    def max_rss_mib(self) -> float:
        return self.max_rss_kib / 1024

    def check(self, what: str) -> Run:
        """Raise with the command's tail of stderr unless it exited 0."""
        if self.returncode != 0:
            tail = "\n".join((self.stderr or self.stdout).strip().splitlines()[-15:])
            raise RuntimeError(f"{what}: exit {self.returncode}: {' '.join(self.argv)}\n{tail}")
        return self


LAUNCH = Path(__file__).with_name("launch.py")


def launch(argv: Sequence[str], result: Path, *, stdout: object = None, stderr: object = None,
           env: Mapping[str, str] | None = None, cwd: Path | None = None
           ) -> subprocess.Popen[bytes]:
    """Start ``argv`` under the launcher; it writes seconds, exit code and peak RSS to
    ``result`` when the command ends (see read_launch)."""
    return subprocess.Popen([sys.executable, "-I", "-S", str(LAUNCH), str(result), *argv],
                            stdout=stdout, stderr=stderr,  # type: ignore[arg-type]
                            stdin=subprocess.DEVNULL,
                            env=dict(env) if env is not None else None, cwd=cwd)


def read_launch(process: subprocess.Popen[bytes], result: Path) -> tuple[float, int, int]:
    """Wait for the launcher; (seconds, exit code, peak RSS KiB) of the command."""
    if process.wait() != 0 or not result.exists():
        raise RuntimeError(f"the launcher failed (exit {process.returncode})")
    facts = json.loads(result.read_text())
    return float(facts["seconds"]), int(facts["returncode"]), int(facts["max_rss_kib"])


def run(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
        cwd: Path | None = None) -> Run:
    """Run ``argv`` to its end: timed from the spawn to the reap (by the launcher). Output goes
    to temporary files (no pipe to drain while timing)."""
    with tempfile.TemporaryDirectory() as folder:
        out_path, err_path = Path(folder) / "out", Path(folder) / "err"
        result = Path(folder) / "result.json"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            process = launch(argv, result, stdout=out, stderr=err, env=env, cwd=cwd)
            seconds, returncode, rss = read_launch(process, result)
        cpu = float(json.loads(result.read_text()).get("cpu_seconds", 0.0))
        return Run(tuple(argv), seconds, returncode, rss,
                   out_path.read_text(errors="replace"), err_path.read_text(errors="replace"),
                   cpu)


def timed_sync() -> float:
    """`sync` (flush every dirty page to disk), timed."""
    started = time.perf_counter()
    subprocess.run(["sync"], check=True)
    return time.perf_counter() - started


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)

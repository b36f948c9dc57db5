"""One `btar sync` per catalog: a second one (or a `disable --delete`) is refused in one line
with exit 2 and the holder's pid, never copies the same objects at the same time, and never
corrupts the catalog. The lock is a flock on `<catalog>.lock`, released by the kernel even
when the holder is killed (the kill tests restart after every SIGKILL)."""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.api import Btar
from engine.cli import main
from engine.errors import SyncAlreadyRunning

ROOT = Path(__file__).resolve().parents[2]
BTAR = [sys.executable, "-m", "engine.cli"]


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    assert cli("init", "--demo", str(tmp_path))[0] == 0
    return tmp_path / "btar.toml"


def btar(config: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BTAR, "--config", str(config), *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def copied_twice(catalog: Path) -> list[tuple[str, str, int]]:
    db = sqlite3.connect(catalog)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return db.execute("select service, key, count(*) from copy_attempts where ok = 1 "
                          "group by service, region, key having count(*) > 1").fetchall()
    finally:
        db.close()


def test_a_second_sync_is_refused_while_one_runs(demo: Path) -> None:
    lock = demo.parent / "btar.sqlite.lock"
    holder = subprocess.Popen([*BTAR, "--config", str(demo), "sync", "--interval", "3600",
                               "--log-format", "json"], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (lock.exists() and lock.read_text().strip() == str(holder.pid)):
            assert holder.poll() is None, holder.communicate()[1]
            assert time.monotonic() < deadline, "the daemon never took the lock"
            time.sleep(0.05)
        for argv in (["sync", "--once"], ["disable", "orders", "--delete", "--yes"]):
            refused = btar(demo, *argv)
            assert refused.returncode == 2, refused.stderr
            assert refused.stderr == (f"btar: another btar sync is running on this catalog "
                                      f"(pid {holder.pid}); lock file {lock}\n")
        reader = btar(demo, "status", "--json")  # reading needs no lock
        assert reader.returncode == 0, reader.stderr
    finally:
        holder.send_signal(signal.SIGTERM)
        try:
            holder.wait(timeout=30)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()
    assert holder.returncode == 0
    after = btar(demo, "sync", "--once")
    assert after.returncode == 0, after.stderr
    assert copied_twice(demo.parent / "btar.sqlite") == []


def test_two_syncs_started_together_never_copy_the_same_object(demo: Path) -> None:
    processes = [subprocess.Popen([*BTAR, "--config", str(demo), "sync", "--once"], cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    results = [(p.pid, *p.communicate(timeout=120), p.returncode) for p in processes]
    codes = sorted(code for *_, code in results)
    assert codes in ([0, 0], [0, 2]), results
    for pid, _, err, code in results:
        if code == 2:
            other = next(p for p, *_ in results if p != pid)
            assert f"another btar sync is running on this catalog (pid {other})" in err
    assert copied_twice(demo.parent / "btar.sqlite") == []
    status = cli("--config", str(demo), "status")
    assert status[0] == 0
    assert "waiting for first sync" not in status[1]


def test_the_lock_is_per_catalog_and_released_on_close(demo: Path) -> None:
    first = Btar.open(str(demo), exclusive=True)
    try:
        with pytest.raises(SyncAlreadyRunning) as refused:
            Btar.open(str(demo), exclusive=True)
        assert refused.value.exit_code == 2
        assert refused.value.pid == os.getpid()
        Btar.open(str(demo)).close()  # without exclusive: readers and management go on
    finally:
        first.close()
    Btar.open(str(demo), exclusive=True).close()
    lock = demo.parent / "btar.sqlite.lock"
    assert lock.stat().st_mode & 0o777 == 0o600

"""Disaster-recovery drill: MariaDB 10.11 + mariadb-backup + binlogs in btar's native layout,
produced by examples/mariadb-backup-to-btar.py, replicated by btar and restored in the
secondary region while the primary region is gone.

A real server (log-bin, ROW format) gets a base backup, then rows in batches two and a half
seconds apart with FLUSH BINARY LOGS between them; the closed binlogs are shipped. `btar sync
--once` copies everything to the secondary (local folders, or moto S3 servers: the primary one
in its own process, stopped for the outage). As a baseline, `btar fork` restores from the
primary region before the outage; then the server and the primary location go away and
`btar fork` restores from the secondary: to a time between two batches (binlog times are whole
seconds, so the target keeps a second of margin on each side), then to latest; a target past
the window is refused.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.model import iso, parse_iso
from tests.drills.tools import (
    DEBIAN_HINT,
    MotoProcess,
    OsUser,
    Stopwatch,
    btar,
    free_port,
    missing_tools,
    moto_process,
    owned_folder,
    run,
    server_user,
)
from tests.integration.s3_server import MotoS3

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "mariadb-backup-to-btar.py"
PRIMARY, SECONDARY = "aws-eu-west-1", "aws-eu-central-1"
BATCHES, ROWS_PER_BATCH, PAUSE = 4, 3, 2.5
USER = server_user("mysql")
MISSING = missing_tools("mariadbd", "mariadb-install-db", "mariadb-backup", "mariadb-binlog",
                        "mariadb", "mariadb-admin", "setpriv")

pytestmark = [
    pytest.mark.drill,
    pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)} ({DEBIAN_HINT})"),
    pytest.mark.skipif(USER is None, reason="needs the mysql OS user to run MariaDB"),
]


class MariaDB:
    """One server whose every setting is in ``defaults`` (--defaults-file comes first on every
    tool, or /etc/mysql/my.cnf adds its own paths)."""

    def __init__(self, defaults: Path, env: dict[str, str]) -> None:
        self.defaults, self.env = defaults, env
        self.process: subprocess.Popen[bytes] | None = None

    def sql(self, query: str) -> str:
        return run(None, ["mariadb", f"--defaults-file={self.defaults}", "-NBe", query],
                   env=self.env).strip()

    def start(self, user: OsUser) -> None:
        self.process = subprocess.Popen(
            user.argv(["mariadbd", f"--defaults-file={self.defaults}"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env)
        deadline = time.monotonic() + 60
        while run(None, ["mariadb-admin", f"--defaults-file={self.defaults}", "ping"],
                  check=False, env=self.env).strip() != "mysqld is alive":
            assert self.process.poll() is None, "mariadbd exited"
            assert time.monotonic() < deadline, "mariadbd did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        run(None, ["mariadb-admin", f"--defaults-file={self.defaults}", "shutdown"],
            check=False, env=self.env)
        if self.process is not None:
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def rows(self) -> list[int]:
        return [int(x) for x in self.sql("select i from app.drill order by i").split()]


def stop_fork(folder: Path, env: dict[str, str]) -> None:
    """Stop a server a fork left running (also after a failed test)."""
    pid_file = folder / "run" / "mysqld.pid"
    if not pid_file.exists():
        return
    run(None, ["mariadb-admin", f"--defaults-file={folder / 'my.cnf'}", "shutdown"],
        check=False, env=env)
    deadline = time.monotonic() + 30
    while pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_file.exists():
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pid_file.read_text().strip()), 9)


def write_config(root: Path, backend: str, primary_s3: MotoProcess | None,
                 secondary_s3: MotoS3 | None) -> Path:
    if backend == "local":
        (root / "secondary").mkdir()  # as an operator would: btar creates no location
        regions = (f'{PRIMARY} = "file://{root}/primary"\n'
                   f'{SECONDARY} = "file://{root}/secondary"\n')
    else:
        assert primary_s3 is not None
        assert secondary_s3 is not None
        prefix = uuid.uuid4().hex
        regions = (f'{PRIMARY} = {{ url = "s3://btar-drill-primary/{prefix}", '
                   f'endpoint_url = "{primary_s3.endpoint}" }}\n'
                   f'{SECONDARY} = {{ url = "s3://{secondary_s3.bucket(SECONDARY)}/{prefix}", '
                   f'endpoint_url = "{secondary_s3.endpoint}" }}\n')
    config = root / "btar" / "btar.toml"
    config.parent.mkdir()
    config.write_text(f'catalog = "btar.sqlite"\n\n[regions]\n{regions}\n'
                      '[[services]]\nname = "shop"\ntype = "mysql"\n'
                      f'region = "{PRIMARY}"\n')
    return config


def producer(config: Path, defaults: Path, env: dict[str, str], *args: str) -> str:
    return run(None, [sys.executable, str(SCRIPT), "--config", str(config), "--service", "shop",
                      "--defaults-file", str(defaults), *args], env=env, timeout=300)


@contextlib.contextmanager
def s3_servers(backend: str, request: pytest.FixtureRequest) -> Iterator[
        tuple[MotoProcess | None, MotoS3 | None]]:
    if backend == "local":
        yield None, None
        return
    secondary: MotoS3 = request.getfixturevalue("moto_s3")
    with moto_process() as primary:
        primary.create_bucket("btar-drill-primary", "eu-west-1")
        yield primary, secondary


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_mariadb_backup_binlog_drill(backend: str, request: pytest.FixtureRequest) -> None:
    assert USER is not None
    watch = Stopwatch(f"MariaDB 10.11 + mariadb-backup + binlogs, {backend} backend")
    with owned_folder(USER, "mariadb") as root, s3_servers(backend, request) as (p_s3, s3):
        env = {**os.environ, "TZ": "UTC"}
        env = {k: v for k, v in env.items() if not k.startswith("MYSQL")}
        for folder in ("run", "tmp", "binlog"):
            (root / folder).mkdir()
            os.chown(root / folder, USER.uid, USER.gid)
        defaults = root / "my.cnf"
        defaults.write_text("\n".join([
            "[client-server]", f"socket={root}/run/mysqld.sock", f"port={free_port()}", "",
            "[mariadb]", f"datadir={root}/data", "bind-address=127.0.0.1",
            f"pid-file={root}/run/mysqld.pid", f"log-error={root}/mysqld.err",
            f"tmpdir={root}/tmp", f"log-bin={root}/binlog/mysql-bin", "server-id=1",
            "binlog-format=ROW", "skip-name-resolve", ""]))
        source = MariaDB(defaults, env)
        forks = [root / "fork-primary", root / "fork-t", root / "fork-latest"]
        try:
            run_drill(backend, root, source, defaults, forks, env, watch, p_s3, s3)
        finally:
            source.stop()
            for fork in forks:
                stop_fork(fork, env)


def run_drill(backend: str, root: Path, source: MariaDB, defaults: Path, forks: list[Path],
              env: dict[str, str], watch: Stopwatch, primary_s3: MotoProcess | None,
              s3: MotoS3 | None) -> None:
    assert USER is not None
    with watch.step("install-db + start"):
        run(USER, ["mariadb-install-db", f"--defaults-file={defaults}"], env=env)
        source.start(USER)
    source.sql("create database app; create table app.drill (i int primary key, "
               "batch int not null, at datetime(6) not null default now(6))")
    config = write_config(root, backend, primary_s3, s3)
    with watch.step("base backup (mariadb-backup)"):
        producer(config, defaults, env, "backup")
    written: dict[int, datetime] = {}
    with watch.step("rows (4 batches)"):
        for batch in range(BATCHES):
            for k in range(ROWS_PER_BATCH):
                source.sql(f"insert into app.drill (i, batch) values "
                           f"({batch * ROWS_PER_BATCH + k + 1}, {batch})")
            source.sql("flush binary logs")
            if batch < BATCHES - 1:
                time.sleep(PAUSE)
    for line in source.sql("select i, at from app.drill order by i").splitlines():
        i, at = line.split("\t")
        written[int(i)] = datetime.fromisoformat(at).replace(tzinfo=UTC)
    with watch.step("ship binlogs"):
        producer(config, defaults, env, "binlogs", "--flush")
    batch_of = {i: (i - 1) // ROWS_PER_BATCH for i in written}
    # Whole seconds: the target's second lies after batch 1's last second and before batch 2's.
    last_second = math.floor(max(t for i, t in written.items() if batch_of[i] == 1).timestamp())
    first_second = math.floor(min(t for i, t in written.items() if batch_of[i] == 2).timestamp())
    assert first_second >= last_second + 2, "batches too close for whole-second binlog times"
    target = datetime.fromtimestamp(last_second + 1.5, UTC)
    expected_at_target = sorted(i for i, t in written.items() if t <= target)
    assert expected_at_target == list(range(1, 2 * ROWS_PER_BATCH + 1))

    code, _, err = btar("--config", str(config), "enable", "shop", "--region", SECONDARY)
    assert code == 0, err
    with watch.step("btar sync --once"):
        code, out, err = btar("--config", str(config), "sync", "--once", "--strict")
    assert code == 0, err
    code, out, err = btar("--config", str(config), "window", "shop", "--json")
    assert code == 0, err
    windows = {w["role"]: w for w in json.loads(out)["regions"]}
    secondary = windows["secondary"]
    assert secondary["end"] == windows["primary"]["end"]
    assert parse_iso(secondary["start"]) <= target <= parse_iso(secondary["end"])

    # Baseline: the same fork from the primary region, before the outage.
    started = time.monotonic()
    code, out, err = btar("--config", str(config), "fork", "shop", "--region", PRIMARY,
                          "--target-time", iso(target), "--into", str(forks[0]), "--start",
                          "--json")
    rto_primary = time.monotonic() - started
    assert code == 0, err
    watch.add("baseline: btar fork from the primary", rto_primary)
    baseline = MariaDB(forks[0] / "my.cnf", env)
    assert baseline.rows() == expected_at_target
    baseline.stop()

    # The primary region goes away, with the server.
    source.stop()
    if backend == "local":
        (root / "primary").rename(root / "primary.gone")
    else:
        assert primary_s3 is not None
        primary_s3.stop()

    started = time.monotonic()
    with watch.step("btar fork --target-time"):
        code, out, err = btar("--config", str(config), "fork", "shop", "--region", SECONDARY,
                              "--target-time", iso(target), "--into", str(forks[1]), "--start",
                              "--json")
    rto_btar = time.monotonic() - started
    assert code == 0, err
    restored = json.loads(out)["restore"]
    for step, seconds in restored["steps"]:
        watch.add(f"  fork: {step}", seconds)
    assert restored["running"]
    assert restored["tool"] == "mariadb-backup"
    fork = MariaDB(forks[1] / "my.cnf", env)
    assert fork.rows() == expected_at_target
    fork.stop()

    with watch.step("btar fork --latest"):
        code, out, err = btar("--config", str(config), "fork", "shop", "--region", SECONDARY,
                              "--latest", "--into", str(forks[2]), "--start", "--json")
    assert code == 0, err
    latest = MariaDB(forks[2] / "my.cnf", env)
    assert latest.rows() == sorted(written)
    latest.stop()

    past = parse_iso(secondary["end"]) + timedelta(hours=1)
    code, out, err = btar("--config", str(config), "fork", "shop", "--region", SECONDARY,
                          "--target-time", iso(past), "--into", str(root / "fork-past"))
    assert code == 3, err
    assert f"outside the restorable window of {SECONDARY}" in err
    assert secondary["start"] in err
    assert secondary["end"] in err

    watch.report(f"target {iso(target)}: {len(expected_at_target)} of {len(written)} rows",
                 f"RTO btar fork from {SECONDARY} (fetch + prepare + copy-back + start + "
                 f"replay): {rto_btar:.2f} s",
                 f"RTO btar fork from {PRIMARY} before the outage: {rto_primary:.2f} s")

"""Disaster-recovery drill: PostgreSQL 15 + pgBackRest 2.45, replicated by btar, restored in the
secondary region while the primary region is gone (docs/pgbackrest-layout.md).

A real cluster archives its WAL through pgBackRest into a posix repository, takes a full
backup, and commits rows in batches a second and a half apart (commit timestamps recorded
with track_commit_timestamp). The repository is the primary location: directly (local
backend), or uploaded into a bucket of a moto S3 server running in its own process (S3:
pgBackRest's own S3 client needs TLS, and moto speaks plain HTTP; uploading the finished
repository gives btar exactly the objects pgBackRest would have written there). Nothing runs
at the primary besides pgBackRest: `btar sync --once` copies everything to the secondary
(each backup once its backup.manifest is there, the info files mirrored); locally, an
incremental backup and more rows follow, which a second sync finds by listing the repository
incrementally (no full listing in between). Then the primary
goes away (its folder renamed, or its S3 server stopped) and `btar fork` restores from the
secondary: to a time between two batches, then to latest; a target past the window is
refused. A plain `pgbackrest restore` with its own configuration pointed at the secondary
repository (for S3, a download of the secondary bucket's keys, as the fork fetches them)
restores the same target with nothing written by btar. The fork's RTO is compared with a
`pgbackrest restore` straight from the primary repository to the same target, taken before
the outage.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.model import iso, parse_iso
from tests.drills.tools import (
    DEBIAN_HINT,
    MotoProcess,
    OsUser,
    Stopwatch,
    btar,
    chown_tree,
    free_port,
    missing_tools,
    moto_process,
    owned_folder,
    run,
    server_user,
)
from tests.integration.s3_server import MotoS3

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PRIMARY, SECONDARY = "aws-eu-west-1", "aws-eu-central-1"
STANZA = "main"
BATCHES, ROWS_PER_BATCH, PAUSE = 4, 3, 1.5
USER = server_user("postgres")
MISSING = missing_tools(str(PG_BIN / "initdb"), "pgbackrest", "setpriv")

pytestmark = [
    pytest.mark.drill,
    pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)} ({DEBIAN_HINT})"),
    pytest.mark.skipif(USER is None, reason="needs the postgres OS user to run PostgreSQL"),
]


class Postgres:
    """One PostgreSQL server run by ``user`` on a unix socket in ``sockets``."""

    def __init__(self, user: OsUser, data: Path, sockets: Path, port: int, env: dict[str, str]):
        self.user, self.data, self.sockets, self.port, self.env = user, data, sockets, port, env

    def pg(self, tool: str, *args: str, check: bool = True) -> str:
        return run(self.user, [str(PG_BIN / tool), *args], env=self.env, check=check)

    def sql(self, query: str) -> str:
        return self.pg("psql", "-h", str(self.sockets), "-p", str(self.port), "-U", "postgres",
                       "-d", "postgres", "-XAtc", query).strip()

    def start(self, *options: str) -> None:
        self.pg("pg_ctl", "-D", str(self.data), "-l", str(self.data.parent / "server.log"),
                "-o", " ".join(options), "-w", "start")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def wait_out_of_recovery(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(AssertionError):
                if self.sql("select pg_is_in_recovery()") == "f":
                    return
            time.sleep(0.05)
        raise AssertionError(f"{self.data} still in recovery after {timeout}s")

    def rows(self) -> list[int]:
        return [int(x) for x in self.sql("select i from drill order by i").split()]


def fork_to(config: Path, watch: Stopwatch, into: Path,
            target: datetime) -> tuple[dict[str, Any], float]:
    """`btar fork --target-time --start` from the secondary into ``into``: the restore part
    of its JSON (its steps added to ``watch``, the database running as the server user) and
    the seconds it took (the RTO)."""
    started = time.monotonic()
    with watch.step("btar fork --target-time"):
        code, out, err = btar("--config", str(config), "fork", "orders", "--region", SECONDARY,
                              "--target-time", iso(target), "--into", str(into), "--start",
                              "--json")
    seconds = time.monotonic() - started
    assert code == 0, err
    restored: dict[str, Any] = json.loads(out)["restore"]
    for step, took in restored["steps"]:
        watch.add(f"  fork: {step}", took)
    assert restored["running"]
    assert restored["user"] == USER.name
    return restored, seconds


def replicate_and_read_window(config: Path, watch: Stopwatch, commits: dict[int, datetime],
                              target: datetime) -> dict[str, Any]:
    """Enable the secondary, `btar sync --once --strict`, and read the windows: the
    secondary's ends where the primary's does, at the last commit (read from the WAL itself;
    autovacuum is off), and holds ``target``. Returns the secondary's window as JSON."""
    code, _, err = btar("--config", str(config), "enable", "orders", "--region", SECONDARY)
    assert code == 0, err
    with watch.step("btar sync --once"):
        code, out, err = btar("--config", str(config), "sync", "--once", "--strict")
    assert code == 0, err
    assert "published" in out
    code, out, err = btar("--config", str(config), "window", "orders", "--json")
    assert code == 0, err
    windows = {w["role"]: w for w in json.loads(out)["regions"]}
    secondary: dict[str, Any] = windows["secondary"]
    assert secondary["end"] == windows["primary"]["end"]
    assert parse_iso(secondary["end"]) == max(commits.values())
    assert parse_iso(secondary["start"]) <= target
    return secondary


def commit_batch(source: Postgres, batch: int) -> str:
    """Commit batch ``batch`` of rows into table ``drill``, closed by a WAL switch: the name
    of the segment it closed."""
    for k in range(ROWS_PER_BATCH):
        source.sql(f"insert into drill (i, batch) values "
                   f"({batch * ROWS_PER_BATCH + k + 1}, {batch})")
    return source.sql("select pg_walfile_name(pg_switch_wal())")


def archived_commits(source: Postgres, last_segment: str) -> dict[int, datetime]:
    """Once ``last_segment`` is archived, the commit time of each row of ``drill``."""
    deadline = time.monotonic() + 60
    while (source.sql("select coalesce(last_archived_wal, '') from pg_stat_archiver")
           < last_segment):
        assert time.monotonic() < deadline, "WAL not archived"
        time.sleep(0.05)
    return {int(i): parse_iso(t) for i, t in (
        line.split("|") for line in source.sql(
            "select i, pg_xact_commit_timestamp(xmin) from drill order by i").splitlines())}


def commit_in_batches(source: Postgres) -> tuple[dict[int, datetime], datetime]:
    """Commit BATCHES batches of rows, PAUSE apart, and wait until the last is archived. The
    commit time of each row, and a target halfway between batches 1 and 2 (rows of batches 0
    and 1 at or before it)."""
    last_segment = ""
    for batch in range(BATCHES):
        last_segment = commit_batch(source, batch)
        if batch < BATCHES - 1:
            time.sleep(PAUSE)
    commits = archived_commits(source, last_segment)
    batch_of = {i: (i - 1) // ROWS_PER_BATCH for i in commits}
    before = max(t for i, t in commits.items() if batch_of[i] == 1)
    after = min(t for i, t in commits.items() if batch_of[i] == 2)
    target = before + (after - before) / 2
    assert sorted(i for i, t in commits.items() if t <= target) == \
        list(range(1, 2 * ROWS_PER_BATCH + 1))
    return commits, target


def incremental_round(conf: Path, config: Path, source: Postgres, env: dict[str, str],
                      watch: Stopwatch, repo: Path,
                      copy: Path) -> tuple[dict[int, datetime], dict[str, Any]]:
    """A second `btar sync --once`, within the full listing interval of the first: listed
    incrementally (docs/pgbackrest-layout.md). An incremental backup and a batch of rows
    after it are found, the backup through its kept manifest, and copied whole: its folder,
    kept manifest and backup history file, with backup.info and archive.info mirrored again.
    The commit time of every row, and the secondary's window as JSON."""
    assert USER is not None
    with watch.step("backup (incr) + a batch of rows"):
        pgbackrest(USER, conf, env, "--type=incr", "backup")
        commits = archived_commits(source, commit_batch(source, BATCHES))
    label = json.loads(pgbackrest(USER, conf, env, "--output=json", "info"))[0]["backup"][-1][
        "label"]
    assert label.endswith("I")
    full_listed = full_listings(config)
    with watch.step("btar sync --once (incremental listing)"):
        code, out, err = btar("--config", str(config), "sync", "--once", "--strict")
    assert code == 0, err
    assert full_listings(config) == full_listed  # no full listing in between
    own = [p.relative_to(repo) for p in repo.rglob("*") if p.is_file() and label in str(p)]
    assert any(p.name == "backup.manifest" for p in own)
    assert any(p.name.endswith(".manifest.gz") for p in own)  # the kept manifest
    for relative in [*own, Path("backup", STANZA, "backup.info"),
                     Path("archive", STANZA, "archive.info")]:
        assert (copy / relative).read_bytes() == (repo / relative).read_bytes(), relative
    backup_files = sorted(p.name for p in repo.rglob("*.backup"))
    assert sorted(p.name for p in copy.rglob("*.backup")) == backup_files
    code, out, err = btar("--config", str(config), "window", "orders", "--json")
    assert code == 0, err
    windows = {w["role"]: w for w in json.loads(out)["regions"]}
    assert parse_iso(windows["secondary"]["end"]) == max(commits.values())
    return commits, windows["secondary"]


def full_listings(config: Path) -> list[tuple[str, str]]:
    """When each service's primary was last listed in full, from the catalog beside
    ``config``."""
    with contextlib.closing(sqlite3.connect(config.parent / "btar.sqlite")) as catalog:
        return catalog.execute("select service, at from full_listings").fetchall()


def stop_forks(user: OsUser, env: dict[str, str], *folders: Path) -> None:
    for folder in folders:
        Postgres(user, folder / "data", folder / "run", 0, env).stop()


def pgbackrest(user: OsUser, config: Path, env: dict[str, str], *args: str) -> str:
    return run(user, ["pgbackrest", f"--config={config}", f"--stanza={STANZA}", *args],
               env=env, timeout=300)


def write_btar_config(root: Path, backend: str, primary_s3: MotoProcess | None,
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
    config.write_text(
        f'catalog = "btar.sqlite"\n\n[regions]\n{regions}\n'
        '[[services]]\nname = "orders"\ntype = "postgresql"\n'
        f'region = "{PRIMARY}"\nlayout = "pgbackrest"\nstanza = "{STANZA}"\n')
    return config


def upload_repository(repo: Path, config: Path) -> int:
    """Put the posix repository into the primary bucket, key for key (the `latest` symlink is
    a local convenience pgBackRest does not keep on object stores)."""
    from engine.config import load_config
    from engine.storage.locations import open_location

    loaded = load_config(config)
    storage = open_location(loaded.config.regions[PRIMARY], PRIMARY)
    count = 0
    try:
        for path in sorted(repo.rglob("*")):
            if path.is_file() and not path.is_symlink():
                storage.write(f"orders/{path.relative_to(repo).as_posix()}", path.read_bytes())
                count += 1
    finally:
        storage.close()
    return count


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
def test_postgresql_pgbackrest_drill(backend: str, request: pytest.FixtureRequest) -> None:
    assert USER is not None
    watch = Stopwatch(f"PostgreSQL 15 + pgBackRest, {backend} backend")
    with owned_folder(USER, "pg") as root, s3_servers(backend, request) as (primary_s3, s3):
        env = {**os.environ, "HOME": str(root), "TZ": "UTC", "PGTZ": "UTC"}
        env = {k: v for k, v in env.items() if not k.startswith(("PGBACKREST_", "PGHOST"))}
        for folder in ("pg", "sock", "pgbackrest", "primary", "direct"):
            (root / folder).mkdir()
            os.chown(root / folder, USER.uid, USER.gid)
        repo = root / "primary" / "orders" if backend == "local" else root / "repo"
        source = Postgres(USER, root / "pg" / "data", root / "sock", free_port(), env)
        forks = [root / "fork-t", root / "fork-latest", root / "plain"]
        direct = Postgres(USER, root / "direct" / "data", root / "direct", free_port(), env)
        try:
            run_drill(backend, root, repo, source, direct, forks, env, watch, primary_s3, s3)
        finally:
            source.stop()
            direct.stop()
            stop_forks(USER, env, *forks)


def run_drill(backend: str, root: Path, repo: Path, source: Postgres, direct: Postgres,
              forks: list[Path], env: dict[str, str], watch: Stopwatch,
              primary_s3: MotoProcess | None, s3: MotoS3 | None) -> None:
    assert USER is not None
    conf = root / "pgbackrest.conf"
    conf.write_text("\n".join([
        "[global]", "repo1-type=posix", f"repo1-path={repo}", "repo1-bundle=y",
        "repo1-retention-full=2", f"log-path={root}/pgbackrest", f"lock-path={root}/pgbackrest",
        f"spool-path={root}/pgbackrest", "start-fast=y", "log-level-console=warn", "",
        f"[{STANZA}]", f"pg1-path={source.data}", f"pg1-port={source.port}",
        f"pg1-socket-path={source.sockets}", ""]))
    with watch.step("initdb + start"):
        source.pg("initdb", "--no-sync", "-U", "postgres", "-A", "trust", "-D", str(source.data))
        with (source.data / "postgresql.conf").open("a") as cfg:
            cfg.write("\n".join([
                f"port = {source.port}", f"unix_socket_directories = '{source.sockets}'",
                "listen_addresses = ''", "wal_level = replica", "archive_mode = on",
                f"archive_command = 'pgbackrest --config={conf} --stanza={STANZA} "
                "archive-push %p'", "track_commit_timestamp = on", "autovacuum = off", ""]))
        source.start()
    with watch.step("stanza-create"):
        pgbackrest(USER, conf, env, "stanza-create")
    with watch.step("backup (full)"):
        pgbackrest(USER, conf, env, "--type=full", "backup")
    label = json.loads(pgbackrest(USER, conf, env, "--output=json", "info"))[0]["backup"][-1][
        "label"]
    source.sql("create table drill (i int primary key, batch int not null, "
               "at timestamptz not null default clock_timestamp())")
    with watch.step("rows (4 batches)"):
        commits, target = commit_in_batches(source)
    expected_at_target = sorted(i for i, t in commits.items() if t <= target)

    config = write_btar_config(root, backend, primary_s3, s3)
    if backend == "s3":
        with watch.step("upload repo to S3"):
            assert upload_repository(repo, config) > 0
    secondary = replicate_and_read_window(config, watch, commits, target)
    if backend == "local":
        assert_byte_identical(repo, root / "secondary" / "orders")
        commits, secondary = incremental_round(conf, config, source, env, watch, repo,
                                               root / "secondary" / "orders")

    # Baseline: pgbackrest restore straight from the primary repository, same target.
    restore_started = time.monotonic()
    with watch.step("direct: pgbackrest restore"):
        pgbackrest(USER, conf, env, f"--pg1-path={direct.data}", f"--set={label}",
                   "--type=time", f"--target={target:%Y-%m-%d %H:%M:%S.%f}+00",
                   "--target-action=promote", "--archive-mode=off", "restore")
    with watch.step("direct: start + recovery"):
        direct.start(f"-p {direct.port}", "-c archive_mode=off",
                     f"-c unix_socket_directories='{direct.sockets}'")
        direct.wait_out_of_recovery()
    rto_direct = time.monotonic() - restore_started
    assert direct.rows() == expected_at_target
    direct.stop()

    # The primary region goes away, with the database.
    source.stop()
    if backend == "local":
        (root / "primary").rename(root / "primary.gone")
    else:
        assert primary_s3 is not None
        primary_s3.stop()

    restored, rto_btar = fork_to(config, watch, forks[0], target)
    fork = Postgres(USER, forks[0] / "data", forks[0] / "run", restored["port"], env)
    assert fork.sql("select pg_is_in_recovery()") == "f"
    assert fork.rows() == expected_at_target
    assert fork.sql("show archive_mode") == "off"
    fork.stop()

    with watch.step("btar fork --latest"):
        code, out, err = btar("--config", str(config), "fork", "orders", "--region", SECONDARY,
                              "--latest", "--into", str(forks[1]), "--start", "--json")
    assert code == 0, err
    latest = Postgres(USER, forks[1] / "data", forks[1] / "run", json.loads(out)["restore"]["port"],
                      env)
    assert latest.rows() == sorted(commits)
    latest.stop()

    with watch.step("plain pgbackrest restore from the secondary"):
        plain = plain_restore(root, backend, config, env, target)
    assert plain.rows() == expected_at_target
    plain.stop()

    past = parse_iso(secondary["end"]) + timedelta(hours=1)
    code, out, err = btar("--config", str(config), "fork", "orders", "--region", SECONDARY,
                          "--target-time", iso(past), "--into", str(root / "fork-past"))
    assert code == 3, err
    assert f"outside the restorable window of {SECONDARY}" in err
    assert secondary["start"] in err
    assert secondary["end"] in err
    assert not (root / "fork-past" / "data").exists()

    watch.report(f"target {iso(target)}: {len(expected_at_target)} of {len(commits)} rows",
                 f"RTO btar fork from {SECONDARY} (fetch + restore + start + recovery): "
                 f"{rto_btar:.2f} s",
                 f"RTO pgbackrest restore from the primary repository (restore + start + "
                 f"recovery): {rto_direct:.2f} s",
                 f"at {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}")


def secondary_repository(root: Path, backend: str, config: Path) -> Path:
    """The secondary region's copy of the repository as a folder pgBackRest reads: the
    location itself (local), or every key under the service's prefix downloaded (S3:
    pgBackRest's S3 client needs TLS, which moto does not speak)."""
    assert USER is not None
    if backend == "local":
        repo = root / "secondary" / "orders"
    else:
        from engine.config import load_config
        from engine.storage.locations import open_location

        repo = root / "secondary-download"
        storage = open_location(load_config(config).config.regions[SECONDARY], SECONDARY)
        try:
            for info in storage.iter_objects("orders/"):
                path = repo / info.key.removeprefix("orders/")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(storage.read_bytes(info.key))
        finally:
            storage.close()
    chown_tree(repo, USER)  # btar ran as root; the server user reads the copy
    return repo


def plain_restore(root: Path, backend: str, config: Path, env: dict[str, str],
                  target: datetime) -> Postgres:
    """`pgbackrest restore` of ``target`` from the secondary's copy, by pgBackRest alone (no
    --set: it picks the backup from the mirrored backup.info), then the cluster started
    (its restore_command is pgBackRest's archive-get from the same copy)."""
    assert USER is not None
    repo = secondary_repository(root, backend, config)
    plain = root / "plain"
    plain.mkdir()
    os.chown(plain, USER.uid, USER.gid)
    conf = plain / "pgbackrest.conf"
    conf.write_text("\n".join([
        "[global]", "repo1-type=posix", f"repo1-path={repo}", f"log-path={plain}",
        f"lock-path={plain}", f"spool-path={plain}", "log-level-console=warn", "",
        f"[{STANZA}]", f"pg1-path={plain / 'data'}", ""]))
    pgbackrest(USER, conf, env, "--type=time", f"--target={target:%Y-%m-%d %H:%M:%S.%f}+00",
               "--target-action=promote", "--archive-mode=off", "restore")
    db = Postgres(USER, plain / "data", plain / "run", free_port(), env)
    (plain / "run").mkdir()
    os.chown(plain / "run", USER.uid, USER.gid)
    db.start(f"-p {db.port}", "-c archive_mode=off", f"-c unix_socket_directories='{db.sockets}'")
    db.wait_out_of_recovery()
    return db


def assert_byte_identical(primary: Path, secondary: Path) -> None:
    """Every object btar copied is the primary's, bytes and relative path alike."""
    copied = [p for p in secondary.rglob("*") if p.is_file()]
    assert copied
    for path in copied:
        relative = path.relative_to(secondary)
        assert path.read_bytes() == (primary / relative).read_bytes(), relative

"""Disaster-recovery drill: PostgreSQL 15 + Barman Cloud 3.4, replicated by btar, restored in
the secondary region while the primary region is gone (docs/barman-cloud-layout.md).

A real cluster archives its WAL with barman-cloud-wal-archive into a bucket of a moto S3
server running in its own process (the primary region), barman-cloud-backup takes a backup
into the same bucket, and rows are committed in batches a second and a half apart (commit
timestamps recorded with track_commit_timestamp). Nothing else runs at the primary: no btar
step after a backup. `btar sync --once` copies everything to the secondary bucket (the
session's moto server); a second backup and more rows follow, which a second sync finds by
listing the prefix incrementally (no full listing in between). Then the primary goes away
(its S3 server stopped, the database with it) and `btar fork` restores from the secondary
with barman-cloud-restore and barman-cloud-wal-restore: to a time between two batches, then
to latest; a target past the window is refused. A barman-cloud-restore straight from the
primary to the same target, taken before the outage, gives the RTO to compare with.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.model import iso, parse_iso
from tests.drills.test_postgresql_drill import (
    BATCHES,
    Postgres,
    archived_commits,
    commit_batch,
    commit_in_batches,
    fork_to,
    full_listings,
    replicate_and_read_window,
    stop_forks,
)
from tests.drills.tools import (
    MotoProcess,
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

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PRIMARY, SECONDARY = "aws-eu-west-1", "aws-eu-central-1"
PRIMARY_BUCKET = "btar-barman-primary"
SERVER = "pg"
USER = server_user("postgres")
MISSING = missing_tools(str(PG_BIN / "initdb"), "barman-cloud-backup", "barman-cloud-restore",
                        "barman-cloud-wal-archive", "barman-cloud-wal-restore", "setpriv")
HINT = "apt-get install -y postgresql barman-cli-cloud"

pytestmark = [
    pytest.mark.drill,
    pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)} ({HINT})"),
    pytest.mark.skipif(USER is None, reason="needs the postgres OS user to run PostgreSQL"),
]


def write_btar_config(root: Path, prefix: str, primary: MotoProcess, secondary: MotoS3,
                      backend: str) -> Path:
    if backend == "local":
        (root / "secondary").mkdir()  # as an operator would: btar creates no location
        copy = f'"file://{root}/secondary"'
    else:
        copy = (f'{{ url = "s3://{secondary.bucket(SECONDARY)}/{prefix}", '
                f'endpoint_url = "{secondary.endpoint}" }}')
    config = root / "btar" / "btar.toml"
    config.parent.mkdir()
    config.write_text(
        'catalog = "btar.sqlite"\n\n[regions]\n'
        f'{PRIMARY} = {{ url = "s3://{PRIMARY_BUCKET}/{prefix}", '
        f'endpoint_url = "{primary.endpoint}" }}\n'
        f'{SECONDARY} = {copy}\n\n'
        '[[services]]\nname = "orders"\ntype = "postgresql"\n'
        f'region = "{PRIMARY}"\nlayout = "barman-cloud"\nserver = "{SERVER}"\n')
    return config


@pytest.mark.parametrize("backend", ["s3", "local"])
def test_postgresql_barman_cloud_drill(backend: str, moto_s3: MotoS3) -> None:
    """The secondary is a bucket (barman-cloud reads the copy there) or a local folder
    (barman-cloud reads no folder: btar restores from its verified staging copy)."""
    assert USER is not None
    watch = Stopwatch(f"PostgreSQL 15 + Barman Cloud 3.4, primary S3 (moto), secondary "
                      f"{backend}")
    with owned_folder(USER, "barman") as root, moto_process() as primary_s3:
        primary_s3.create_bucket(PRIMARY_BUCKET, "eu-west-1")
        env = {**os.environ, "HOME": str(root), "TZ": "UTC", "PGTZ": "UTC",
               "AWS_DEFAULT_REGION": "eu-west-1"}
        env = {k: v for k, v in env.items() if not k.startswith(("PGHOST", "PGPORT"))}
        for folder in ("pg", "sock", "direct", "tbs", "direct-tbs"):
            (root / folder).mkdir()
            os.chown(root / folder, USER.uid, USER.gid)
        source = Postgres(USER, root / "pg" / "data", root / "sock", free_port(), env)
        direct = Postgres(USER, root / "direct" / "data", root / "direct", free_port(), env)
        forks = [root / "fork-t", root / "fork-latest", root / "fork-start"]
        try:
            run_drill(root, source, direct, forks, env, watch, primary_s3, moto_s3, backend)
        finally:
            source.stop()
            direct.stop()
            stop_forks(USER, env, *forks)


def run_drill(root: Path, source: Postgres, direct: Postgres, forks: list[Path],
              env: dict[str, str], watch: Stopwatch, primary_s3: MotoProcess,
              s3: MotoS3, backend: str) -> None:
    assert USER is not None
    prefix = uuid.uuid4().hex
    # barman-cloud's URL is the service's place in the primary location: <location>/<prefix>
    url = f"s3://{PRIMARY_BUCKET}/{prefix}/orders"
    cloud = ["--endpoint-url", primary_s3.endpoint]
    with watch.step("initdb + start"):
        source.pg("initdb", "--no-sync", "-U", "postgres", "-A", "trust", "-D", str(source.data))
        with (source.data / "postgresql.conf").open("a") as cfg:
            cfg.write("\n".join([
                f"port = {source.port}", f"unix_socket_directories = '{source.sockets}'",
                "listen_addresses = ''", "wal_level = replica", "archive_mode = on",
                f"archive_command = 'barman-cloud-wal-archive -z {' '.join(cloud)} {url} "
                f"{SERVER} %p'", "track_commit_timestamp = on", "autovacuum = off", ""]))
        source.start()
    # The rows live in a tablespace: the fork relocates it under its own folder.
    source.sql(f"create tablespace tbs location '{root / 'tbs'}'")
    source.sql("create table drill (i int primary key, batch int not null, "
               "at timestamptz not null default clock_timestamp()) tablespace tbs")
    with watch.step("barman-cloud-backup"):
        run(USER, ["barman-cloud-backup", "-z", "--immediate-checkpoint", *cloud,
                   "-h", str(source.sockets), "-p", str(source.port), "-U", "postgres",
                   url, SERVER], env=env, timeout=300)
    with watch.step("rows (4 batches)"):
        commits, target = commit_in_batches(source)
    expected_at_target = sorted(i for i, t in commits.items() if t <= target)

    config = write_btar_config(root, prefix, primary_s3, s3, backend)
    secondary = replicate_and_read_window(config, watch, commits, target)
    assert_same_objects(primary_s3.endpoint, s3, prefix,
                        root / "secondary" if backend == "local" else None)

    # Baseline: Barman's own restore straight from the primary bucket, same target. The
    # primary is the same in both variants: the S3 one measures it, the local one saves the
    # time (the suite has 15 minutes).
    rto_direct: float | None = None
    if backend == "s3":
        rto_direct = restore_directly(root, direct, env, cloud, url, target, watch)
        assert direct.rows() == expected_at_target
        direct.stop()

    commits, secondary = second_backup_round(config, source, env, cloud, url, watch)
    assert_same_objects(primary_s3.endpoint, s3, prefix,
                        root / "secondary" if backend == "local" else None)
    verified = verified_by(config.parent / "btar.sqlite")
    assert all(verified.values()), verified  # no copy published unverified

    # The primary region goes away, with the database.
    source.stop()
    primary_s3.stop()

    restored, rto_btar = fork_to(config, watch, forks[0], target)
    if backend == "s3":
        assert restored["tool"] == "barman-cloud"
        assert any(c.startswith("barman-cloud-restore ") and s3.endpoint in c
                   for c in restored["commands"])
    fork = Postgres(USER, forks[0] / "data", forks[0] / "run", restored["port"], env)
    assert fork.sql("select pg_is_in_recovery()") == "f"
    assert fork.rows() == expected_at_target
    assert fork.sql("show archive_mode") == "off"
    oid = fork.sql("select oid from pg_tablespace where spcname = 'tbs'")
    assert (forks[0] / "data" / "pg_tblspc" / oid).resolve() == \
        (forks[0] / "tablespaces" / oid).resolve()
    assert ("barman-cloud-wal-restore" in fork.sql("show restore_command")) == (backend == "s3")
    fork.stop()

    with watch.step("btar fork --latest"):
        code, out, err = btar("--config", str(config), "fork", "orders", "--region", SECONDARY,
                              "--latest", "--into", str(forks[1]), "--start", "--json")
    assert code == 0, err
    latest = Postgres(USER, forks[1] / "data", forks[1] / "run",
                      json.loads(out)["restore"]["port"], env)
    assert latest.rows() == sorted(commits)
    latest.stop()

    # The window's first point: the backup's own WAL (begin_wal .. end_wal) is all it needs.
    start = parse_iso(secondary["start"])
    with watch.step("btar fork --target-time <window start>"):
        code, out, err = btar("--config", str(config), "fork", "orders", "--region", SECONDARY,
                              "--target-time", iso(start), "--into", str(forks[2]), "--start",
                              "--json")
    assert code == 0, err
    first = Postgres(USER, forks[2] / "data", forks[2] / "run",
                     json.loads(out)["restore"]["port"], env)
    at_start = sorted(i for i, t in commits.items() if t <= start)
    assert first.rows() == at_start
    first.stop()

    past = parse_iso(secondary["end"]) + timedelta(hours=1)
    code, out, err = btar("--config", str(config), "fork", "orders", "--region", SECONDARY,
                          "--target-time", iso(past), "--into", str(root / "fork-past"))
    assert code == 3, err
    assert f"outside the restorable window of {SECONDARY}" in err
    assert not (root / "fork-past" / "data").exists()

    watch.report(f"window {SECONDARY}: {secondary['start']} .. {secondary['end']}",
                 f"target {iso(target)}: {len(expected_at_target)} of {len(commits)} rows; "
                 f"window start: {len(at_start)}; latest: {len(commits)}",
                 f"RTO btar fork from {SECONDARY} (fetch + restore + start + recovery): "
                 f"{rto_btar:.2f} s",
                 f"RTO barman-cloud-restore from the primary bucket (restore + start + "
                 f"recovery): {rto_direct:.2f} s" if rto_direct is not None
                 else "RTO barman-cloud-restore from the primary bucket: see the s3 variant",
                 *(f"copies of {kind} verified by: {how}" for kind, how in verified.items()),
                 f"at {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}")


def restore_directly(root: Path, direct: Postgres, env: dict[str, str], cloud: list[str],
                     url: str, target: datetime, watch: Stopwatch) -> float:
    """barman-cloud-restore and recovery straight from the primary bucket to ``target``, into
    ``direct``, left running: the seconds it took."""
    restore_started = time.monotonic()
    with watch.step("direct: barman-cloud-restore"):
        backup_id = json.loads(run(USER, ["barman-cloud-backup-list", *cloud, "--format=json",
                                          url, SERVER], env=env))["backups_list"][-1]["backup_id"]
        run(USER, ["barman-cloud-restore", *cloud, f"--tablespace=tbs:{root / 'direct-tbs'}",
                   url, SERVER, backup_id, str(direct.data)], env=env, timeout=300)
        with (direct.data / "postgresql.auto.conf").open("a") as cfg:
            cfg.write(f"restore_command = 'barman-cloud-wal-restore {' '.join(cloud)} {url} "
                      f"{SERVER} %f %p'\nrecovery_target_time = "
                      f"'{target:%Y-%m-%d %H:%M:%S.%f}+00'\nrecovery_target_action = "
                      "'promote'\n")
        (direct.data / "recovery.signal").touch()
        os.chown(direct.data / "recovery.signal", USER.uid, USER.gid)
    with watch.step("direct: start + recovery"):
        direct.start(f"-p {direct.port}", "-c archive_mode=off",
                     f"-c unix_socket_directories='{direct.sockets}'")
        direct.wait_out_of_recovery()
    return time.monotonic() - restore_started


def second_backup_round(config: Path, source: Postgres, env: dict[str, str], cloud: list[str],
                        url: str,
                        watch: Stopwatch) -> tuple[dict[int, datetime], dict[str, Any]]:
    """A second backup and a batch of rows after it, then a second `btar sync --once` within
    the full listing interval of the first: listed incrementally (the WAL and each
    backup.info after their cursors; docs/barman-cloud-layout.md), the backup's folder, its
    tablespace's tar sorting before its backup.info, listed once backup.info is read. The
    commit time of every row, and the secondary's window as JSON."""
    assert USER is not None
    with watch.step("barman-cloud-backup (second) + a batch of rows"):
        run(USER, ["barman-cloud-backup", "-z", "--immediate-checkpoint", *cloud,
                   "-h", str(source.sockets), "-p", str(source.port), "-U", "postgres",
                   url, SERVER], env=env, timeout=300)
        commits = archived_commits(source, commit_batch(source, BATCHES))
    full_listed = full_listings(config)
    with watch.step("btar sync --once (incremental listing)"):
        code, out, err = btar("--config", str(config), "sync", "--once", "--strict")
    assert code == 0, err
    assert full_listings(config) == full_listed  # no full listing in between
    code, out, err = btar("--config", str(config), "window", "orders", "--json")
    assert code == 0, err
    windows = {w["role"]: w for w in json.loads(out)["regions"]}
    assert parse_iso(windows["secondary"]["end"]) == max(commits.values())
    return commits, windows["secondary"]


def verified_by(catalog: Path) -> dict[str, str]:
    """How the secondary's copies were verified, per kind of object (the catalog's record)."""
    import sqlite3

    kinds = {"tar": "%.tar%", "backup.info": "%/backup.info", "WAL": "%/wals/%"}
    with contextlib.closing(sqlite3.connect(catalog)) as db:
        return {kind: ", ".join(sorted({row[0] for row in db.execute(
            "select verified_by from objects where region = ? and key like ?",
            (SECONDARY, pattern))})) for kind, pattern in kinds.items()}


def assert_same_objects(primary_endpoint: str, s3: MotoS3, prefix: str,
                        folder: Path | None) -> None:
    """What Barman needs is in the secondary bucket under the same keys, byte for byte."""
    import boto3

    def objects(endpoint: str, bucket: str, region: str) -> dict[str, bytes]:
        client = boto3.session.Session().client("s3", region_name=region,
                                                endpoint_url=endpoint)
        try:
            found: dict[str, bytes] = {}
            for page in client.get_paginator("list_objects_v2").paginate(
                    Bucket=bucket, Prefix=f"{prefix}/"):
                for entry in page.get("Contents", []):
                    body = client.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
                    found[entry["Key"]] = body
            return found
        finally:
            client.close()

    source = objects(primary_endpoint, PRIMARY_BUCKET, "eu-west-1")
    if folder is None:
        copy = objects(s3.endpoint, s3.bucket(SECONDARY), "eu-central-1")
    else:
        copy = {f"{prefix}/{p.relative_to(folder).as_posix()}": p.read_bytes()
                for p in folder.rglob("*") if p.is_file()}
    # .backup files are not copied: recovery never reads them
    wanted = {k: v for k, v in source.items() if ".backup" not in k}
    assert copy == wanted
    assert any(k.endswith("/backup.info") for k in copy)

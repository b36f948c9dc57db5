"""Disaster-recovery drill across a timeline switch: PostgreSQL 15 + pgBackRest 2.45, the
primary itself restored to a point in time (a new timeline), replicated by btar and forked in
the secondary region while the primary region is gone (docs/pgbackrest-layout.md, Timelines).

The sequence: a full backup B1 on timeline 1; rows B01-B20 (a pause between B10 and B11); the
primary restored with pgBackRest to a time between B10 and B11 (`--type=time
--target-action=promote`), so it continues on timeline 2 and B11-B20 are abandoned; rows
C01-C08; an incremental backup B2 on timeline 2; rows C09-C16. The repository is the primary
location (directly, or uploaded into a moto S3 bucket, as in test_postgresql_drill), synced
with no step at the primary besides pgBackRest (the incremental backup B2 is an item once its
backup.manifest is there; backup.info is mirrored once B1 and B2 are published), then the
primary goes away and btar forks from the secondary copy:

(a) timeline 2 before B2, (b) timeline 2 after B2 (restored from B2), (c) between the switch
and the first timeline-2 commit, (d) timeline 1 before the switch, (e) --latest, and (f) a
point only on the abandoned branch with --timeline 1. Every fork's rows are compared, row by
row, with what the database held on the branch recovery follows (rows with their commit
timestamps, from the primary itself).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.formats.pgbackrest import parse_ini
from engine.model import iso, parse_iso
from tests.drills.test_postgresql_drill import (
    MISSING,
    PRIMARY,
    SECONDARY,
    STANZA,
    USER,
    Postgres,
    pgbackrest,
    s3_servers,
    stop_forks,
    upload_repository,
    write_btar_config,
)
from tests.drills.tools import DEBIAN_HINT, MotoProcess, Stopwatch, btar, free_port, owned_folder
from tests.integration.s3_server import MotoS3

pytestmark = [
    pytest.mark.drill,
    pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)} ({DEBIAN_HINT})"),
    pytest.mark.skipif(USER is None, reason="needs the postgres OS user to run PostgreSQL"),
]

Row = tuple[int, str, str]  # id, tag, commit timestamp (ISO, from the primary)
FORKS = ("a-tl2-before-b2", "b-tl2-after-b2", "c-after-switch", "d-tl1-before-switch",
         "e-latest", "f-abandoned-branch")


def insert(db: Postgres, tag: str, key: int) -> None:
    db.sql(f"insert into drill (i, tag) values ({key}, '{tag}')")


def snapshot(db: Postgres) -> list[Row]:
    """Every row with its commit timestamp, in key order."""
    rows: list[Row] = []
    for line in db.sql("select i, tag, pg_xact_commit_timestamp(xmin) from drill "
                       "order by i").splitlines():
        key, tag, at = line.split("|")
        rows.append((int(key), tag, iso(parse_iso(at))))
    return rows


def rows_of(db: Postgres) -> list[Row]:
    return snapshot(db)


def at(rows: list[Row], moment: datetime) -> list[Row]:
    """What a branch held at ``moment``: its rows committed at or before it."""
    return [r for r in rows if parse_iso(r[2]) <= moment]


def commit_time(rows: list[Row], tag: str) -> datetime:
    return next(parse_iso(r[2]) for r in rows if r[1] == tag)


def between(rows: list[Row], before: str, after: str) -> datetime:
    low, high = commit_time(rows, before), commit_time(rows, after)
    return low + (high - low) / 2


def switch_and_archive(db: Postgres) -> None:
    last = db.sql("select pg_walfile_name(pg_switch_wal())")
    deadline = time.monotonic() + 60
    while db.sql("select coalesce(last_archived_wal, '') from pg_stat_archiver") < last:
        assert time.monotonic() < deadline, f"{last} not archived"
        time.sleep(0.05)


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_timeline_drill(backend: str, request: pytest.FixtureRequest) -> None:
    assert USER is not None
    watch = Stopwatch(f"PostgreSQL 15 + pgBackRest across a timeline switch, {backend}")
    with owned_folder(USER, "tl") as root, s3_servers(backend, request) as (primary_s3, s3):
        env = {**os.environ, "HOME": str(root), "TZ": "UTC", "PGTZ": "UTC"}
        env = {k: v for k, v in env.items() if not k.startswith(("PGBACKREST_", "PGHOST"))}
        for folder in ("pg", "sock", "pgbackrest", "primary"):
            (root / folder).mkdir()
            os.chown(root / folder, USER.uid, USER.gid)
        repo = root / "primary" / "orders" if backend == "local" else root / "repo"
        source = Postgres(USER, root / "pg" / "data", root / "sock", free_port(), env)
        forks = [root / f"fork-{name}" for name in FORKS]
        try:
            run_drill(backend, root, repo, source, forks, env, watch, primary_s3, s3)
        finally:
            source.stop()
            stop_forks(USER, env, *forks)


def run_drill(backend: str, root: Path, repo: Path, source: Postgres, forks: list[Path],
              env: dict[str, str], watch: Stopwatch, primary_s3: MotoProcess | None,
              s3: MotoS3 | None) -> None:
    assert USER is not None
    conf = root / "pgbackrest.conf"
    conf.write_text("\n".join([
        "[global]", "repo1-type=posix", f"repo1-path={repo}", "repo1-bundle=y",
        f"log-path={root}/pgbackrest", f"lock-path={root}/pgbackrest",
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
        pgbackrest(USER, conf, env, "stanza-create")
    with watch.step("B1: full backup on timeline 1"):
        pgbackrest(USER, conf, env, "--type=full", "backup")
    source.sql("create table drill (i int primary key, tag text not null)")
    with watch.step("rows B01-B20"):
        for n in range(1, 21):
            insert(source, f"B{n:02d}", n)
            time.sleep(1.0 if n == 10 else 0.05)
        switch_and_archive(source)
    timeline1 = snapshot(source)
    assert [r[1] for r in timeline1] == [f"B{n:02d}" for n in range(1, 21)]
    pitr = between(timeline1, "B10", "B11")

    with watch.step("PITR of the primary (timeline 2)"):
        source.stop()
        pgbackrest(USER, conf, env, "--delta", "--type=time",
                   f"--target={pitr:%Y-%m-%d %H:%M:%S.%f}+00", "--target-action=promote",
                   "restore")
        source.start()
        source.wait_out_of_recovery()
        assert source.sql("select timeline_id from pg_control_checkpoint()") == "2" or \
            source.sql("select pg_walfile_name(pg_current_wal_lsn())").startswith("00000002")
    promoted = datetime.now(UTC)
    time.sleep(1.5)  # a stretch of timeline 2 without commits: fork (c) lands in it
    with watch.step("rows C01-C08, B2 (incremental), C09-C16"):
        for n in range(1, 9):
            insert(source, f"C{n:02d}", 100 + n)
            time.sleep(0.3 if n == 4 else 0.05)
        switch_and_archive(source)
        pgbackrest(USER, conf, env, "--type=incr", "backup")
        time.sleep(0.5)
        for n in range(9, 17):
            insert(source, f"C{n:02d}", 100 + n)
            time.sleep(0.3 if n == 12 else 0.05)
        switch_and_archive(source)
    timeline2 = snapshot(source)
    assert [r[1] for r in timeline2] == [*(f"B{n:02d}" for n in range(1, 11)),
                                         *(f"C{n:02d}" for n in range(1, 17))]
    info = json.loads(pgbackrest(USER, conf, env, "--output=json", "info"))[0]["backup"]
    assert [b["type"] for b in info] == ["full", "incr"]
    b2_end = datetime.fromtimestamp(info[1]["timestamp"]["stop"], UTC)
    assert commit_time(timeline2, "C08") < b2_end < commit_time(timeline2, "C09")

    config = write_btar_config(root, backend, primary_s3, s3)
    if backend == "s3":
        with watch.step("upload repo to S3"):
            assert upload_repository(repo, config) > 0
    code, _, err = btar("--config", str(config), "enable", "orders", "--region", SECONDARY)
    assert code == 0, err
    with watch.step("btar sync --once --strict"):
        code, out, err = btar("--config", str(config), "sync", "--once", "--strict")
    assert code == 0, out + err
    code, out, err = btar("--config", str(config), "check")
    assert "misses" not in out, out  # no hole
    assert "cannot be read" not in out, out  # nothing refused
    assert "not mirrored" not in out, out  # backup.info lists B1 and B2, both published
    if backend == "local":  # the info files mirrored byte-identical, listing B1 and B2
        for name in ("backup/main/backup.info", "archive/main/archive.info"):
            mirrored = (root / "secondary" / "orders" / name).read_bytes()
            assert mirrored == (repo / name).read_bytes(), name
        listed = parse_ini((root / "secondary/orders/backup/main/backup.info").read_text())
        assert sorted(listed["backup:current"]) == [b["label"] for b in info]
    code, out, err = btar("--config", str(config), "window", "orders", "--json")
    assert code == 0, err
    windows = {w["role"]: w for w in json.loads(out)["regions"]}
    secondary = windows["secondary"]
    code, human, _ = btar("--config", str(config), "window", "orders")
    print("\n" + human + json.dumps(secondary, indent=1))
    assert secondary["timeline"] == "2"
    assert secondary["end"] == windows["primary"]["end"]
    assert parse_iso(secondary["end"]) == commit_time(timeline2, "C16")
    assert len(secondary["intervals"]) >= 1
    assert {i["timeline"] for i in secondary["intervals"]} == {"1", "2"}
    assert secondary["intervals"][-1]["timeline"] == "2"
    branches = {b["timeline"]: b for b in secondary["branches"]}
    assert branches["2"]["followed"]
    assert not branches["1"]["followed"]
    assert parse_iso(branches["1"]["intervals"][-1]["end"]) == commit_time(timeline1, "B20")
    # The timelines part at the commit the PITR stopped before (B11, its history says).
    assert parse_iso(branches["2"]["switch_at"]) == commit_time(timeline1, "B11")
    assert [(parse_iso(i["end"]), i["timeline"]) for i in secondary["intervals"]] == [
        (commit_time(timeline1, "B11"), "1"), (commit_time(timeline2, "C16"), "2")]

    # The primary region goes away, with the database.
    source.stop()
    if backend == "local":
        (root / "primary").rename(root / "primary.gone")
    else:
        assert primary_s3 is not None
        primary_s3.stop()

    targets: list[tuple[str, datetime | None, str | None, list[Row], str]] = [
        ("a", between(timeline2, "C04", "C05"), None, timeline2, "B1"),
        ("b", between(timeline2, "C12", "C13"), None, timeline2, "B2"),
        ("c", promoted + (commit_time(timeline2, "C01") - promoted) / 2, None, timeline2, "B1"),
        ("d", between(timeline1, "B05", "B06"), None, timeline2, "B1"),
        ("e", None, None, timeline2, "B2"),
        ("f", between(timeline1, "B15", "B16"), "1", timeline1, "B1"),
    ]
    bases = {"B1": info[0]["label"], "B2": info[1]["label"]}
    results: list[str] = []
    for (case, target, timeline, branch, base), into in zip(targets, forks, strict=True):
        argv = ["--config", str(config), "fork", "orders", "--region", SECONDARY,
                *(["--target-time", iso(target)] if target else ["--latest"]),
                *(["--timeline", timeline] if timeline else []),
                "--into", str(into), "--start", "--json"]
        with watch.step(f"fork ({case})"):
            code, out, err = btar(*argv)
        assert code == 0, f"fork ({case}): {err}"
        report = json.loads(out)
        plan = report["plan"]
        assert plan["base_backup"] == f"base/{bases[base]}", (case, plan)
        assert plan["timeline"] == (timeline or "2"), (case, plan)
        assert "history/2" in plan["histories"] or timeline == "1", (case, plan)
        fork = Postgres(USER, into / "data", into / "run", report["restore"]["port"], env)
        expected = branch if target is None else at(branch, target)
        got = rows_of(fork)
        assert got == expected, f"fork ({case}) to {target}: {got} != {expected}"
        results.append(f"({case}) {iso(target) if target else 'latest'}"
                       f"{' --timeline ' + timeline if timeline else ''}: {len(got)} rows "
                       f"{got[0][1]}..{got[-1][1]} from {plan['base_backup']}, timeline "
                       f"{plan['timeline']}, histories {plan['histories']}")
        fork.stop()

    # The abandoned branch is restorable only when asked for: by default the same time
    # restores timeline 2 (B01-B10), and a time past timeline 1's end is refused.
    code, out, err = btar("--config", str(config), "fork", "orders", "--region", SECONDARY,
                          "--target-time", iso(targets[5][1] or promoted), "--dry-run",
                          "--json")
    assert code == 0, err
    assert json.loads(out)["timeline"] == "2"
    past = commit_time(timeline1, "B20") + timedelta(seconds=1)
    code, out, err = btar("--config", str(config), "fork", "orders", "--region", SECONDARY,
                          "--target-time", iso(past), "--timeline", "1", "--dry-run")
    assert code == 3, err
    assert "along timeline 1" in err
    if backend == "local":
        with watch.step("a mislabelled switch segment: a hole"):
            (root / "primary.gone").rename(root / "primary")
            assert_a_mislabelled_switch_segment_is_a_hole(root, repo)
    watch.report(*results, f"PITR target {iso(pitr)}, promoted {iso(promoted)}",
                 f"at {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}")


def assert_a_mislabelled_switch_segment_is_a_hole(root: Path, repo: Path) -> None:
    """Timeline 2's first segment replaced by timeline 1's same segment under timeline 2's
    name (a real mislabel: every page says timeline 1, nothing opens 2): the reader refuses
    it, and a fresh replication reports the hole it leaves, with why, and fails --strict."""
    archive = next((repo / "archive" / STANZA).glob("15-*"))
    [opening] = sorted(archive.glob("0000000200000000/*.gz"))[:1]
    name = opening.name[:24]
    [parent] = archive.glob(f"0000000100000000/00000001{name[8:]}-*.gz")
    raw = gzip.decompress(parent.read_bytes())
    opening.unlink()
    (opening.parent / f"{name}-{hashlib.sha1(raw).hexdigest()}.gz").write_bytes(
        gzip.compress(raw))
    for folder in ("again", "again-btar"):
        (root / folder).mkdir()
    config = root / "again-btar" / "btar.toml"
    config.write_text(
        f'catalog = "btar.sqlite"\n\n[regions]\n{PRIMARY} = "file://{root}/primary"\n'
        f'{SECONDARY} = "file://{root}/again"\n\n[[services]]\nname = "orders"\n'
        f'type = "postgresql"\nregion = "{PRIMARY}"\nlayout = "pgbackrest"\n'
        f'stanza = "{STANZA}"\n')
    assert btar("--config", str(config), "enable", "orders", "--region", SECONDARY)[0] == 0
    code, out, err = btar("--config", str(config), "sync", "--once", "--strict")
    assert code == 1, out + err
    assert f"misses WAL {name} (timeline 2) in the middle of its chain (refused at the " \
        "primary" in out, out
    assert "nothing in it opens timeline 2" in out, out
    code, out, _ = btar("--config", str(config), "check")
    assert code == 2, out
    assert f"CRITICAL: orders: {SECONDARY} misses WAL {name}" in out, out
    print("\n" + out)


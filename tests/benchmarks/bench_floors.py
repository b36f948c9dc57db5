"""What btar pays whatever its scheduler does, against issue 17's unmet targets (on demand,
not collected by pytest).

    .venv/bin/python tests/benchmarks/bench_floors.py [--parts simulator,s3,local]

Each part measures a floor (work that any redesign of the pass still does, as the targets
define the job) and the budget a target leaves, in the same run:

- simulator (target 2: <= 20x a bare SimPy loop with the same events): the catalog writes one
  log segment needs with today's schema if nothing else were read or written (its items and
  objects rows in the primary and in the destination, both log runs, a lag sample and a copy
  attempt, in one transaction), timed on the catalog of the target's own shape (100 services,
  one-minute WAL, a base every 6 hours) after --hours virtual hours; the budget is 20 times
  what a bare SimPy loop spends per engine pass on the run's events.
- s3 (target 4: client CPU per 1,000 server-side copies <= 0.5x the cheaper peer): one
  CopyObject on btar's lean path alone (signing, the socket, parsing: no scheduler, no
  catalog), and `btar sync --once` with nothing left to copy (its start and listings, a fixed
  cost shared by the 2,000 copies of the catch-up), against rclone's client CPU for the same
  catch-up on the same moto server.
- local (target 5: the small catch-up <= 0.67x rclone + sync): `btar sync --once` with nothing
  left to copy, `cp -r` + sync (the kernel's copy and one flush, nothing hashed or recorded),
  and the SHA-256 of every object spread over the cores, against rclone + sync on the same
  2,000 x 64 KiB.

Every command runs as a program (tests/benchmarks/harness), the medians of --repeat runs.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.bench_simulator import bare_loop, scenario_text  # noqa: E402
from tests.benchmarks.harness import peers  # noqa: E402
from tests.benchmarks.harness.btar import BtarWorld, local_region, s3_region  # noqa: E402
from tests.benchmarks.harness.catalog_scale import installed_environment  # noqa: E402
from tests.benchmarks.harness.data import KIB, PREFIX, segments, write_local  # noqa: E402
from tests.benchmarks.harness.proc import Run, progress, timed_sync  # noqa: E402
from tests.benchmarks.harness.s3 import (  # noqa: E402
    PRIMARY_AWS,
    SECONDARY_AWS,
    benchmark_environment,
    moto_server,
)

#: issue 17's budgets
OVERHEAD_TARGET = 20.0
S3_CPU_TARGET = 0.5
LOCAL_SMALL_TARGET = 0.67
#: the catch-ups' small data set (tests/benchmarks/harness/catchup.py)
OBJECTS, OBJECT_SIZE = 2000, 64 * KIB

PRIMARY, DESTINATION = "aws-eu-west-1", "aws-eu-central-1"
_ITEM = ("insert into items (service, region, item_id, kind, stream, seq, start_time, end_time, "
         "size, object_count, status, reason, completed_at, available_at, lag_seconds, "
         "updated_at, parent) values (?, ?, ?, 'log', '1', ?, ?, ?, 16777216, 1, 'available', "
         "'', ?, ?, 0.2, ?, '')")
_OBJECT = ("insert into objects (service, region, item_id, key, size, sha256, is_marker, status, "
           "method, verified_by, attempts, updated_at, digest) values (?, ?, ?, ?, 16777216, ?, "
           "1, 'available', 'stream', 'sha256-streamed', 1, ?, '')")
#: the region's newest run grows by the segment (a destination's may have fallen behind)
_RUN = ("update log_runs set last_seq = ?, last_end = ? where rowid = (select rowid from "
        "log_runs where service = ? and region = ? and stream = '1' order by first_seq desc "
        "limit 1)")
_LAG = ("insert into lag_samples (service, region, item_id, at, lag_seconds) "
        "values (?, ?, ?, ?, 0.2)")
_ATTEMPT = ("insert into copy_attempts (service, region, key, at, ok, method, verified_by, "
            "error) values (?, ?, ?, ?, 1, 'stream', 'sha256-streamed', '')")


def _stamp(minute: int) -> str:
    return f"2026-12-01T{minute // 60 % 24:02d}:{minute % 60:02d}:00.000000Z"


def segment_writes(connection: sqlite3.Connection, services: list[str],
                   minutes: int) -> tuple[float, int]:
    """CPU seconds for ``minutes`` one-minute segments of every service, each written once
    with its rows in both regions in one transaction; and how many segments."""
    last = dict(connection.execute(
        "select service, max(last_seq) from log_runs where region = ? group by service",
        [PRIMARY]).fetchall())
    sha = "a" * 64
    began = time.process_time()
    for minute in range(minutes):
        start, end = _stamp(minute), _stamp(minute + 1)
        for service in services:
            seq = last[service] + 1
            item = f"log/1/{seq:010d}"
            key = f"{item}_{start}_{end}_{sha}.log"
            connection.execute("begin")
            for region in (PRIMARY, DESTINATION):
                connection.execute(_ITEM, (service, region, item, seq, start, end, end, end, end))
                connection.execute(_OBJECT, (service, region, item, key, sha, end))
                connection.execute(_RUN, (seq, end, service, region))
            connection.execute(_LAG, (service, DESTINATION, item, end))
            connection.execute(_ATTEMPT, (service, DESTINATION, key, end))
            connection.execute("commit")
            last[service] = seq
    return time.process_time() - began, minutes * len(services)


def simulator_part(hours: float, services: int) -> None:
    from simulator.runner import build, guarded
    from simulator.scenario import parse_scenario

    progress(f"floors: simulating {services} services x {hours:g} h")
    loaded = parse_scenario(scenario_text(hours, services, "1m").encode(), "floors.btar.toml")
    world, replicator, _, _ = build(loaded, 1)
    began = time.process_time()
    guarded(world, functools.partial(world.env.run, until=hours * 3600.0))
    cpu, passes, events = time.process_time() - began, replicator.passes, world.env.events_processed
    bare = min(_cpu_of(functools.partial(bare_loop, events)) for _ in range(3))
    budget = OVERHEAD_TARGET * bare / passes
    copy = sqlite3.connect("file:floors?vfs=memdb", uri=True, isolation_level=None)
    world.app.catalog.conn.backup(copy)
    names = [name for (name,) in copy.execute(
        "select distinct service from log_runs where region = ? order by service", [PRIMARY])]
    writes = [segment_writes(copy, names, 20) for _ in range(3)]
    floor = statistics.median(seconds / count for seconds, count in writes)
    print(f"simulator, {services} services x {hours:g} virtual h: {cpu / passes * 1e6:.0f} us "
          f"of CPU per engine pass; a bare SimPy loop spends {bare / passes * 1e6:.1f} us per "
          f"pass on the same {events / passes:.1f} events")
    print(f"  target 2's overhead ({OVERHEAD_TARGET:.0f}x the bare loop) leaves {budget * 1e6:.0f}"
          f" us of CPU per pass, everything included")
    print(f"  a segment's catalog rows alone, written once in one transaction: "
          f"{floor * 1e6:.0f} us ({floor / budget:.0%} of that budget; the pass now "
          f"{cpu / passes / budget:.1f}x the budget)")


def _cpu_of(work: Callable[[], object]) -> float:
    began = time.process_time()
    work()
    return time.process_time() - began


def _median(runs: list[Run], value: Callable[[Run], float]) -> float:
    return statistics.median(value(run) for run in runs)


def s3_part(work: Path, repeat: int) -> None:
    import boto3

    from engine.storage.s3_wire import Wire

    env = benchmark_environment()
    os.environ.clear()  # the harness's own clients read the fake credentials from it (run.py)
    os.environ.update(env)
    commands, _ = installed_environment(work, env)
    rclone = peers.rclone_path()
    with moto_server() as moto:
        progress(f"floors: seeding {OBJECTS} objects into moto")
        moto.create_bucket("floors-src", PRIMARY_AWS)
        objects = segments(OBJECTS, OBJECT_SIZE)
        moto.seed("floors-src", objects)
        # the lean path alone, on this process's thread: what a copy's request costs
        session = boto3.session.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                                        region_name=SECONDARY_AWS)
        client = session.client("s3", endpoint_url=moto.endpoint)
        moto.create_bucket("floors-lean")
        wire = Wire.for_client(client, "floors-lean", session.get_credentials(), None,
                               path_style=True, connect_timeout=5, read_timeout=60, pool_size=4)
        assert wire is not None, "the lean path declined moto"
        lean = []
        for run_index in range(repeat):
            began = time.process_time()
            for obj in objects[:1000]:
                wire.copy_object({"Key": f"{run_index}/{obj.key}", "ChecksumAlgorithm": "SHA256",
                                  "CopySource": {"Bucket": "floors-src", "Key": obj.key}})
            lean.append(time.process_time() - began)
        catch_ups, idle, rclones = [], [], []
        work.mkdir(parents=True, exist_ok=True)
        rclone_env = peers.rclone_environment(env, moto.endpoint, work / "rclone.conf")
        for run_index in range(repeat):
            progress(f"floors: s3 run {run_index + 1}/{repeat}")
            bucket = f"floors-btar-{run_index}"
            moto.create_bucket(bucket)
            world = BtarWorld.create(work / f"s3-{run_index}",
                                     s3_region("floors-src", moto.endpoint),
                                     s3_region(bucket, moto.endpoint), commands)
            catch_ups.append(world.sync_once().check("btar sync --once"))
            idle.append(world.sync_once().check("btar sync --once (nothing to copy)"))
            if rclone:
                target = f"floors-rclone-{run_index}"
                moto.create_bucket(target)
                rclones.append(peers.rclone_s3(f"floors-src/{PREFIX}", f"{target}/{PREFIX}",
                                               rclone_env).check("rclone copy"))
    per_thousand = 1000 / OBJECTS
    request = statistics.median(lean)
    fixed = _median(idle, lambda r: r.cpu_seconds) * per_thousand
    ours = _median(catch_ups, lambda r: r.cpu_seconds) * per_thousand
    print(f"s3 (moto), {OBJECTS} objects of {OBJECT_SIZE // KIB} KiB, client CPU per 1,000 "
          f"copies: btar's catch-up {ours:.3f} s")
    print(f"  a CopyObject on the lean path alone: {request:.3f} s per 1,000; btar with nothing "
          f"to copy (start, listings): {fixed:.3f} s per 1,000 of these copies")
    if rclones:
        peer = _median(rclones, lambda r: r.cpu_seconds) * per_thousand
        budget = S3_CPU_TARGET * peer
        print(f"  rclone {peer:.3f} s: target 4 ({S3_CPU_TARGET}x) leaves {budget:.3f} s, "
              f"of which the two floors take {(request + fixed) / budget:.0%}, leaving "
              f"{max(0.0, budget - request - fixed):.3f} ms a copy for its scheduling, its "
              "catalog rows and the copy threads")
    else:
        print("  rclone is missing: no budget to compare with")


def local_part(work: Path, repeat: int) -> None:
    env = dict(os.environ)
    commands, _ = installed_environment(work, env)
    primary = work / "local-primary"
    progress(f"floors: writing {OBJECTS} x {OBJECT_SIZE // KIB} KiB")
    write_local(primary, segments(OBJECTS, OBJECT_SIZE))
    timed_sync()
    idle, copies, rclones = [], [], []
    for run_index in range(repeat):
        progress(f"floors: local run {run_index + 1}/{repeat}")
        # Fresh folders, nothing deleted before the timed runs: ext4 without a journal scans
        # the inodes deleted in the last minutes for every file it creates.
        world = BtarWorld.create(work / f"local-{run_index}", local_region(primary),
                                 local_region(work / f"local-dst-{run_index}"), commands)
        world.sync_once().check("btar sync --once")
        idle.append(world.sync_once().check("btar sync --once (nothing to copy)").seconds)
        timed_sync()
        copied = peers.cp_r(primary / PREFIX, work / f"cp-{run_index}").check("cp -r")
        copies.append(copied.seconds + timed_sync())
        if peers.rclone_path():
            ran = peers.rclone_local(primary / PREFIX, work / f"rclone-{run_index}", env)
            rclones.append(ran.check("rclone copy").seconds + timed_sync())
    fixed, copy = statistics.median(idle), statistics.median(copies)
    # every object hashed once (btar hashes each copy as it reads it back), on every core
    contents = [path.read_bytes() for path in sorted((primary / PREFIX).rglob("*"))
                if path.is_file()]
    cores = os.cpu_count() or 1
    hashing = min(_cpu_of(lambda: [hashlib.sha256(data).digest() for data in contents])
                  for _ in range(3)) / cores
    print(f"local, {OBJECTS} x {OBJECT_SIZE // KIB} KiB: btar with nothing to copy {fixed:.3f} s;"
          f" cp -r + sync {copy:.3f} s (nothing hashed, nothing recorded); SHA-256 of every "
          f"object {hashing:.3f} s (its CPU over {cores} cores)")
    if rclones:
        budget = LOCAL_SMALL_TARGET * statistics.median(rclones)
        print(f"  rclone + sync {statistics.median(rclones):.3f} s: target 5 "
              f"({LOCAL_SMALL_TARGET}x) leaves {budget:.3f} s, of which the three floors take "
              f"{(fixed + copy + hashing) / budget:.0%}")
    else:
        print("  rclone is missing: no budget to compare with")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="simulator,s3,local",
                        help="comma separated: simulator, s3, local (default all)")
    parser.add_argument("--hours", type=float, default=6.0,
                        help="virtual hours simulated before the catalog floor (default 6)")
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    unknown = set(parts) - {"simulator", "s3", "local"}
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    with tempfile.TemporaryDirectory(prefix="btar-floors-") as folder:
        work = Path(folder)
        if "simulator" in parts:
            simulator_part(args.hours, args.services)
        if "s3" in parts:
            s3_part(work / "s3", args.repeat)
        if "local" in parts:
            local_part(work / "local", args.repeat)


if __name__ == "__main__":
    main()

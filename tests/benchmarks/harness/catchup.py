"""Case 1: catch-up. A fresh destination (and a fresh btar catalog) for every run; the tools
take turns (the first tool rotates each run) on the same source.

Local: btar fsyncs every object before publishing it; cp and rclone do not. Each peer is timed
alone and followed by a timed `sync`: the "+ sync" rows are the fair durability comparison
(and carry the targets); the bare rows show the copy alone. A `sync` also runs before every
timed run, so no run pays for the previous one's dirty pages.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.benchmarks.harness import peers
from tests.benchmarks.harness.btar import BtarWorld, local_region, s3_region, sync_outcome
from tests.benchmarks.harness.catalog_scale import installed_environment
from tests.benchmarks.harness.checks import check_local, check_s3
from tests.benchmarks.harness.data import (
    KIB,
    MIB,
    PREFIX,
    Obj,
    base_backup,
    segments,
    sync_disks,
    total_bytes,
    write_local,
)
from tests.benchmarks.harness.proc import Run, progress, timed_sync
from tests.benchmarks.harness.results import Case, Row, median
from tests.benchmarks.harness.s3 import PRIMARY_AWS, Moto


@dataclass(frozen=True)
class Dataset:
    name: str
    label: str
    objs: list[Obj]
    #: btar items published by a catch-up of it
    items: int


def datasets() -> list[Dataset]:
    small = segments(2000, 64 * KIB)
    large = base_backup(16, 64 * MIB)
    return [Dataset("small", "2,000 x 64 KiB log segments", small, len(small)),
            Dataset("large", "1 base backup: 16 x 64 MiB + manifest", large, 1)]


@dataclass
class Samples:
    seconds: dict[str, list[float]] = field(default_factory=dict)
    rss_mib: list[float] = field(default_factory=list)
    methods: dict[str, int] = field(default_factory=dict)
    #: CPU seconds the moto server spent serving each run of a tool (S3 cases)
    server_cpu: dict[str, list[float]] = field(default_factory=dict)
    #: the client's own CPU seconds per run (its rusage), and the requests the server
    #: counted per run (S3 cases)
    client_cpu: dict[str, list[float]] = field(default_factory=dict)
    requests: dict[str, list[int]] = field(default_factory=dict)

    def add(self, tool: str, seconds: float, server_cpu: float | None = None) -> None:
        self.seconds.setdefault(tool, []).append(seconds)
        if server_cpu is not None:
            self.server_cpu.setdefault(tool, []).append(server_cpu)

    def add_client(self, tool: str, result: Run, requests: int) -> None:
        self.client_cpu.setdefault(tool, []).append(result.cpu_seconds)
        self.requests.setdefault(tool, []).append(requests)

    def median(self, tool: str) -> float | None:
        values = self.seconds.get(tool)
        return median(values) if values else None


def _check_btar_run(who: str, world: BtarWorld, result: Run, ds: Dataset,
                    samples: Samples) -> None:
    outcome = sync_outcome(result)
    if outcome["failed"] or outcome["copied"] != len(ds.objs) or outcome["published"] != ds.items:
        raise AssertionError(f"{who}: sync reported {outcome}, expected {len(ds.objs)} objects "
                             f"and {ds.items} items")
    for method, count in world.copy_methods().items():
        samples.methods[method] = samples.methods.get(method, 0) + count


def _rotate(tools: list[tuple[str, Callable[[int], None]]], i: int) -> None:
    for name, step in tools[i % len(tools):] + tools[:i % len(tools)]:
        progress(f"  run {i + 1}: {name}")
        step(i)


def run_local(work: Path, repeat: int, env: Mapping[str, str]) -> Case:
    case = Case("catchup-local")
    # btar as installed: its bytecode compiled once, not at every run (catalog_scale says why)
    btar_env, case.details["bytecode"] = installed_environment(work, env)
    for ds in datasets():
        primary = work / f"local-{ds.name}-primary"
        progress(f"catchup-local {ds.name}: writing {ds.label} "
                 f"({total_bytes(ds.objs) / MIB:.0f} MiB)")
        write_local(primary, ds.objs)
        sync_disks()
        samples = Samples()
        done = Leftovers(len(ds.objs))

        def btar(i: int, ds: Dataset = ds, primary: Path = primary,
                 samples: Samples = samples, done: Leftovers = done) -> None:
            dst, cfg = work / f"dst-btar-{i}", work / f"cfg-btar-{i}"
            world = BtarWorld.create(cfg, local_region(primary), local_region(dst), btar_env)
            timed_sync()
            result = world.sync_once().check("btar sync --once")
            _check_btar_run("btar", world, result, ds, samples)
            check_local("btar", dst, ds.objs)
            samples.add("btar", result.seconds)
            samples.rss_mib.append(result.max_rss_mib)
            done.remove(dst, cfg)

        def copy_peer(name: str, copy: Callable[[Path, Path], Any], ds: Dataset = ds,
                      primary: Path = primary, samples: Samples = samples,
                      done: Leftovers = done) -> Callable[[int], None]:
            def step(n: int) -> None:
                dst = work / f"dst-{name.replace(' ', '-')}-{n}"
                dst.mkdir()
                timed_sync()
                result = copy(primary / PREFIX, dst / PREFIX).check(name)
                flush = timed_sync()
                check_local(name, dst, ds.objs)
                samples.add(name, result.seconds)
                samples.add(name + " + sync", result.seconds + flush)
                done.remove(dst)
            return step

        tools: list[tuple[str, Callable[[int], None]]] = [
            ("btar", btar), ("cp -r", copy_peer("cp -r", peers.cp_r))]
        if peers.rclone_path():
            tools.append(("rclone copy", copy_peer(
                "rclone copy", lambda s, d: peers.rclone_local(s, d, env))))
        for i in range(repeat):
            progress(f"catchup-local {ds.name}: run {i + 1}/{repeat}")
            _rotate(tools, i)
        _local_rows(case, ds, samples)
        done.remove(primary)
        done.flush()
    return case


#: objects in a data set from which its copies are deleted only once all its runs are done
MANY_FILES = 1000


class Leftovers:
    """The folders of a local data set's runs, deleted at once or once the data set is done.
    This disk's ext4 has no journal: creating a file skips the inodes deleted in the last one
    to five minutes, reading each one's block to find them (``recently_deleted``), so 2,000
    files deleted before a run made every file the next tool created slower (cp -r + sync:
    0.57 s in the harness against 0.17-0.20 s in fresh folders, ninth session). A data set of
    many small files keeps its copies until its last run; a few large files are deleted at
    once (a gigabyte a copy)."""

    def __init__(self, objects: int) -> None:
        self.keep = objects >= MANY_FILES
        self.kept: list[Path] = []

    def remove(self, *folders: Path) -> None:
        if self.keep:
            self.kept += folders
        else:
            for folder in folders:
                shutil.rmtree(folder)

    def flush(self) -> None:
        for folder in self.kept:
            shutil.rmtree(folder)
        self.kept.clear()


def _local_rows(case: Case, ds: Dataset, samples: Samples) -> None:
    label = f"catchup-{ds.name} local"
    ours = samples.median("btar")
    case.details[ds.name] = {"data": ds.label, "objects": len(ds.objs),
                             "bytes": total_bytes(ds.objs), "seconds": samples.seconds,
                             "btar_rss_mib": samples.rss_mib, "btar_methods": samples.methods}
    targets = {"small": {"rclone copy + sync": 0.67},
               "large": {"rclone copy + sync": 0.5, "cp -r + sync": 1.5}}[ds.name]
    for peer in ("rclone copy + sync", "rclone copy", "cp -r + sync", "cp -r"):
        theirs = samples.median(peer)
        if theirs is None:
            if peer == "rclone copy + sync":
                case.add(Row(label, ours, peer, None, note="rclone missing: skipped"))
            continue
        limit = targets.get(peer)
        row = Row(label, ours, peer, theirs)
        if peer.endswith("+ sync") and not any(r.note for r in case.rows if r.case == label):
            row.note = ("'+ sync': the peer's copy then `sync`, timed together (btar fsyncs "
                        "every object before publishing it; cp and rclone do not)")
        if limit is not None and ours is not None:
            row.target, row.met = f"<= {limit}x", ours <= limit * theirs
        case.add(row)
    if samples.rss_mib:
        case.add(Row(f"peak RSS {label}", max(samples.rss_mib), unit="MiB",
                     target="< 200 MiB", met=max(samples.rss_mib) < 200))


def run_s3(work: Path, repeat: int, env: Mapping[str, str], moto: Moto) -> Case:
    case = Case("catchup-s3")
    # btar as installed: its bytecode compiled once, not at every run (catalog_scale says why)
    btar_env, case.details["bytecode"] = installed_environment(work, env)
    rclone_env = peers.rclone_environment(env, moto.endpoint, work / "rclone.conf")
    aws_env = peers.aws_environment(env, work / "aws.config")
    for ds in datasets():
        source = f"bench-src-{ds.name}"
        progress(f"catchup-s3 {ds.name}: seeding {ds.label} into moto")
        moto.create_bucket(source, PRIMARY_AWS)
        moto.seed(source, ds.objs)
        source_listing = moto.listing(source)
        samples = Samples()

        def btar(i: int, ds: Dataset = ds, source: str = source, samples: Samples = samples,
                 source_listing: dict[str, tuple[int, str]] = source_listing) -> None:
            dst, cfg = f"bench-dst-{ds.name}-btar-{i}", work / f"cfg-btar-{i}"
            moto.create_bucket(dst)
            world = BtarWorld.create(cfg, s3_region(source, moto.endpoint),
                                     s3_region(dst, moto.endpoint), btar_env)
            cpu, requests = moto.cpu_seconds(), moto.requests()
            result = world.sync_once().check("btar sync --once")
            cpu, requests = moto.cpu_seconds() - cpu, moto.requests() - requests
            _check_btar_run("btar", world, result, ds, samples)
            check_s3("btar", moto.listing(dst), source_listing, ds.objs)
            samples.add("btar", result.seconds, cpu)
            samples.add_client("btar", result, requests)
            samples.rss_mib.append(result.max_rss_mib)
            moto.empty_and_delete(dst)
            shutil.rmtree(cfg)

        def s3_peer(name: str, copy: Callable[[str, str], Any],
                    count: Callable[[Any], int], ds: Dataset = ds, source: str = source,
                    samples: Samples = samples,
                    source_listing: dict[str, tuple[int, str]] = source_listing
                    ) -> Callable[[int], None]:
            def step(n: int) -> None:
                dst = f"bench-dst-{ds.name}-peer-{n}"
                moto.create_bucket(dst)
                cpu, requests = moto.cpu_seconds(), moto.requests()
                result = copy(f"{source}/{PREFIX}", f"{dst}/{PREFIX}").check(name)
                cpu, requests = moto.cpu_seconds() - cpu, moto.requests() - requests
                if count(result) != len(ds.objs):
                    raise AssertionError(f"{name} reports {count(result)} objects copied, "
                                         f"expected {len(ds.objs)}")
                check_s3(name, moto.listing(dst), source_listing, ds.objs)
                samples.add(name, result.seconds, cpu)
                samples.add_client(name, result, requests)
                moto.empty_and_delete(dst)
            return step

        tools: list[tuple[str, Callable[[int], None]]] = [("btar", btar)]
        if peers.rclone_path():
            tools.append(("rclone copy", s3_peer(
                "rclone copy", lambda s, d: peers.rclone_s3(s, d, rclone_env),
                peers.rclone_copied)))
        if peers.aws_available():
            tools.append(("aws s3 sync", s3_peer(
                "aws s3 sync", lambda s, d: peers.aws_s3_sync(s, d, moto.endpoint, aws_env),
                peers.aws_copied)))
        for i in range(repeat):
            progress(f"catchup-s3 {ds.name}: run {i + 1}/{repeat}")
            _rotate(tools, i)
        _s3_rows(case, ds, samples)
        moto.empty_and_delete(source)
    return case


def _s3_rows(case: Case, ds: Dataset, samples: Samples) -> None:
    label = f"catchup-{ds.name} s3"
    ours = samples.median("btar")
    server_side = set(samples.methods) == {"server-side"}
    case.details[ds.name] = {"data": ds.label, "objects": len(ds.objs),
                             "bytes": total_bytes(ds.objs), "seconds": samples.seconds,
                             "btar_rss_mib": samples.rss_mib, "btar_methods": samples.methods,
                             "btar_server_side_copy": server_side,
                             "moto_cpu_seconds": samples.server_cpu,
                             "client_cpu_seconds": samples.client_cpu,
                             "server_requests": samples.requests}
    present = [p for p in ("rclone copy", "aws s3 sync") if samples.median(p) is not None]
    fastest = min(present, key=lambda p: samples.median(p) or 0.0) if present else None
    methods = ", ".join(f"{m}: {n}" for m, n in sorted(samples.methods.items()))
    for peer in present:
        row = case.add(Row(label, ours, peer, samples.median(peer)))
        if peer == fastest and ours is not None:
            limit = 0.67 if ds.name == "small" else 1.0
            row.target = f"<= {limit}x faster peer"
            row.met = ours <= limit * (samples.median(peer) or 0.0)
            if ds.name == "large":
                row.target += ", server-side"
                row.met = row.met and server_side
            row.note = f"btar copy methods (catalog, all runs): {methods}"
    ours_cpu = samples.server_cpu.get("btar")
    for peer in present:
        theirs = samples.server_cpu.get(peer)
        if ours_cpu and theirs:
            # The server's CPU per run: how much work each client asks of it.
            case.add(Row(f"{label}, moto CPU", median(ours_cpu), peer, median(theirs),
                         note="CPU seconds the moto server spent serving one run (median)"))
    _client_rows(case, label, ds, samples, present)
    if not present:
        case.add(Row(label, ours, note="no peer available (rclone and aws missing)"))
    if samples.rss_mib:
        case.add(Row(f"peak RSS {label}", max(samples.rss_mib), unit="MiB",
                     target="< 200 MiB", met=max(samples.rss_mib) < 200))


def _client_rows(case: Case, label: str, ds: Dataset, samples: Samples,
                 present: list[str]) -> None:
    """What btar itself costs per object (issue 17, target 4): its own CPU per 1,000 copies
    against the peer that spends the least, and the requests the server counted per copied
    object. The targets apply to the small data set, where per-object cost dominates."""
    per_thousand = {tool: median(values) * 1000 / len(ds.objs)
                    for tool, values in samples.client_cpu.items() if values}
    ours = per_thousand.get("btar")
    cheapest = min((p for p in present if p in per_thousand), key=per_thousand.__getitem__,
                   default=None)
    for peer in present:
        row = case.add(Row(f"{label}, client CPU s per 1,000 objects", ours, peer,
                           per_thousand.get(peer)))
        if peer == cheapest and ds.name == "small" and ours is not None:
            row.target = "<= 0.5x the cheaper peer"
            row.met = ours <= 0.5 * per_thousand[peer]
    requests = samples.requests.get("btar")
    if requests:
        per_object = median([float(r) for r in requests]) / len(ds.objs)
        row = case.add(Row(f"{label}, requests per copied object", per_object, unit="",
                           note="counted by the server, listings included"))
        if ds.name == "small":
            row.target, row.met = "<= 1.05", per_object <= 1.05

"""Case 2: a sync with nothing to do, at several object counts, and the peak RSS of a full
listing at the largest count (case 5).

S3: btar catches up first (setup, timed and reported but not measured), then
`btar sync --once` is timed with nothing to do. The peers run against btar's replicated
destination (same keys and sizes: nothing to copy); each run is checked to have copied nothing.
Local: btar's no-op pass against the floor of any btar command (`btar --version`).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tests.benchmarks.harness import peers
from tests.benchmarks.harness.btar import (
    BtarWorld,
    has_full_listing,
    local_region,
    s3_region,
    sync_outcome,
    version_run,
)
from tests.benchmarks.harness.checks import expect_same, local_listing
from tests.benchmarks.harness.data import PREFIX, segments, sync_disks, write_local
from tests.benchmarks.harness.proc import Run, progress
from tests.benchmarks.harness.results import Case, Row, median

SIZE = 256


def _label(count: int) -> str:
    return f"{count // 1000}k" if count % 1000 == 0 else str(count)


def _setup_rss_row(case: Case, backend: str, count: int) -> None:
    setup = case.details[_label(count)]["setup_catch_up"]
    case.add(Row(f"peak RSS catch-up {_label(count)} {backend}", setup["rss_mib"], unit="MiB",
                 target="< 200 MiB", met=setup["rss_mib"] < 200,
                 note=f"the setup catch-up of {count:,} objects ({setup['seconds']:.0f}s), "
                      "for information: not one of the issue's measuring points"))


def _expect_noop(result: Run) -> None:
    outcome = sync_outcome(result.check("btar sync --once (no-op)"))
    if outcome["copied"] or outcome["failed"] or outcome["published"]:
        raise AssertionError(f"btar no-op sync did something: {outcome}")


def _catch_up(world: BtarWorld, count: int, details: dict[str, Any], key: str) -> Run:
    progress(f"  btar catch-up of {count:,} objects (setup)")
    result = world.sync_once().check("btar sync --once (setup catch-up)")
    outcome = sync_outcome(result)
    if outcome["copied"] != count or outcome["published"] != count or outcome["failed"]:
        raise AssertionError(f"btar setup catch-up: {outcome}, expected {count}")
    details[key] = {"seconds": round(result.seconds, 2), "rss_mib": round(result.max_rss_mib, 1)}
    progress(f"  btar catch-up: {result.seconds:.1f}s, peak RSS {result.max_rss_mib:.0f} MiB")
    return result


def run_local(work: Path, counts: list[int], repeat: int, env: Mapping[str, str]) -> Case:
    case = Case("noop-local")
    floor = median([version_run(env).seconds for _ in range(max(repeat, 3))])
    case.details["btar --version s"] = floor
    for count in counts:
        details: dict[str, Any] = {}
        case.details[_label(count)] = details
        primary, dst = work / f"noop-{count}-primary", work / f"noop-{count}-dst"
        progress(f"noop-local {_label(count)}: writing {count:,} segments of {SIZE} B")
        started = time.perf_counter()
        objs = segments(count, SIZE)
        write_local(primary, objs)
        sync_disks()
        details["seed_seconds"] = round(time.perf_counter() - started, 2)
        progress(f"  written in {details['seed_seconds']}s")
        world = BtarWorld.create(work / f"noop-{count}-cfg", local_region(primary),
                                 local_region(dst), env)
        _catch_up(world, count, details, "setup_catch_up")
        expect_same("btar", local_listing(dst), objs)
        times = []
        for i in range(repeat):
            progress(f"noop-local {_label(count)}: run {i + 1}/{repeat}")
            result = world.sync_once()
            _expect_noop(result)
            times.append(result.seconds)
        details["btar_seconds"] = times
        case.add(Row(f"noop local {_label(count)}", median(times), "btar --version (floor)",
                     floor))
        shutil.rmtree(primary)
        shutil.rmtree(dst)
        shutil.rmtree(world.folder)
    if counts:
        _setup_rss_row(case, "local", counts[-1])
    return case


def run_s3(work: Path, counts: list[int], repeat: int, env: Mapping[str, str],
           moto: Any) -> Case:
    case = Case("noop-s3")
    rclone_env = peers.rclone_environment(env, moto.endpoint, work / "rclone.conf")
    aws_env = peers.aws_environment(env, work / "aws.config")
    medians: dict[int, dict[str, float]] = {}
    last_world: BtarWorld | None = None
    for count in counts:
        details: dict[str, Any] = {}
        case.details[_label(count)] = details
        source, dst = f"bench-noop-{count}-src", f"bench-noop-{count}-dst"
        progress(f"noop-s3 {_label(count)}: seeding {count:,} objects of {SIZE} B into moto")
        started = time.perf_counter()
        objs = segments(count, SIZE)
        moto.create_bucket(source, "eu-west-1")
        moto.create_bucket(dst)
        moto.seed(source, objs)
        details["seed_seconds"] = round(time.perf_counter() - started, 2)
        progress(f"  seeded in {details['seed_seconds']}s")
        world = BtarWorld.create(work / f"noop-{count}-cfg", s3_region(source, moto.endpoint),
                                 s3_region(dst, moto.endpoint), env)
        _catch_up(world, count, details, "setup_catch_up")
        last_world = world

        steps = _s3_steps(world, source, dst, moto, rclone_env, aws_env)
        times: dict[str, list[float]] = {name: [] for name, _ in steps}
        for i in range(repeat):
            progress(f"noop-s3 {_label(count)}: run {i + 1}/{repeat}")
            for name, step in steps[i % len(steps):] + steps[:i % len(steps)]:
                progress(f"  {name}")
                times[name].append(step().seconds)
        listing = moto.listing(dst)
        expect_same("destination after the no-op runs",
                    {k: size for k, (size, _) in listing.items()}, objs)
        details["seconds"] = times
        medians[count] = {name: median(values) for name, values in times.items()}
    _s3_rows(case, medians)
    if last_world is not None:
        _listing_rss(case, last_world, counts[-1])
        _setup_rss_row(case, "s3", counts[-1])
    return case


def _s3_steps(world: BtarWorld, source: str, dst: str, moto: Any, rclone_env: Mapping[str, str],
              aws_env: Mapping[str, str]) -> list[tuple[str, Callable[[], Run]]]:
    """btar's no-op pass and each peer's, each checked to have copied nothing."""

    def btar_step() -> Run:
        result = world.sync_once()
        _expect_noop(result)
        return result

    steps: list[tuple[str, Callable[[], Run]]] = [("btar", btar_step)]
    src, dest = f"{source}/{PREFIX}", f"{dst}/{PREFIX}"
    if peers.rclone_path():
        for flag in ("--size-only", "--checksum"):
            steps.append((f"rclone copy {flag}", _peer(
                lambda flag=flag: peers.rclone_s3(src, dest, rclone_env, flag),
                peers.rclone_copied, f"rclone copy {flag}")))
    if peers.aws_available():
        steps.append(("aws s3 sync", _peer(
            lambda: peers.aws_s3_sync(src, dest, moto.endpoint, aws_env),
            peers.aws_copied, "aws s3 sync")))
    return steps


def _peer(command: Callable[[], Run], count: Callable[[Run], int],
          name: str) -> Callable[[], Run]:
    def step() -> Run:
        result = command().check(name)
        if count(result):
            raise AssertionError(f"{name}: copied {count(result)} objects on a no-op")
        return result
    return step


def _s3_rows(case: Case, medians: dict[int, dict[str, float]]) -> None:
    btar = {count: m["btar"] for count, m in medians.items()}
    for count, m in medians.items():
        label = f"noop s3 {_label(count)}"
        fair = [p for p in ("rclone copy --size-only", "aws s3 sync") if p in m]
        fastest = min(fair, key=lambda p: m[p]) if fair else None
        for peer in ("rclone copy --size-only", "rclone copy --checksum", "aws s3 sync"):
            if peer not in m:
                continue
            row = case.add(Row(label, m["btar"], peer, m[peer]))
            if count == 10_000 and peer == fastest:
                row.target, row.met = "<= 0.25x faster peer", m["btar"] <= 0.25 * m[peer]
        if not fair and "rclone copy --checksum" not in m:
            case.add(Row(label, m["btar"], note="no peer available"))
    if len(btar) > 1:
        spread = max(btar.values()) / min(btar.values())
        sizes = "/".join(_label(c) for c in btar)
        case.add(Row(f"noop s3 flat ({sizes})", max(btar.values()), "btar's fastest size",
                     min(btar.values()), target="<= 1.5x", met=spread <= 1.5,
                     note="max over min of btar's no-op medians across sizes"))


def _listing_rss(case: Case, world: BtarWorld, count: int) -> None:
    """Peak RSS of a full listing of the primary at the largest count."""
    label = f"peak RSS listing {_label(count)} s3"
    if has_full_listing():
        progress(f"noop-s3: btar sync --once --full-listing at {count:,} objects")
        result = world.sync_once("--full-listing")
        _expect_noop(result)
        case.details["full_listing"] = {"objects": count, "seconds": result.seconds,
                                        "rss_mib": result.max_rss_mib}
        case.add(Row(label, result.max_rss_mib, unit="MiB", target="< 200 MiB",
                     met=result.max_rss_mib < 200,
                     note=f"btar sync --once --full-listing: {result.seconds:.2f}s"))
        return
    setup = case.details[_label(count)]["setup_catch_up"]
    case.add(Row(label, setup["rss_mib"], unit="MiB", target="< 200 MiB",
                 met=setup["rss_mib"] < 200,
                 note="this btar has no `sync --full-listing`: the first catch-up sync at "
                      f"{count:,} objects was measured instead"))

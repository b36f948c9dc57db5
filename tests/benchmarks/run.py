"""On-demand benchmarks of btar against its peers (issue 8). Never part of pytest.

    make bench                          # or: bash scripts/bench.sh [OPTIONS]
    make bench ARGS="--quick --repeat 1"

btar always runs as its command line in a subprocess, like the peers, on the same data and the
same server in the same run. Cases (--cases, comma separated; default all):

- catchup-local, catchup-s3: 2,000 x 64 KiB log segments, and one base backup of 16 x 64 MiB,
  copied between two regions (two folders; two buckets of one moto server in its own process).
  Peers: cp -r and rclone copy (local), rclone copy and aws s3 sync (S3).
- noop-local, noop-s3: a sync with nothing to do at 1k/10k/100k objects (100k skipped by
  --quick); the peers run against btar's replicated destination and must copy nothing. Also
  the peak RSS of a full listing at the largest size.
- lag: steady-state replication lag of the `btar sync` daemon, local backend.
- planning: restorable window and restore plan at one million log segments.
- fleet: one `btar sync` daemon over 1,000 services on moto (--quick: 100), each writing a
  64 KiB segment a minute: worst service's lag p99, btar's CPU and peak RSS, requests per pass
  per idle service (harness/fleet.py).
- catalog: the catalog at fleet size: 10,000,000 items over 1,000 services (--quick:
  1,000,000) in a real SQLite file, kept in WORKDIR/catalog-cache: `btar status --json` and
  `btar check` as commands, window and restore plan of one service (harness/catalog_scale.py).
- twin: the twin-run scenario on the real runtime (local folders, a throttled link, 40 s of
  wall time) against the simulator: log lag p50/p99 per service, to agree within 10 %.
- simulator: 100 services x 1 virtual day of 1-minute WAL in the simulator (--quick: 10
  services, projected): its time, its overhead over a bare SimPy loop, and whether a pass
  costs the same at the end of the day as at its start (harness/simulator.py).

Each timed value is the median of --repeat runs (a fresh destination and catalog per catch-up
run). Prints a table (progress on stderr) and writes --json (default bench-results.json).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from tests.benchmarks.harness import (
    catalog_scale,
    catchup,
    fleet,
    lag,
    noop,
    peers,
    planning,
    simulator,
    twin,
)
from tests.benchmarks.harness.btar import BTAR, has_full_listing
from tests.benchmarks.harness.proc import progress, run
from tests.benchmarks.harness.results import Case, table, write_json
from tests.benchmarks.harness.s3 import Moto, benchmark_environment, moto_server

CASES = ("catchup-local", "catchup-s3", "noop-local", "noop-s3", "lag", "planning", "twin",
         "fleet", "catalog", "simulator")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make bench ARGS=...", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma separated, from: {', '.join(CASES)} (default: all)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--quick", action="store_true",
                        help="skip the 100k no-op size and shorten the lag case to 15 s")
    parser.add_argument("--fleet-services", type=int,
                        help="services of the fleet case (default 1000, quick 100)")
    parser.add_argument("--fleet-minutes", type=float,
                        help="measured minutes of the fleet case (default 10, quick 2)")
    parser.add_argument("--fleet-warmup", type=float,
                        help="warm-up minutes of the fleet case (default 2, quick 1)")
    parser.add_argument("--lag-seconds", type=int,
                        help="segments (one a second) of the lag case (default 60, quick 15)")
    parser.add_argument("--planning-segments", type=int, default=planning.SEGMENTS,
                        help="log segments of the planning catalog (default 1,000,000)")
    parser.add_argument("--catalog-items", type=int,
                        help="items of the catalog case (default 10,000,000, quick 1,000,000)")
    parser.add_argument("--json", default="bench-results.json", metavar="FILE",
                        help="where to write the results (default bench-results.json)")
    parser.add_argument("--workdir", metavar="DIR",
                        help="scratch folder (default: a new temporary folder, removed after)")
    args = parser.parse_args(argv)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    for option, full, quick in (("fleet_services", 1000, 100), ("fleet_minutes", 10.0, 2.0),
                                ("fleet_warmup", 2.0, 1.0)):
        if getattr(args, option) is None:
            setattr(args, option, quick if args.quick else full)
    if args.lag_seconds is None:
        args.lag_seconds = 15 if args.quick else 60
    return args


def machine() -> dict[str, Any]:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    btar = run([BTAR, "--version"]).stdout.strip()
    return {"cores": os.cpu_count(), "memory_gib": round(memory / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform(),
            "btar": btar, "btar_full_listing": has_full_listing(),
            "rclone": peers.rclone_version(), "aws": peers.aws_version()}


@contextmanager
def workdir(explicit: str | None) -> Iterator[Path]:
    if explicit:
        path = Path(explicit).resolve()
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix="btar-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.perf_counter()
    env = benchmark_environment()
    # The harness's own boto3 (setup, checks) uses the same fake credentials, no CA bundle.
    os.environ.clear()
    os.environ.update(env)
    facts = machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()), flush=True)
    counts = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    cases: list[Case] = []
    with workdir(args.workdir) as work, ExitStack() as stack:
        moto: Moto | None = None
        for name in args.cases:
            case_started = time.perf_counter()
            folder = work / name
            folder.mkdir(parents=True, exist_ok=True)
            if name.endswith("-s3") and moto is None:
                progress("starting moto's S3 server (own process)")
                moto = stack.enter_context(moto_server())
            try:
                if name == "catchup-local":
                    case = catchup.run_local(folder, args.repeat, env)
                elif name == "catchup-s3":
                    assert moto is not None
                    case = catchup.run_s3(folder, args.repeat, env, moto)
                elif name == "noop-local":
                    case = noop.run_local(folder, counts, args.repeat, env)
                elif name == "noop-s3":
                    assert moto is not None
                    case = noop.run_s3(folder, counts, args.repeat, env, moto)
                elif name == "lag":
                    case = lag.run(folder, args.lag_seconds, env)
                elif name == "fleet":
                    case = fleet.run(folder, args.fleet_services, args.fleet_minutes,
                                     args.fleet_warmup, env)
                elif name == "catalog":
                    case = catalog_scale.run_default(work, args.quick, args.repeat, env,
                                                     args.catalog_items)
                elif name == "twin":
                    case = twin.run(folder)
                elif name == "simulator":
                    case = simulator.run_case(folder, args.quick)
                else:
                    case = planning.run(args.planning_segments)
            except Exception as error:  # report the others; this case failed
                progress(f"{name} FAILED: {error}")
                case = Case(name, details={"error": str(error)})
                case.rows.append(_failed_row(name, error))
            case.details["case_seconds"] = round(time.perf_counter() - case_started, 1)
            progress(f"{name} done in {case.details['case_seconds']}s")
            cases.append(case)
            shutil.rmtree(folder, ignore_errors=True)
    seconds = time.perf_counter() - started
    print()
    print(table(cases))
    print(f"\ntotal {seconds:.0f}s; results in {args.json}")
    write_json(Path(args.json), facts, {k: v for k, v in vars(args).items()}, cases, seconds)
    return 1 if any("error" in c.details for c in cases) else 0


def _failed_row(name: str, error: Exception) -> Any:
    from tests.benchmarks.harness.results import Row

    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return Row(name, None, target="ran", met=False, note=f"FAILED: {first[:300]}")


if __name__ == "__main__":
    sys.exit(main())

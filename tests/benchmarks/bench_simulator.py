"""Simulator throughput, on demand (not collected by pytest).

    .venv/bin/python tests/benchmarks/bench_simulator.py [--hours 6] [--services 10]

Replays N services with 1-minute WAL (a base backup every 6 hours, a replication pass every
minute) and prints the virtual days simulated per wall second, then runs a bare SimPy loop
with the same number of events and prints the overhead ratio: how much the engine's decisions,
the catalog and the journal cost on top of SimPy's own event loop.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Generator
from typing import Any

import simpy

from simulator.runner import run_scenario
from simulator.scenario import parse_scenario


def scenario_text(hours: float, services: int, wal: str) -> str:
    lines = ["schema = 1", 'name = "benchmark"', "seed = 1", "start = 2026-11-02T00:00:00Z",
             f'duration = "{hours}h"', 'sample_every = "1h"', "",
             '[[regions]]\nid = "aws-eu-west-1"\n', '[[regions]]\nid = "aws-eu-central-1"\n',
             '[[links]]\nbetween = ["aws-eu-west-1", "aws-eu-central-1"]\n'
             'bandwidth = "100MB/s"\nlatency = "20ms"\n']
    for index in range(services):
        kind = "postgresql" if index % 2 == 0 else "mysql"
        lines.append(f'[[services]]\nname = "svc-{index:02d}"\ntype = "{kind}"\n'
                     'region = "aws-eu-west-1"\nadditional_region = "aws-eu-central-1"\n'
                     '[services.schedule]\nbase_every = "6h"\nbase_duration = "20m"\n'
                     f'base_size = "10GB"\nlog_every = "{wal}"\nlog_size = "16MiB"\n')
    lines.append('[replicator]\npoll_interval = "1m"\nconcurrency = 16\n')
    lines.append('[[expect]]\nkind = "never_published_unverified"\n')
    return "\n".join(lines)


def bare_loop(events: int) -> float:
    """Wall seconds SimPy needs for ``events`` timeouts in one process, nothing else."""
    env = simpy.Environment()

    def ticker() -> Generator[simpy.Event, Any, None]:
        for _ in range(events):
            yield env.timeout(1)

    env.process(ticker())
    began = time.perf_counter()
    env.run()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=6.0, help="virtual hours (default 6)")
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--wal", default="1m", help="WAL/binlog cadence (default 1m)")
    args = parser.parse_args()
    loaded = parse_scenario(scenario_text(args.hours, args.services, args.wal).encode(),
                            "benchmark.btar.toml")
    cpu = time.process_time()
    result = run_scenario(loaded)
    cpu = time.process_time() - cpu
    assert result.ok, [v for v in result.verdicts if not v.holds]
    days = result.virtual_seconds / 86400
    entries = result.journal.entries
    published = sum(1 for e in entries if e["op"] == "publish")
    passes = sum(1 for e in entries if e["op"] == "pass" and e["phase"] == "ok")
    print(f"{args.services} services, {args.wal} WAL, {args.hours:g} virtual hours: "
          f"{result.events} SimPy events, {passes} engine passes, {published} items published, "
          f"{len(entries)} journal entries")
    print(f"simulator: {result.wall_seconds:.2f} s wall, {days / result.wall_seconds:.4f} "
          f"virtual days per wall second ({result.virtual_seconds / result.wall_seconds:.0f}x "
          "real time)")
    # CPU seconds too: on a shared machine the wall clock also counts the other processes.
    print(f"simulator CPU: {cpu:.2f} s, {days / cpu:.4f} virtual days per CPU second, "
          f"{cpu / max(passes, 1) * 1000:.2f} ms per engine pass")
    bare_cpu = time.process_time()
    bare = bare_loop(result.events)
    bare_cpu = time.process_time() - bare_cpu
    print(f"bare SimPy loop, same {result.events} events: {bare * 1000:.1f} ms "
          f"({bare_cpu * 1000:.1f} ms CPU)")
    print(f"overhead ratio (simulator / bare SimPy): {result.wall_seconds / bare:.0f}x wall, "
          f"{cpu / bare_cpu:.0f}x CPU")


if __name__ == "__main__":
    main()

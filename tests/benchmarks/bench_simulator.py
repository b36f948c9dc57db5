"""Simulator throughput, on demand (not collected by pytest).

    .venv/bin/python tests/benchmarks/bench_simulator.py [--hours 6] [--services 10] [--repeat 1]

Replays N services with 1-minute WAL (a base backup every 6 hours, a replication pass every
minute) and prints the virtual days simulated per wall second, then runs a bare SimPy loop
with the same number of events and prints the overhead ratio: how much the engine's decisions,
the catalog and the journal cost on top of SimPy's own event loop.

The run is made one virtual hour at a time (what the TUI's replay does: the same events in the
same order, so the same journal), and the CPU of each hour is kept: the CPU per engine pass in
the first and the last hours says whether a pass costs more as history grows. With
``--repeat``, the medians of the runs are printed (the machine may be shared).

Issue 17's target 2: 100 services x 1 day of 1-minute WAL in <= 60 s wall, an overhead <= 20x
the bare loop, cost linear in history. ``--hours 24 --services 100`` measures it; other shapes
print a projection that assumes linearity (say so, and mind the last-hour figure). ``make
bench`` runs it as its ``simulator`` case (``--json`` hands it the figures).

``--fleet --hours 1 --services 1000`` replays target 1's fleet instead (the ``fleet`` case's
services and pace, in virtual time): the worst service's lag p99 after a warm-up, against the
same bound as the real daemon's.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import simpy

from simulator.runner import RunResult, build, conclude, guarded
from simulator.scenario import LoadedScenario, parse_scenario

#: issue 17, target 2
TARGET_SECONDS_PER_DAY_AT_100 = 60.0
TARGET_OVERHEAD = 20.0


def _two_regions(name: str, hours: float) -> list[str]:
    """A scenario's head: its name and length, two regions and the link between them."""
    return ["schema = 1", f'name = "{name}"', "seed = 1", "start = 2026-11-02T00:00:00Z",
            f'duration = "{hours}h"', 'sample_every = "1h"', "",
            '[[regions]]\nid = "aws-eu-west-1"\n', '[[regions]]\nid = "aws-eu-central-1"\n',
            '[[links]]\nbetween = ["aws-eu-west-1", "aws-eu-central-1"]\n'
            'bandwidth = "100MB/s"\nlatency = "20ms"\n']


def scenario_text(hours: float, services: int, wal: str) -> str:
    lines = _two_regions("benchmark", hours)
    for index in range(services):
        kind = "postgresql" if index % 2 == 0 else "mysql"
        lines.append(f'[[services]]\nname = "svc-{index:02d}"\ntype = "{kind}"\n'
                     'region = "aws-eu-west-1"\nadditional_region = "aws-eu-central-1"\n'
                     '[services.schedule]\nbase_every = "6h"\nbase_duration = "20m"\n'
                     f'base_size = "10GB"\nlog_every = "{wal}"\nlog_size = "16MiB"\n')
    lines.append('[replicator]\npoll_interval = "1m"\nconcurrency = 16\n')
    lines.append('[[expect]]\nkind = "never_published_unverified"\n')
    return "\n".join(lines)


#: issue 17, target 1 ("also 1 h virtual of the same fleet in the simulator"): the fleet
#: case's services, pace and lag bound (tests/benchmarks/harness/fleet.py)
FLEET_POLL_INTERVAL = 10.0
FLEET_LAG_TARGET = FLEET_POLL_INTERVAL + 5
#: the fleet case measures after its warm-up; so does its simulation
FLEET_WARMUP = 600.0


def fleet_scenario_text(hours: float, services: int) -> str:
    """Target 1's fleet: each service writes a 64 KiB segment a minute, at its own moment of
    the minute as the fleet case spreads them, after a small base backup (one a day); the
    replicator at btar's default pace (engine.config) and S3-like request times."""
    lines = _two_regions("fleet", hours)
    for index in range(services):
        lines.append(f'[[services]]\nname = "f{index:04d}"\ntype = "postgresql"\n'
                     'region = "aws-eu-west-1"\nadditional_region = "aws-eu-central-1"\n'
                     '[services.schedule]\nbase_every = "24h"\nbase_duration = "1m"\n'
                     'base_size = "128KiB"\nbase_objects = 2\nlog_every = "1m"\n'
                     f'log_size = "64KiB"\nfirst_log = "{60 + 60 * index / services:.3f}s"\n')
    lines.append(f'[replicator]\npoll_interval = "{FLEET_POLL_INTERVAL:g}s"\n'
                 'busy_poll_interval = "0.5s"\nconcurrency = 8\n')
    lines.append('[[expect]]\nkind = "never_published_unverified"\n')
    return "\n".join(lines)


def fleet_lags(result: RunResult, since: float) -> dict[str, float]:
    """Each service's p99 (nearest rank) of the lags of its log segments published after
    ``since`` seconds."""
    lags: dict[str, list[float]] = {}
    for entry in result.journal.entries:
        if entry["op"] == "publish" and entry["item"].startswith("log/") \
                and entry["published_at"] > since:
            lags.setdefault(entry["service"], []).append(entry["lag"])
    return {service: sorted(values)[math.ceil(len(values) * 0.99) - 1]
            for service, values in lags.items()}


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


@dataclass
class Measured:
    result: RunResult
    cpu: float
    #: per virtual hour: (CPU seconds, engine passes ended in it)
    hours: list[tuple[float, int]]


def run_by_hours(loaded: LoadedScenario) -> Measured:
    """``run_scenario`` one virtual hour at a time (as simulator.replay does), with the CPU of
    each hour."""
    scenario = loaded.scenario
    cpu = time.process_time()
    began = time.perf_counter()
    world, replicator, sampler, _ = build(loaded, scenario.seed)
    hours: list[tuple[float, int]] = []
    stops, crashed = 0, None
    for hour in range(1, math.ceil(scenario.duration / 3600) + 1):
        until = min(hour * 3600.0, scenario.duration)
        at_start, passes = time.process_time(), replicator.passes
        stops += 1
        crashed = guarded(world, functools.partial(world.env.run, until=until))
        hours.append((time.process_time() - at_start, replicator.passes - passes))
        if crashed is not None:
            break
    # each run(until=...) processes its stop event, and the next one processes it again
    events = world.env.events_processed - 2 * max(0, stops - 1)
    result = conclude(loaded, scenario.seed, world, sampler, crashed, events,
                      time.perf_counter() - began)
    return Measured(result, time.process_time() - cpu, hours)


def per_pass_ms(hours: list[tuple[float, int]]) -> float:
    cpu, passes = sum(h[0] for h in hours), sum(h[1] for h in hours)
    return cpu / max(passes, 1) * 1000


#: the last virtual hour's CPU per pass against the first's at most, for "linear in history"
#: (the rest is the noise of a shared machine between two hours)
LINEAR_TOLERANCE = 1.10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=6.0, help="virtual hours (default 6)")
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--wal", default="1m", help="WAL/binlog cadence (default 1m)")
    parser.add_argument("--repeat", type=int, default=1, help="runs; medians are printed")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    parser.add_argument("--fleet", action="store_true",
                        help="target 1's fleet instead (a 64 KiB segment a minute per service, "
                             "btar's default pace): its lag")
    args = parser.parse_args()
    if args.fleet:
        fleet(args)
        return
    loaded = parse_scenario(scenario_text(args.hours, args.services, args.wal).encode(),
                            "benchmark.btar.toml")
    runs = [run_by_hours(loaded) for _ in range(max(1, args.repeat))]
    for measured in runs:
        assert measured.result.ok, [v for v in measured.result.verdicts if not v.holds]
    result = runs[0].result
    wall = statistics.median(m.result.wall_seconds for m in runs)
    cpu = statistics.median(m.cpu for m in runs)
    days = result.virtual_seconds / 86400
    entries = result.journal.entries
    published = sum(1 for e in entries if e["op"] == "publish")
    passes = sum(1 for e in entries if e["op"] == "pass" and e["phase"] == "ok")
    median = "median of " + str(len(runs)) + " runs, " if len(runs) > 1 else ""
    print(f"{args.services} services, {args.wal} WAL, {args.hours:g} virtual hours: "
          f"{result.events} SimPy events, {passes} engine passes, {published} items published, "
          f"{len(entries)} journal entries")
    print(f"simulator ({median}{', '.join(f'{m.result.wall_seconds:.2f}' for m in runs)} s): "
          f"{wall:.2f} s wall, {days / wall:.4f} virtual days per wall second "
          f"({result.virtual_seconds / wall:.0f}x real time)")
    # CPU seconds too: on a shared machine the wall clock also counts the other processes.
    print(f"simulator CPU: {cpu:.2f} s, {days / cpu:.4f} virtual days per CPU second, "
          f"{cpu / max(passes, 1) * 1000:.2f} ms per engine pass")
    # Linearity: a pass in the last hour against one in the first (the first hour holds the
    # warm-up: imports done, catalog empty, the first full listings).
    hourly = [per_pass_ms([(statistics.median(m.hours[i][0] for m in runs),
                            runs[0].hours[i][1])]) for i in range(len(runs[0].hours))]
    growth = hourly[-1] / hourly[0] if len(hourly) > 1 else None
    if growth is not None:
        print(f"CPU per engine pass by virtual hour: first {hourly[0]:.2f} ms, last "
              f"{hourly[-1]:.2f} ms ({growth:.2f}x; 1.00x is linear in history); every hour: "
              + " ".join(f"{ms:.2f}" for ms in hourly))
    # the bare loop's best of three: it is short, so a busy machine disturbs it most
    bares = []
    for _ in range(3):
        at = time.process_time()
        bares.append((bare_loop(result.events), time.process_time() - at))
    bare, bare_cpu = min(b[0] for b in bares), min(b[1] for b in bares)
    print(f"bare SimPy loop, same {result.events} events: {bare * 1000:.1f} ms "
          f"({bare_cpu * 1000:.1f} ms CPU)")
    print(f"overhead ratio (simulator / bare SimPy): {wall / bare:.0f}x wall, "
          f"{cpu / bare_cpu:.0f}x CPU")
    scale = (24 / args.hours) * (100 / args.services)
    exact = args.hours == 24 and args.services == 100
    how = "measured" if exact else "projected as if linear in services and history"
    print(f"target 2: 100 services x 1 day in {wall * scale:.0f} s wall, {cpu * scale:.0f} s "
          f"CPU ({how}; target <= {TARGET_SECONDS_PER_DAY_AT_100:.0f} s): "
          f"{'met' if wall * scale <= TARGET_SECONDS_PER_DAY_AT_100 else 'not met'}; "
          f"overhead {cpu / bare_cpu:.0f}x CPU (target <= {TARGET_OVERHEAD:.0f}x): "
          f"{'met' if cpu / bare_cpu <= TARGET_OVERHEAD else 'not met'}; linear in history "
          f"(last hour <= {LINEAR_TOLERANCE:.2f}x the first): "
          + ("-" if growth is None else 'met' if growth <= LINEAR_TOLERANCE else 'not met'))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "services": args.services, "hours": args.hours, "wal": args.wal,
            "runs": len(runs), "events": result.events, "passes": passes,
            "wall_s": wall, "cpu_s": cpu, "per_pass_ms": cpu / max(passes, 1) * 1000,
            "hourly_per_pass_ms": hourly, "growth": growth,
            "bare_wall_s": bare, "bare_cpu_s": bare_cpu,
            "day_at_100_wall_s": wall * scale, "day_at_100_cpu_s": cpu * scale,
            "measured": exact}, indent=1))


def fleet(args: argparse.Namespace) -> None:
    """Target 1's fleet for ``args.hours`` virtual hours: the time the simulation takes, and
    each service's lag after the warm-up against the fleet case's bound."""
    loaded = parse_scenario(fleet_scenario_text(args.hours, args.services).encode(),
                            "fleet.btar.toml")
    measured = run_by_hours(loaded)
    result = measured.result
    assert result.ok, [v for v in result.verdicts if not v.holds]
    passes = sum(1 for e in result.journal.entries if e["op"] == "pass" and e["phase"] == "ok")
    lags = fleet_lags(result, FLEET_WARMUP)
    worst = max(lags.values()) if lags else math.inf
    print(f"fleet of {args.services} services, {args.hours:g} virtual hours: {passes} engine "
          f"passes, {result.wall_seconds:.1f} s wall, {measured.cpu:.1f} s CPU "
          f"({measured.cpu / max(passes, 1) * 1000:.2f} ms per pass)")
    median = statistics.median(lags.values()) if lags else math.inf
    print(f"lag p99 after {FLEET_WARMUP:.0f} s of warm-up: worst service {worst:.2f} s "
          f"(target <= {FLEET_LAG_TARGET:.0f} s): "
          f"{'met' if worst <= FLEET_LAG_TARGET else 'not met'}; median service {median:.2f} s; "
          f"{len(lags)} services published")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "services": args.services, "hours": args.hours, "passes": passes,
            "wall_s": result.wall_seconds, "cpu_s": measured.cpu, "worst_p99_s": worst,
            "median_p99_s": median, "services_published": len(lags)}, indent=1))


if __name__ == "__main__":
    main()

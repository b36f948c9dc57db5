"""Issue 17's target 2: the simulator replays 100 services x 1 day of 1-minute WAL in <= 60 s
wall, at most 20x a bare SimPy loop with as many events, its cost linear in history; and
target 1's "also 1 h virtual of the same fleet in the simulator", against the fleet case's
lag bound. Runs tests/benchmarks/bench_simulator.py as a program (its own process: a
simulated day of 100 services holds about 1.5 GB), 100 x 24 h, or 10 x 24 h with --quick
(then projected to 100 services, as if linear in them: the table says so); the fleet with
1,000 services, 100 with --quick."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.benchmarks.bench_simulator import (
    FLEET_LAG_TARGET,
    FLEET_WARMUP,
    LINEAR_TOLERANCE,
    TARGET_OVERHEAD,
    TARGET_SECONDS_PER_DAY_AT_100,
)
from tests.benchmarks.harness.proc import progress, run
from tests.benchmarks.harness.results import Case, Row

SCRIPT = Path(__file__).parents[1] / "bench_simulator.py"
ROOT = Path(__file__).parents[3]


def run_case(folder: Path, quick: bool) -> Case:
    services = 10 if quick else 100
    case = Case("simulator")
    progress(f"simulator: {services} services x 24 virtual hours")
    figures = folder / "simulator.json"
    done = run([sys.executable, str(SCRIPT), "--hours", "24", "--services", str(services),
                "--json", str(figures)], cwd=ROOT).check("bench_simulator.py")
    result = json.loads(figures.read_text())
    case.details.update(result, peak_rss_mib=round(done.max_rss_mib))
    how = "measured" if result["measured"] else f"projected from {services} services"
    day = result["day_at_100_wall_s"]
    case.add(Row("simulator: 100 services x 1 day", day, unit="s",
                 target=f"<= {TARGET_SECONDS_PER_DAY_AT_100:.0f} s wall",
                 met=day <= TARGET_SECONDS_PER_DAY_AT_100,
                 note=f"{how}; {result['day_at_100_cpu_s']:.0f} s CPU, "
                      f"{result['per_pass_ms']:.2f} ms CPU per engine pass, "
                      f"peak RSS {done.max_rss_mib:.0f} MiB"))
    overhead = result["cpu_s"] / result["bare_cpu_s"]
    case.add(Row("simulator: against a bare SimPy loop (CPU)", result["cpu_s"],
                 "bare SimPy loop, same events", result["bare_cpu_s"],
                 target=f"<= {TARGET_OVERHEAD:.0f}x", met=overhead <= TARGET_OVERHEAD,
                 note=f"{result['events']:,} events"))
    growth = result["growth"]
    hourly = result["hourly_per_pass_ms"]
    case.add(Row("simulator: CPU per pass, last virtual hour / first", growth, unit="",
                 target=f"<= {LINEAR_TOLERANCE:.2f} (linear in history)",
                 met=growth <= LINEAR_TOLERANCE,
                 note=f"{hourly[0]:.2f} -> {hourly[-1]:.2f} ms"))
    fleet = 100 if quick else 1000
    progress(f"simulator: target 1's fleet, {fleet} services x 1 virtual hour")
    figures = folder / "fleet.json"
    run([sys.executable, str(SCRIPT), "--fleet", "--hours", "1", "--services", str(fleet),
         "--json", str(figures)], cwd=ROOT).check("bench_simulator.py --fleet")
    result = json.loads(figures.read_text())
    case.details["fleet"] = result
    worst = result["worst_p99_s"]
    case.add(Row(f"simulator: fleet of {fleet} x 1 h, worst service's lag p99", worst,
                 target=f"<= {FLEET_LAG_TARGET:.0f} s", met=worst <= FLEET_LAG_TARGET,
                 note=f"after {FLEET_WARMUP:.0f} s of warm-up; median service "
                      f"{result['median_p99_s']:.2f} s; {result['passes']:,} passes in "
                      f"{result['wall_s']:.0f} s wall"))
    return case

"""Case 4: restorable window and restore plan at one million log segments (a real SQLite
catalog), against the naive peer: folding every segment (tests/benchmarks/bench_planning.py)."""

from __future__ import annotations

from tests.benchmarks.bench_planning import measure
from tests.benchmarks.harness.proc import progress
from tests.benchmarks.harness.results import Case, Row

SEGMENTS = 1_000_000


def run(segments: int = SEGMENTS) -> Case:
    case = Case("planning")
    progress(f"planning: building a catalog of {segments:,} segments")
    result = measure(segments, quiet=True)
    case.details.update(result)
    label = f"{segments // 1000}k" if segments < 1_000_000 else f"{segments // 1_000_000}M"
    naive = result["naive_window_s"] * 1000
    window = result["window_s"] * 1000
    case.add(Row(f"window @{label} segments", window, "naive fold of every segment", naive,
                 unit="ms", target="< 50 ms", met=window < 50,
                 note=f"catalog built in {result['build_s']:.0f}s; best of 5 (peer: 1 run)"))
    for name, key in (("plan latest", "plan_latest_s"), ("plan random target", "plan_random_s")):
        value = result[key] * 1000
        case.add(Row(f"{name} @{label} segments", value, unit="ms", target="< 50 ms",
                     met=value < 50))
    return case

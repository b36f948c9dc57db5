"""Restore planning on a large catalog: one service, 1,000,000 five-minute log segments and a
base backup a day, in a real SQLite file.

Run: .venv/bin/python -m tests.benchmarks.bench_planning [SEGMENTS]
(also the "planning" case of `make bench`, through measure()).

Peer: the naive way, loading every segment of the region and folding it (restorable_intervals
over all rows), measured in the same run. Prints the ratio.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.catalog import Catalog, _rebuild_runs, to_text
from engine.model import ItemKind, ItemStatus, RegionRole, RegionState, Service, ServiceType
from engine.restore import plan_restore
from engine.windows import BaseMark, SegmentMark, restorable_intervals, window_from_catalog

T0 = datetime(2017, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)
PER_DAY = 288


def build(catalog: Catalog, service: Service, region: str, segments: int) -> None:
    now = to_text(T0)
    rows = []
    for seq in range(1, segments + 1):
        start, end = T0 + STEP * (seq - 1), T0 + STEP * seq
        rows.append({"service": service.name, "region": region, "item_id": f"log/1/{seq:010d}",
                     "kind": "log", "stream": "1", "seq": seq, "start_time": to_text(start),
                     "end_time": to_text(end), "size": 16 * 2**20, "object_count": 1,
                     "status": "available", "reason": "", "completed_at": to_text(end),
                     "available_at": to_text(end), "lag_seconds": 1.0, "updated_at": now,
                     "parent": ""})
        if seq % PER_DAY == 1:
            rows.append({**rows[-1], "item_id": f"base/{seq}", "kind": "base",
                         "start_time": to_text(start), "end_time": to_text(start),
                         "object_count": 2})
    catalog.db.table("items").insert_all(rows, batch_size=20_000)
    objects = [{"service": service.name, "region": region, "item_id": r["item_id"],
                "key": r["item_id"] + (".manifest" if r["kind"] == "base" else ""),
                "size": r["size"], "sha256": "0" * 64, "is_marker": 1, "status": "available",
                "method": "", "verified_by": "", "attempts": 1, "updated_at": now}
               for r in rows]
    catalog.db.table("objects").insert_all(objects, batch_size=20_000)
    _rebuild_runs(catalog.conn, service.name, region)


def naive_window(catalog: Catalog, service: str, region: str) -> int:
    bases, segments = [], []
    for row in catalog.items(service, region, statuses=[ItemStatus.AVAILABLE]):
        if row.kind == ItemKind.BASE:
            bases.append(BaseMark(row.end_time, row.stream, row.seq, row.item_id))
        else:
            segments.append(SegmentMark(row.stream, row.seq, row.end_time, row.start_time))
    return len(restorable_intervals(bases, segments))


def timed(label: str, fn, repeat: int = 5, *, quiet: bool = False) -> float:  # type: ignore[no-untyped-def]
    """Best of ``repeat`` calls, in seconds (printed unless ``quiet``)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    if not quiet:
        print(f"  {label:<44} {best * 1000:9.2f} ms")
    return best


def measure(segments: int = 1_000_000, *, quiet: bool = False) -> dict[str, float]:
    """Build the catalog in a temporary folder and time the queries: seconds each (best of 5;
    the naive peer once), plus the build time."""
    service = Service("big", ServiceType.POSTGRESQL, "aws-eu-west-1")
    region = "aws-eu-central-1"
    with tempfile.TemporaryDirectory() as folder:
        catalog = Catalog.open(Path(folder) / "btar.sqlite")
        catalog.upsert_service(service, T0)
        catalog.set_location(service.name, region, RegionRole.SECONDARY, RegionState.ACTIVE, T0)
        started = time.perf_counter()
        build(catalog, service, region, segments)
        built = time.perf_counter() - started
        if not quiet:
            print(f"catalog: {segments:,} segments, {segments // PER_DAY:,} base backups, "
                  f"built in {built:.1f}s")
        end = T0 + STEP * segments
        rng = random.Random(7)
        now = end + timedelta(minutes=1)
        window = timed("window (log runs)", lambda: window_from_catalog(
            catalog, service.name, region, RegionRole.SECONDARY), quiet=quiet)
        latest = timed("plan latest", lambda: plan_restore(catalog, service, region, None, now),
                       quiet=quiet)
        random_target = timed("plan random target", lambda: plan_restore(
            catalog, service, region, T0 + (end - T0) * rng.uniform(0.01, 0.99), now),
            quiet=quiet)
        naive = timed("peer: window by folding every segment", lambda: naive_window(
            catalog, service.name, region), repeat=1, quiet=quiet)
        catalog.close()
    return {"segments": segments, "build_s": built, "window_s": window,
            "plan_latest_s": latest, "plan_random_s": random_target, "naive_window_s": naive}


def main() -> None:
    segments = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    result = measure(segments)
    print(f"ratio naive/runs window: {result['naive_window_s'] / result['window_s']:,.0f}x; "
          f"plan latest {result['plan_latest_s'] * 1000:.1f} ms, plan random target "
          f"{result['plan_random_s'] * 1000:.1f} ms")


if __name__ == "__main__":
    main()

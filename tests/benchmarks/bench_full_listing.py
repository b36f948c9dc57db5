"""One full listing of a service's primary at the end of a simulated history, on demand (not
collected by pytest).

    .venv/bin/python tests/benchmarks/bench_full_listing.py [--hours 24] [--repeat 10]

Simulates two services with 1-minute WAL for ``--hours`` virtual hours (the simulator bench's
shape), then times ``discover_primary(full=True)`` of one of them against the world's
memory storage and catalog: reusing the last full listing (engine.listing.FullListingMemo,
what the scheduler does) against the peer, the same listing worked out afresh. Prints the
best of ``--repeat`` for each, per key, and their ratio.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script

from engine.formats import get_layout
from engine.listing import FullListingMemo
from engine.replication import discover_primary
from engine.replication_settings import ReplicationSettings
from simulator.runner import build, guarded
from simulator.scenario import parse_scenario
from tests.benchmarks.bench_simulator import scenario_text
from tests.benchmarks.in_memory import MemoryEffects


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0, help="virtual hours (default 24)")
    parser.add_argument("--repeat", type=int, default=10, help="timed listings of each kind")
    args = parser.parse_args()
    loaded = parse_scenario(scenario_text(args.hours, 2, "1m").encode(), "listing.btar.toml")
    world, _, _, _ = build(loaded, loaded.scenario.seed)
    guarded(world, functools.partial(world.env.run, until=args.hours * 3600.0))
    catalog, service = world.app.catalog, world.app.service("svc-00")
    layout, store, now = get_layout(service.layout), world.stores[service.region], world.now()

    effects = MemoryEffects(store, lambda: now)

    def best(memo: FullListingMemo | None) -> float:
        times = []
        for _ in range(max(1, args.repeat)):
            started = time.perf_counter()
            effects.drive(discover_primary(catalog, layout, service, ReplicationSettings(),
                                           full=True, memo=memo))
            times.append(time.perf_counter() - started)
        return min(times)

    keys = sum(1 for _ in store.iter_objects(f"{service.key_prefix}/"))
    memo = FullListingMemo()
    best(memo)  # the last full listing, which the next ones reuse
    reused = best(memo)
    fresh = best(None)
    print(f"{args.hours:g} virtual hours, {keys} keys of {service.name}: a full listing "
          f"reusing the last one {reused * 1000:.2f} ms ({reused / keys * 1e6:.2f} µs a key); "
          f"worked out afresh {fresh * 1000:.2f} ms ({fresh / keys * 1e6:.2f} µs a key); "
          f"ratio {reused / fresh:.2f}")


if __name__ == "__main__":
    main()

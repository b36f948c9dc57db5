"""Copy throughput between two GCS "regions" (two buckets) on a local fake-gcs-server.

    python tests/benchmarks/bench_gcs.py

Server-side copy (rewrite, verified by CRC32C + MD5) against the streaming fallback (ranged
reads through btar, then a single upload or a resumable upload), one object at a time.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.storage.gcs import GcsStorage
from engine.storage.locations import GcsLocation
from tests.integration.gcs_server import FakeGcs, fake_gcs_server

KIB, MIB = 1024, 1024 * 1024
PRIMARY, SECONDARY = "google-europe-west1", "google-europe-west4"


def open_gcs(server: FakeGcs, region_id: str, prefix: str, copy_mode: str = "auto") -> GcsStorage:
    location = GcsLocation(url=f"gs://{server.bucket(region_id)}/{prefix}",
                           emulator_host=server.endpoint, copy_mode=copy_mode)  # type: ignore[arg-type]
    return GcsStorage.from_location(location, region_id)


def run(server: FakeGcs, source: GcsStorage, keys: list[str], size: int,
        copy_mode: str) -> tuple[str, str, int, int, float]:
    target = open_gcs(server, SECONDARY, f"bench-{uuid.uuid4().hex[:8]}", copy_mode)
    methods = set()
    verified = set()
    started = time.perf_counter()
    for key in keys:
        report = target.copy_from(source, key, key)
        methods.add(report.method)
        verified.add(report.verified_by or "none")
    elapsed = time.perf_counter() - started
    for key in keys:  # the emulator keeps everything in memory
        target.delete(key)
    target.close()
    label = f"{'/'.join(sorted(methods))} ({'/'.join(sorted(verified))})"
    return label, copy_mode, len(keys), size, elapsed


def main() -> None:
    rows = []
    with fake_gcs_server() as server:
        source = open_gcs(server, PRIMARY, f"bench-{uuid.uuid4().hex[:8]}")
        small = [f"small/{i:04d}" for i in range(200)]
        payload = os.urandom(64 * KIB)
        for key in small:
            source.write(key, payload)
        big = [f"big/{i}" for i in range(3)]
        for key in big:
            source.write(key, os.urandom(64 * MIB))
        for mode in ("auto", "stream"):
            rows.append(run(server, source, small, 64 * KIB, mode))
            rows.append(run(server, source, big, 64 * MIB, mode))
        source.close()
    print(f"{'method (verified by)':<50} {'mode':<7} {'objects':>7} {'size':>8} "
          f"{'seconds':>8} {'objects/s':>10} {'MiB/s':>8}")
    for label, mode, count, size, elapsed in rows:
        print(f"{label:<50} {mode:<7} {count:>7} {size // KIB:>6}Ki {elapsed:>8.2f} "
              f"{count / elapsed:>10.1f} {count * size / MIB / elapsed:>8.1f}")


if __name__ == "__main__":
    main()

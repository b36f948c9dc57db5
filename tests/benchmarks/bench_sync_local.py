"""Replication throughput on the local backend against `cp -r` of the same tree.

Run: .venv/bin/python tests/benchmarks/bench_sync_local.py [SEGMENTS] [SIZE_KIB]

A primary folder gets SEGMENTS log segments of SIZE_KIB each plus one base backup; btar
enables a secondary and runs one sync pass (copy, verify, publish, catalog). The peer copies
the same folder with `cp -r` (no verification, no catalog). Prints both and the ratio.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.api import Btar
from engine.catalog import Catalog
from engine.formats.native import write_base_backup, write_log_segment
from engine.model import Service, ServiceType
from engine.replication import ReplicationSettings
from engine.runtime import LiveDriver, StorageRegistry
from engine.storage.local import LocalStorage
from engine.storage.locations import LocalLocation


def main() -> None:
    segments = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    size = (int(sys.argv[2]) if len(sys.argv) > 2 else 64) * 1024
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        primary = LocalStorage(root / "aws-eu-west-1")
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        write_base_backup(primary, "bench", "b1", t0, t0, "1", 1,
                          {f"part-{i}": os.urandom(size) for i in range(8)})
        for seq in range(1, segments + 1):
            write_log_segment(primary, "bench", "1", seq, t0 + timedelta(minutes=seq - 1),
                              t0 + timedelta(minutes=seq), os.urandom(size))
        total = (segments + 8) * size
        print(f"{segments + 9} objects, {total / 2**20:.0f} MiB")

        started = time.perf_counter()
        subprocess.run(["cp", "-r", str(root / "aws-eu-west-1"), str(root / "peer")],
                       check=True)
        subprocess.run(["sync"], check=True)
        peer = time.perf_counter() - started

        service = Service("bench", ServiceType.POSTGRESQL, "aws-eu-west-1")
        locations = {r: LocalLocation(url=f"file://{root / r}")
                     for r in ("aws-eu-west-1", "aws-eu-central-1")}
        registry = StorageRegistry(lambda r: LocalStorage(root / r))
        app = Btar([service], dict(locations), Catalog.open(root / "btar.sqlite"),
                   LiveDriver(registry, concurrency=8),
                   settings=ReplicationSettings(batch_size=256))
        app.enable("bench", "aws-eu-central-1")
        started = time.perf_counter()
        [outcome] = app.sync(["bench"])
        ours = time.perf_counter() - started
        assert len(outcome.published) == segments + 1, outcome
        app.close()
        shutil.rmtree(root / "peer")
        print(f"  cp -r (peer)        {peer:7.2f} s  {(segments + 9) / peer:8.0f} objects/s")
        print(f"  btar sync --once    {ours:7.2f} s  {(segments + 9) / ours:8.0f} objects/s "
              f"{total / 2**20 / ours:6.1f} MiB/s (verified, catalogued, fsynced)")
        print(f"  ratio btar/cp: {ours / peer:.1f}x the time")


if __name__ == "__main__":
    main()

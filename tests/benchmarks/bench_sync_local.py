"""Replication throughput on the local backend against `cp -r` and `rclone copy`.

Superseded by the "catchup-local" case of the benchmark harness (btar as its command line, the
peers on the same data, medians, checks); this entry point runs just that case:

    .venv/bin/python -m tests.benchmarks.bench_sync_local [--repeat N]
"""

from __future__ import annotations

import sys

from tests.benchmarks.run import main

if __name__ == "__main__":
    sys.exit(main(["--cases", "catchup-local", *sys.argv[1:]]))

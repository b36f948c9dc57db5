"""Case 3: steady-state lag on the local backend. `btar sync` runs as a daemon with its default
pace (the service is listed again busy_poll_interval = 0.5 s after a listing that found work,
the wait doubling when idle up to poll_interval = 10 s; each segment is published as soon as
its copy verified) while the harness writes one 1 MiB log segment a second
(write_log_segment on the primary's LocalStorage: the object's mtime is its completed_at);
once everything is published the daemon gets SIGTERM, and each item's lag (available_at -
completed_at, computed by btar) is read from the catalog."""

from __future__ import annotations

import signal
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from engine.catalog import Catalog
from engine.formats.native import write_log_segment
from engine.storage.local import LocalStorage
from tests.benchmarks.harness.btar import SECONDARY, SERVICE, BtarWorld, local_region
from tests.benchmarks.harness.checks import local_listing
from tests.benchmarks.harness.data import MIB, PREFIX, T0, payload
from tests.benchmarks.harness.proc import launch, progress, read_launch
from tests.benchmarks.harness.results import Case, Row


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


def run(work: Path, seconds: int, env: Mapping[str, str]) -> Case:
    case = Case("lag")
    primary, dst = work / "lag-primary", work / "lag-dst"
    world = BtarWorld.create(work / "lag-cfg", local_region(primary), local_region(dst), env)
    log = open(work / "lag-daemon.log", "wb")  # noqa: SIM115 (closed below)
    progress(f"lag: btar sync as a daemon (default pace); one 1 MiB segment a second "
             f"for {seconds}s")
    result = work / "lag-daemon.json"
    daemon = launch(world.argv("sync", "--log-format", "json"),
                    result, stdout=log, stderr=log, env=env)
    storage = LocalStorage(primary)
    try:
        started = time.monotonic()
        for seq in range(1, seconds + 1):
            delay = started + seq - 1 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            start = T0 + timedelta(minutes=seq - 1)
            write_log_segment(storage, PREFIX, "1", seq, start, start + timedelta(minutes=1),
                              payload(MIB, seq))
        progress("lag: producer done; waiting until every segment is published")
        deadline = time.monotonic() + 120
        while world.available_items() < seconds and time.monotonic() < deadline:
            if daemon.poll() is not None:
                raise RuntimeError("the btar daemon exited early; "
                                   f"see {work / 'lag-daemon.log'}")
            time.sleep(0.2)
    finally:
        daemon.send_signal(signal.SIGTERM)  # the launcher passes it on to btar
        _, exit_code, rss_kib = read_launch(daemon, result)
        log.close()
    published = world.available_items()
    if published != seconds:
        raise AssertionError(f"lag: {published} of {seconds} segments published in time")
    if len(local_listing(dst)) != seconds:
        raise AssertionError("lag: the destination does not hold every segment")
    catalog = Catalog.open(world.catalog)
    lags = [row.lag_seconds for row in catalog.items(SERVICE, SECONDARY)
            if row.lag_seconds is not None]
    catalog.close()
    if len(lags) != seconds:
        raise AssertionError(f"lag: {len(lags)} lag values for {seconds} segments")
    p50, p99, worst = percentile(lags, 0.5), percentile(lags, 0.99), max(lags)
    case.details.update({"segments": seconds, "lags_s": lags,
                         "p50": p50, "p99": p99, "max": worst,
                         "daemon_exit": exit_code, "daemon_rss_mib": rss_kib / 1024})
    note = f"{seconds} segments, daemon at its default pace, exit {exit_code} on TERM"
    case.add(Row("lag p50 local", p50))
    case.add(Row("lag p99 local", p99, target="< 2 s", met=p99 < 2, note=note))
    case.add(Row("lag max local", worst))
    return case

"""A pass over a pgBackRest or Barman Cloud repository with a long history, on demand (not
collected by pytest).

    .venv/bin/python tests/benchmarks/bench_layout_listing.py [--layout pgbackrest]
        [--days 7] [--repeat 10]

Lays out ``--days`` of one-minute WAL (1,440 archive files a day, already in the catalog:
reading a new segment costs the same either way) and three backups in a memory storage,
then times ``discover_primary`` of a pass that finds one new segment: listed incrementally
(the WAL and what says a backup is complete, after their cursors: what a pass between full
listings does) against the peer, the full listing every pass made before the layouts named
listing areas (reusing the last one as the scheduler does). Prints the best of ``--repeat``
for each, the listing requests of each at 1,000 keys a page, and their ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script

from engine.catalog import Catalog
from engine.formats import get_layout
from engine.formats.pgbackrest import log_item_id, wal_file_name
from engine.listing import FullListingMemo
from engine.model import BackupItem, ItemKind, ItemStatus, ObjectRef, Service, ServiceType
from engine.replication import discover_primary
from engine.replication_settings import ReplicationSettings
from engine.storage.memory import MemoryStorage
from tests.benchmarks.in_memory import MemoryEffects
from tests.pgbackrest_repo import Backup, write_backup, write_info
from tests.unit.test_barman_cloud import backup_info

T0 = datetime(2026, 11, 1, tzinfo=UTC)
PREFIX = "orders"


@dataclass(frozen=True)
class Repository:
    """Where a layout keeps a WAL segment, and how its backups are written."""

    layout: str
    segment_key: Callable[[int], str]
    write_backups: Callable[[MemoryStorage], None]


def _pgbackrest_segment(segno: int) -> str:
    name = wal_file_name(1, segno)
    return f"archive/main/15-1/{name[:16]}/{name}-{hashlib.sha1(name.encode()).hexdigest()}.gz"


def _pgbackrest_backups(store: MemoryStorage) -> None:
    labels = ["20261101-000000F", "20261104-000000F", "20261104-000000F_20261105-000000I"]
    for n, label in enumerate(labels):
        start = T0 + timedelta(days=n + 1)
        write_backup(store, PREFIX, Backup(label, {"pg_data/PG_VERSION": b"15"}, start=start,
                                           stop=start))
    write_info(store, PREFIX, *labels)


def _barman_segment(segno: int) -> str:
    name = wal_file_name(1, segno)
    return f"main/wals/{name[:16]}/{name}.gz"


def _barman_backups(store: MemoryStorage) -> None:
    for backup_id in ("20261101T000000", "20261104T000000", "20261105T000000"):
        store.write(f"{PREFIX}/main/base/{backup_id}/data.tar", b"tar")
        store.write(f"{PREFIX}/main/base/{backup_id}/backup.info", backup_info())


REPOSITORIES = {
    "pgbackrest": Repository("pgbackrest:main", _pgbackrest_segment, _pgbackrest_backups),
    "barman-cloud": Repository("barman-cloud:main", _barman_segment, _barman_backups),
}


def known_segment(repository: Repository, segno: int) -> tuple[BackupItem, datetime]:
    """A timeline-1 segment as the catalog records it (a pass reads only unknown ones)."""
    moment = T0 + timedelta(minutes=segno)
    key = repository.segment_key(segno)
    return BackupItem(ItemKind.LOG, log_item_id(1, segno), moment, moment, "1", segno, (),
                      ObjectRef(key, 3, hashlib.sha256(b"wal").hexdigest()), moment), moment


def lay_out(repository: Repository, store: MemoryStorage, catalog: Catalog, service: Service,
            segments: int) -> None:
    """The WAL, known to the catalog, and three backups."""
    for segno in range(1, segments + 1):
        store.write(f"{PREFIX}/{repository.segment_key(segno)}", b"wal")
    catalog.add_items(service.name, service.region,
                      (known_segment(repository, n) for n in range(1, segments + 1)),
                      ItemStatus.AVAILABLE, T0)
    repository.write_backups(store)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", choices=sorted(REPOSITORIES), default="pgbackrest",
                        help="the repository's layout (default pgbackrest)")
    parser.add_argument("--days", type=float, default=7.0,
                        help="days of one-minute WAL in the archive (default 7)")
    parser.add_argument("--repeat", type=int, default=10, help="timed passes of each kind")
    args = parser.parse_args()
    segments = int(args.days * 1440)
    moment = [T0]
    store = MemoryStorage("primary", clock=lambda: moment[0])
    catalog = Catalog.in_memory()
    repository = REPOSITORIES[args.layout]
    service = Service(PREFIX, ServiceType.POSTGRESQL, "primary", repository.layout, PREFIX)
    lay_out(repository, store, catalog, service, segments)
    layout, settings = get_layout(service.layout), ReplicationSettings()
    effects = MemoryEffects(store, lambda: moment[0])

    memo = FullListingMemo()
    written = [segments]
    moment[0] = T0 + timedelta(days=args.days, hours=1)
    effects.drive(discover_primary(catalog, layout, service, settings, full=True, memo=memo))

    def best(full: bool) -> tuple[float, float]:
        """The best time of a pass that finds one new segment, and its listing requests."""
        times, requests = [], []
        for _ in range(max(1, args.repeat)):
            written[0] += 1
            store.write(f"{PREFIX}/{repository.segment_key(written[0])}", b"wal")
            catalog.add_items(service.name, service.region,
                              [known_segment(repository, written[0])],
                              ItemStatus.AVAILABLE, moment[0])  # no read of its bytes
            moment[0] += timedelta(seconds=settings.listing_settle + 1)
            effects.pages = 0
            started = time.perf_counter()
            effects.drive(discover_primary(catalog, layout, service, settings, full=full,
                                           memo=memo))
            times.append(time.perf_counter() - started)
            requests.append(effects.pages)
        return min(times), max(requests)

    incremental, full = best(False), best(True)
    keys = sum(1 for _ in store.iter_objects(f"{PREFIX}/"))
    print(f"{args.layout}, {args.days:g} days of one-minute WAL ({keys} keys): a pass listed "
          f"incrementally {incremental[0] * 1000:.2f} ms and {incremental[1]:g} listing "
          f"requests; in full (every pass before) {full[0] * 1000:.2f} ms and {full[1]:g} "
          f"requests; ratio {incremental[0] / full[0]:.4f}")


if __name__ == "__main__":
    main()

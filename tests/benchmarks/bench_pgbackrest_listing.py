"""A pass over a pgBackRest repository with a long history, on demand (not collected by
pytest).

    .venv/bin/python tests/benchmarks/bench_pgbackrest_listing.py [--days 7] [--repeat 10]

Lays out a stanza with ``--days`` of one-minute WAL (1,440 archive files a day, already in
the catalog) and three backups in a memory storage, then times ``discover_primary`` of a
pass that finds one new segment: listed incrementally (the archive and the kept manifests
after their cursors, what a pass between full listings does) against the peer, the full
listing every pass made before the layout named listing areas (reusing the last one as the
scheduler does). Prints the best of ``--repeat`` for each, the listing requests of each at
1,000 keys a page, and their ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script

from engine.catalog import Catalog
from engine.effects import Effect, ListPage, Now, ReadObject
from engine.formats import get_layout
from engine.formats.pgbackrest import log_item_id, wal_file_name
from engine.listing import FullListingMemo
from engine.model import BackupItem, ItemKind, ItemStatus, ObjectRef, Service, ServiceType
from engine.replication import discover_primary
from engine.replication_settings import ReplicationSettings
from engine.storage.memory import MemoryStorage
from tests.pgbackrest_repo import Backup, write_backup, write_info

T0 = datetime(2026, 11, 1, tzinfo=UTC)
SERVICE = Service("orders", ServiceType.POSTGRESQL, "primary", "pgbackrest:main", "orders")


def segment_key(segno: int) -> str:
    name = wal_file_name(1, segno)
    return f"archive/main/15-1/{name[:16]}/{name}-{hashlib.sha1(name.encode()).hexdigest()}.gz"


def known_segment(segno: int) -> tuple[BackupItem, datetime]:
    """A timeline-1 segment as the catalog records it (a pass reads only unknown ones)."""
    moment = T0 + timedelta(minutes=segno)
    return BackupItem(ItemKind.LOG, log_item_id(1, segno), moment, moment, "1", segno, (),
                      ObjectRef(segment_key(segno), 3, hashlib.sha256(b"wal").hexdigest()),
                      moment), moment


def lay_out(store: MemoryStorage, catalog: Catalog, segments: int) -> None:
    """The archive's segments, known to the catalog, and three backups with their info
    files."""
    for segno in range(1, segments + 1):
        store.write(f"{SERVICE.key_prefix}/{segment_key(segno)}", b"wal")
    catalog.add_items(SERVICE.name, SERVICE.region,
                      (known_segment(n) for n in range(1, segments + 1)), ItemStatus.AVAILABLE,
                      T0)
    labels = ["20261101-000000F", "20261104-000000F", "20261104-000000F_20261105-000000I"]
    for n, label in enumerate(labels):
        start = T0 + timedelta(days=n + 1)
        write_backup(store, SERVICE.key_prefix, Backup(label, {"pg_data/PG_VERSION": b"15"},
                                                       start=start, stop=start))
    write_info(store, SERVICE.key_prefix, *labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7.0,
                        help="days of one-minute WAL in the archive (default 7)")
    parser.add_argument("--repeat", type=int, default=10, help="timed passes of each kind")
    args = parser.parse_args()
    segments = int(args.days * 1440)
    moment = [T0]
    store = MemoryStorage("primary", clock=lambda: moment[0])
    catalog = Catalog.in_memory()
    lay_out(store, catalog, segments)
    layout, settings = get_layout(SERVICE.layout), ReplicationSettings()
    pages = [0]

    def drive(procedure: Generator[Effect, Any, int]) -> None:
        answer: Any = None
        try:
            while True:
                effect = procedure.send(answer)
                if isinstance(effect, ListPage):
                    pages[0] += 1
                    answer = store.list_page(effect.prefix, effect.start_after, effect.limit)
                elif isinstance(effect, ReadObject):
                    answer = store.read_bytes(effect.key)
                elif isinstance(effect, Now):
                    answer = moment[0]
                else:
                    raise RuntimeError(f"unexpected effect {effect!r}")
        except StopIteration:
            return

    memo = FullListingMemo()
    written = [segments]
    moment[0] = T0 + timedelta(days=args.days, hours=1)
    drive(discover_primary(catalog, layout, SERVICE, settings, full=True, memo=memo))

    def best(full: bool) -> tuple[float, float]:
        """The best time of a pass that finds one new segment, and its listing requests."""
        times, requests = [], []
        for _ in range(max(1, args.repeat)):
            written[0] += 1
            store.write(f"{SERVICE.key_prefix}/{segment_key(written[0])}", b"wal")
            catalog.add_items(SERVICE.name, SERVICE.region, [known_segment(written[0])],
                              ItemStatus.AVAILABLE, moment[0])  # no read of its bytes
            moment[0] += timedelta(seconds=settings.listing_settle + 1)
            pages[0] = 0
            started = time.perf_counter()
            drive(discover_primary(catalog, layout, SERVICE, settings, full=full, memo=memo))
            times.append(time.perf_counter() - started)
            requests.append(pages[0])
        return min(times), max(requests)

    incremental, full = best(False), best(True)
    keys = sum(1 for _ in store.iter_objects(f"{SERVICE.key_prefix}/"))
    print(f"pgBackRest, {args.days:g} days of one-minute WAL ({keys} keys): a pass listed "
          f"incrementally {incremental[0] * 1000:.2f} ms and {incremental[1]:g} listing "
          f"requests; in full (every pass before) {full[0] * 1000:.2f} ms and {full[1]:g} "
          f"requests; ratio {incremental[0] / full[0]:.4f}")


if __name__ == "__main__":
    main()

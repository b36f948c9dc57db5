"""The info files of a pgBackRest repository mirrored into the secondary (engine.mirror), over
memory storages with the live driver: a backup.info that lists a backup the secondary lacks
is held back (and `btar check` says which), written once that backup is published, and not
read or written again while unchanged; archive.info whenever it changed. And a corrupted
copy of a file the manifest records is caught by its rck (SHA-1)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

from engine.alerts import AlertsConfig
from engine.api import Btar
from engine.copy_queue import DestinationQueue
from engine.effects import CopyResult, DeleteBatch, ListPage, Now, ReadObject, StartCopy, drive
from engine.formats import get_layout
from engine.mirror import Mirror
from engine.model import ItemStatus, ObjectInfo, RegionRole
from engine.operations import check
from engine.restore_tools import ToolOptions
from engine.storage.faults import FaultyStorage
from tests.pgbackrest_repo import (
    ARCHIVE_INFO,
    FILES,
    FULL,
    INCR,
    PRIMARY,
    SECONDARY,
    T0,
    Backup,
    backup_info,
    incremental,
    pg_world,
    write_backup,
    write_info,
    write_wal,
)

INFO = "orders/backup/main/backup.info"


def exists(store: FaultyStorage, key: str) -> bool:
    return any(o.key == key for o in store.inner.iter_objects(key))


def blocked(app: Btar) -> list[str]:
    return [row.blocked for row in app.catalog.mirror_rows("orders", SECONDARY) if row.blocked]


def test_backup_info_waits_until_every_backup_it_lists_is_published() -> None:
    app, stores, clock = pg_world()
    primary, secondary = stores[PRIMARY], stores[SECONDARY]
    write_backup(primary, "orders", Backup(FULL, FILES))
    write_backup(primary, "orders", incremental())
    write_info(primary, "orders", FULL, INCR)
    secondary.corrupt = lambda key: INCR in key  # the incremental backup's copies fail
    app.sync(["orders"])
    published = app.catalog.item_ids("orders", SECONDARY, ItemStatus.AVAILABLE)
    assert f"base/{FULL}" in published
    assert f"base/{INCR}" not in published
    # backup.info would have pgBackRest pick a backup the secondary lacks: not written
    assert not exists(secondary, INFO)
    assert not exists(secondary, f"{INFO}.copy")
    assert blocked(app) == [f"it lists base/{INCR}, not published there"] * 2
    assert any(e.message == f"backup/main/backup.info not mirrored to {SECONDARY}: it lists "
               f"base/{INCR}, not published there" for e in app.events(100))
    problems = [p.message for p in check(app, AlertsConfig(), clock.now())
                if p.check == "mirror"]
    assert problems == [f"orders: backup/main/backup.info is not mirrored to {SECONDARY}: "
                        f"it lists base/{INCR}, not published there",
                        f"orders: backup/main/backup.info.copy is not mirrored to "
                        f"{SECONDARY}: it lists base/{INCR}, not published there"]
    # archive.info names no backup: mirrored at once, byte-identical
    assert secondary.inner.read_bytes("orders/archive/main/archive.info") == ARCHIVE_INFO
    assert secondary.inner.read_bytes("orders/archive/main/archive.info.copy") == ARCHIVE_INFO

    secondary.corrupt = lambda key: False
    clock.advance(60)
    app.sync(["orders"])
    assert f"base/{INCR}" in app.catalog.item_ids("orders", SECONDARY, ItemStatus.AVAILABLE)
    assert secondary.inner.read_bytes(INFO) == backup_info(FULL, INCR)
    assert secondary.inner.read_bytes(f"{INFO}.copy") == backup_info(FULL, INCR)
    assert blocked(app) == []
    rows = {r.key: r for r in app.catalog.mirror_rows("orders", SECONDARY)}
    assert rows["backup/main/backup.info"].sha256 == \
        hashlib.sha256(backup_info(FULL, INCR)).hexdigest()
    assert all(p.check != "mirror" for p in check(app, AlertsConfig(), clock.now()))

    # Unchanged at the primary: neither read there nor written again.
    written = secondary.inner.stat(INFO).last_modified
    primary.fail_reads = lambda key: key.endswith((".info", ".info.copy"))
    clock.advance(60)
    app.sync(["orders"])
    assert secondary.inner.stat(INFO).last_modified == written
    assert not any("not mirrored" in e.message for e in app.events(20)
                   if e.at > written)

    # pgBackRest expires the incremental backup: the shorter backup.info is ready at once
    primary.fail_reads = lambda key: False
    clock.advance(60)
    write_info(primary, "orders", FULL)
    app.sync(["orders"])
    assert secondary.inner.read_bytes(INFO) == backup_info(FULL)
    assert secondary.inner.read_bytes(f"{INFO}.copy") == backup_info(FULL)


def test_a_corrupted_copy_of_a_file_the_manifest_records_is_caught_by_its_rck() -> None:
    app, stores, clock = pg_world()
    primary, secondary = stores[PRIMARY], stores[SECONDARY]
    backup = Backup(FULL, FILES)
    write_backup(primary, "orders", backup)
    write_info(primary, "orders", FULL)
    key = f"orders/{backup.folder}/pg_data/global/pg_control.gz"
    rck = hashlib.sha1(b"control bytes").hexdigest()
    secondary.corrupt = lambda k: k == key  # one byte flips on the way
    app.sync(["orders"])
    assert f"base/{FULL}" not in app.catalog.item_ids("orders", SECONDARY,
                                                      ItemStatus.AVAILABLE)
    assert any(f"copy of {backup.folder}/pg_data/global/pg_control.gz failed" in e.message
               and f"does not match the recorded {rck}" in e.message for e in app.events(50))
    assert not exists(secondary, key)  # removed from the destination
    assert not exists(secondary, INFO)

    # At the primary the file now differs from what the manifest records (same size): the
    # copy's SHA-1 is not the rck, so it is never published either.
    secondary.corrupt = lambda k: False
    primary.inner.write(key, b"CONTROL BYTES")
    clock.advance(60)
    app.sync(["orders"])
    assert f"base/{FULL}" not in app.catalog.item_ids("orders", SECONDARY,
                                                      ItemStatus.AVAILABLE)
    mismatch = f"sha1 {hashlib.sha1(b'CONTROL BYTES').hexdigest()} does not match the " \
        f"recorded {rck}"
    assert any(mismatch in e.message for e in app.events(50) if e.at >= clock.now())
    assert not exists(secondary, key)
    assert not exists(secondary, INFO)


def test_a_fork_fetches_the_mirrored_info_files(tmp_path: Path) -> None:
    app, stores, _ = pg_world()
    primary = stores[PRIMARY]
    backup = Backup(FULL, FILES)
    write_backup(primary, "orders", backup)
    write_info(primary, "orders", FULL)
    commits = write_wal(primary, "orders", range(2, 5), T0 + timedelta(seconds=4))
    app.sync(["orders"])
    target = commits[2] + timedelta(milliseconds=500)
    outcome = app.fork("orders", SECONDARY, target, tmp_path / "fork",
                       tools=ToolOptions(fetch_only=True))
    repo = tmp_path / "fork" / "repo"
    for name in ("backup/main/backup.info", "backup/main/backup.info.copy",
                 "archive/main/archive.info", "archive/main/archive.info.copy"):
        assert (repo / name).read_bytes() == primary.inner.read_bytes(f"orders/{name}")
        assert name in {o.key for o in outcome.plan.objects}
    assert (repo / backup.folder / "backup.manifest").read_bytes() == backup.manifest()


def test_a_write_is_recorded_only_once_verified_and_other_bytes_are_removed() -> None:
    """engine.mirror on its own, as the scheduler drives it between listings: the write is a
    copy pinned to the SHA-256 of the bytes judged; a copy that proves other bytes (the file
    was rewritten at the primary in between) is deleted from the destination, never recorded,
    and judged again at the next pass. Nothing is asked of the primary but reads."""
    app, _, clock = pg_world()
    service = app.service("orders")
    catalog = app.catalog
    mirror = Mirror(catalog, page_size=1000)
    entry = ObjectInfo("archive/main/archive.info", len(ARCHIVE_INFO), clock.now())
    mirror.saw("orders", [entry])
    asked: list[object] = []

    def perform(effect: object) -> object:
        asked.append(effect)
        if isinstance(effect, ReadObject):
            assert effect.region == PRIMARY
            return ARCHIVE_INFO
        if isinstance(effect, StartCopy):
            assert effect.task.destination == SECONDARY
            return True
        if isinstance(effect, DeleteBatch):
            assert effect.region == SECONDARY
            return ("",)
        return clock.now()

    queue = DestinationQueue(service, SECONDARY, RegionRole.SECONDARY)
    drive(mirror.prepare(get_layout(service.layout), service, [queue]), perform)
    drive(mirror.start(), perform)
    [task] = [e.task for e in asked if isinstance(e, StartCopy)]
    assert task.sha256 == hashlib.sha256(ARCHIVE_INFO).hexdigest()
    assert mirror.in_flight == 1
    other = CopyResult(task, ok=True, sha256="0" * 64, verified_by="sha256-streamed")
    assert drive(mirror.settle([other]), perform) == []
    assert [e for e in asked if isinstance(e, DeleteBatch)] == [
        DeleteBatch(SECONDARY, ("orders/archive/main/archive.info",))]
    assert catalog.mirror_rows("orders", SECONDARY) == []
    assert any("mirror of archive/main/archive.info failed" in e.message
               for e in app.events(10))

    asked.clear()
    drive(mirror.prepare(get_layout(service.layout), service, [queue]), perform)
    drive(mirror.start(), perform)
    assert not [e for e in asked if isinstance(e, ReadObject)]  # read once per version
    [task] = [e.task for e in asked if isinstance(e, StartCopy)]
    good = CopyResult(task, ok=True, sha256=task.sha256, verified_by="sha256-streamed")
    assert drive(mirror.settle([good]), perform) == []
    [row] = catalog.mirror_rows("orders", SECONDARY)
    assert (row.sha256, row.source_modified) == (task.sha256, entry.last_modified)
    asked.clear()
    drive(mirror.prepare(get_layout(service.layout), service, [queue]), perform)
    assert all(isinstance(e, Now) for e in asked)  # unchanged: no read, no write
    assert not mirror.due


def test_the_files_to_mirror_are_listed_when_no_full_listing_showed_them() -> None:
    """Between full listings nothing lists the info files (they are in no listing area): the
    mirror lists them itself the first time it prepares a service, and again once a listing
    said the tool rewrote them (``saw(service, None)``), and not in between."""
    app, stores, clock = pg_world()
    service = app.service("orders")
    write_info(stores[PRIMARY], "orders", FULL)
    mirror = Mirror(app.catalog, page_size=1000)
    pages: list[ListPage] = []

    def perform(effect: object) -> object:
        if isinstance(effect, ListPage):
            pages.append(effect)
            return stores[PRIMARY].list_page(effect.prefix, effect.start_after, effect.limit)
        if isinstance(effect, ReadObject):
            return stores[PRIMARY].read_bytes(effect.key)
        return clock.now()

    queue = DestinationQueue(service, SECONDARY, RegionRole.SECONDARY)
    layout = get_layout(service.layout)
    drive(mirror.prepare(layout, service, [queue]), perform)
    assert [p.prefix for p in pages] == ["orders/backup/main/backup.info",
                                         "orders/archive/main/archive.info"]
    assert [o.key for o in mirror.listed["orders"]] == [
        "backup/main/backup.info", "backup/main/backup.info.copy",
        "archive/main/archive.info", "archive/main/archive.info.copy"]
    pages.clear()
    drive(mirror.prepare(layout, service, [queue]), perform)
    assert pages == []
    mirror.saw("orders", None)
    drive(mirror.prepare(layout, service, [queue]), perform)
    assert len(pages) == 2

"""A pgBackRest repository listed incrementally between full listings (engine.listing): only
the archive and the kept manifests are listed, after their cursors; a new kept manifest
announces its backup, whose manifest, folder, kept manifest and backup history file are then
listed on their own, so that the item is the one a full listing describes; the info files are
listed again for the mirror. Over memory storages with the live driver and a manual clock."""

from __future__ import annotations

from datetime import timedelta

from engine.api import Btar
from engine.model import ItemStatus
from tests.pgbackrest_repo import (
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


def published(app: Btar) -> set[str]:
    return app.catalog.item_ids("orders", SECONDARY, ItemStatus.AVAILABLE)


def test_between_full_listings_only_the_archive_and_the_kept_manifests_are_listed() -> None:
    app, stores, clock = pg_world()
    primary = stores[PRIMARY]
    write_backup(primary, "orders", Backup(FULL, FILES))
    write_wal(primary, "orders", range(2, 6), T0)
    write_info(primary, "orders", FULL)
    clock.advance(120)  # settled: a full listing moves the cursors over them
    app.sync(["orders"])  # the first pass lists in full
    assert ("orders/", None) in primary.pages
    assert published(app) >= {f"base/{FULL}", "log/1/0000000005"}

    # A minute later: two segments more, and an incremental backup under way.
    clock.advance(60)
    write_wal(primary, "orders", range(6, 8), T0 + timedelta(minutes=1))
    write_backup(primary, "orders", incremental(), complete=False)
    primary.pages.clear()
    app.sync(["orders"])
    prefixes = primary.prefixes()
    assert "orders/" not in prefixes
    assert {"orders/archive/main/", "orders/backup/main/backup.history/"} <= prefixes
    assert all(after is not None for prefix, after in primary.pages
               if prefix == "orders/archive/main/")  # after its cursor
    assert "log/1/0000000007" in published(app)
    assert f"base/{INCR}" not in app.catalog.item_ids("orders", PRIMARY, ItemStatus.AVAILABLE)

    # It completes: its manifest sorts before the files written before it, in a folder no
    # cursor passes; the kept manifest, written after it, announces it.
    clock.advance(60)
    write_backup(primary, "orders", incremental())
    write_info(primary, "orders", FULL, INCR)
    primary.pages.clear()
    app.sync(["orders"])
    prefixes = primary.prefixes()
    assert "orders/" not in prefixes
    assert f"orders/backup/main/{INCR}/" in prefixes  # its payload, listed on its own
    assert f"base/{INCR}" in published(app)
    # the mirror listed the rewritten info files: the secondary's backup.info lists it
    assert stores[SECONDARY].inner.read_bytes("orders/backup/main/backup.info") == \
        backup_info(FULL, INCR)

    # The same repository listed in full by another catalog: the same items, object by object.
    clock.advance(60)
    again, _, _ = pg_world(stores, clock)  # the same repository, a catalog of its own
    again.sync(["orders"], full_listing=True)
    for item_id in (f"base/{FULL}", f"base/{INCR}", "log/1/0000000007"):
        assert again.catalog.item_refs("orders", PRIMARY, item_id) == \
            app.catalog.item_refs("orders", PRIMARY, item_id), item_id
        assert again.catalog.item("orders", PRIMARY, item_id) == \
            app.catalog.item("orders", PRIMARY, item_id), item_id
    incr_keys = {o.key for o in app.catalog.item_refs("orders", PRIMARY, f"base/{INCR}")}
    assert incremental().backup_file in incr_keys
    assert f"backup/main/backup.history/2026/{INCR}.manifest.gz" in incr_keys


def test_a_kept_manifest_whose_backup_expired_since_is_no_item() -> None:
    app, stores, clock = pg_world()
    primary = stores[PRIMARY]
    write_backup(primary, "orders", Backup(FULL, FILES))
    write_info(primary, "orders", FULL)
    app.sync(["orders"])
    clock.advance(60)
    write_backup(primary, "orders", incremental())
    for info in list(primary.inner.iter_objects(f"orders/backup/main/{INCR}/")):
        primary.inner.delete(info.key)  # expired between its completion and this pass
    app.sync(["orders"])
    assert f"base/{INCR}" not in app.catalog.item_ids("orders", PRIMARY, ItemStatus.AVAILABLE)
    assert [e.message for e in app.events(100) if e.level == "error"] == []

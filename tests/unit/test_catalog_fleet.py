"""Schema v7 (the catalog at fleet size): item counts kept by triggers, and the batched reads
of engine.catalog.fleet, which must say exactly what the per-service reads say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlite_utils
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.catalog import MIGRATIONS, Catalog
from engine.model import BackupItem, ItemKind, ItemStatus, ObjectRef, RegionRole, RegionState

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
PRIMARY, SECONDARY = "aws-eu-west-1", "aws-eu-central-1"


def _item(seq: int, kind: ItemKind = ItemKind.LOG) -> BackupItem:
    name = f"log/1/{seq:010d}" if kind == ItemKind.LOG else f"base/b{seq}"
    marker = ObjectRef(f"{name}.marker", 16 + seq, f"{seq:064x}")
    return BackupItem(kind, name, T0 + timedelta(minutes=seq),
                      T0 + timedelta(minutes=seq + 1), "1", seq, (), marker,
                      T0 + timedelta(minutes=seq + 1))


def _counted(cat: Catalog) -> list[tuple[object, ...]]:
    """item_counts without its empty rows, against a count of the items themselves."""
    kept = cat.db.execute("select service, region, status, kind, items, bytes from "
                          "item_counts where items != 0 order by 1, 2, 3, 4").fetchall()
    counted = cat.db.execute("select service, region, status, kind, count(*), "
                             "coalesce(sum(size), 0) from items group by 1, 2, 3, 4 "
                             "order by 1, 2, 3, 4").fetchall()
    assert kept == counted
    return kept


def test_v7_counts_the_items_a_v6_catalog_holds(tmp_path: Path) -> None:
    path = tmp_path / "btar.sqlite"
    db = sqlite_utils.Database(path)
    for number in range(6):
        MIGRATIONS[number](db)
        db.execute(f"PRAGMA user_version = {number + 1}")
    db.table("items").insert_all([
        {"service": "orders", "region": region, "item_id": f"log/1/{seq:010d}", "kind": "log",
         "stream": "1", "seq": seq, "start_time": "2026-11-01T12:00:00.000000Z",
         "end_time": "2026-11-01T12:01:00.000000Z", "size": 10 * seq, "object_count": 1,
         "status": status, "reason": "", "completed_at": "2026-11-01T12:01:00.000000Z",
         "available_at": None, "lag_seconds": None, "updated_at": "", "parent": ""}
        for region, status in ((PRIMARY, "available"), (SECONDARY, "pending"))
        for seq in range(1, 4)])
    db.close()
    cat = Catalog.open(path)
    try:
        assert cat.schema_version == 7
        assert _counted(cat) == [("orders", SECONDARY, "pending", "log", 3, 60),
                                 ("orders", PRIMARY, "available", "log", 3, 60)]
        indexes = {r[0] for r in cat.db.execute(
            "select name from sqlite_master where type = 'index'")}
        assert "idx_items_service_region_status" not in indexes  # its prefix is kept
        assert {"idx_items_service_region_status_completed_at", "idx_items_chain_marks",
                "idx_events_service"} <= indexes
    finally:
        cat.close()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "status", "forget", "retain", "withdraw",
                                           "reactivate"]),
                          st.integers(0, 6), st.sampled_from(list(ItemStatus))),
                max_size=25))
def test_counts_and_batched_reads_follow_every_write(
        steps: list[tuple[str, int, ItemStatus]]) -> None:
    """Whatever writes the items go through, item_counts stays what a count says, and the
    fleet reads give what the per-service reads give."""
    cat = Catalog.in_memory()
    for service in ("orders", "users"):
        cat.set_location(service, PRIMARY, RegionRole.PRIMARY, RegionState.ACTIVE, T0)
        cat.set_location(service, SECONDARY, RegionRole.SECONDARY, RegionState.ACTIVE, T0)
    for n, (step, seq, status) in enumerate(steps):
        service = ("orders", "users")[n % 2]
        kind = ItemKind.BASE if seq % 3 == 0 else ItemKind.LOG
        item = _item(seq, kind)
        if step == "add":
            cat.add_item(service, SECONDARY, item, status, T0)
            cat.add_item(service, PRIMARY, item, ItemStatus.AVAILABLE, T0)
        elif step == "status":
            cat.set_item_status(service, SECONDARY, item.item_id, status, T0)
        elif step == "forget":
            cat.forget_region(service, SECONDARY)
        elif step == "retain":
            cat.retain_region(service, SECONDARY, T0)
        elif step == "withdraw":
            cat.withdraw_region(service, SECONDARY, T0, "deleting")
        else:
            cat.reactivate_region(service, SECONDARY, T0)
        _counted(cat)
    counts = cat.region_counts()
    pairs = [(s, r) for s in ("orders", "users") for r in (PRIMARY, SECONDARY)]
    for service, region in pairs:
        found = counts.get((service, region))
        # in the same order too: a status prints them as they come
        assert list((found.statuses if found else {}).items()) \
            == list(cat.status_counts(service, region).items())
        assert list((found.backlog if found else {}).items()) \
            == list(cat.backlog(service, region).items())
    oldest = cat.oldest_unfinished_of(pairs)
    assert {p: oldest.get(p) for p in pairs} == {p: cat.oldest_unfinished(*p) for p in pairs}
    sought = cat.oldest_unfinished_of(pairs, counts)  # only the statuses with items
    assert {p: sought.get(p) for p in pairs} == {p: cat.oldest_unfinished(*p) for p in pairs}
    marks = cat.chain_marks()
    for service, region in pairs:
        expected = [(r.kind, r.item_id) for kind in (ItemKind.BASE, ItemKind.HISTORY)
                    for r in cat.items(service, region, kind=kind,
                                       statuses=[ItemStatus.AVAILABLE, ItemStatus.RETAINED])]
        assert [(m.kind, m.item_id) for m in marks.get((service, region), [])] == expected
        assert cat.runs_by_region().get((service, region), []) == cat.runs(service, region)

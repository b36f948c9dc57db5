"""The catalog: one SQLite file in WAL mode, a versioned schema, and its bookkeeping."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.catalog import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Catalog,
    CatalogTooNew,
    from_text,
    to_text,
)
from engine.model import (
    BackupItem,
    ItemKind,
    ItemStatus,
    ObjectRef,
    RegionRole,
    RegionState,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SVC, PRIMARY, SECONDARY = "orders", "aws-eu-west-1", "aws-eu-central-1"


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def base_item(name: str = "b1", end: float = 60, parts: int = 2) -> BackupItem:
    payload = tuple(ObjectRef(f"base/{name}/data/part-{i}", 10 + i, f"{i:064x}")
                    for i in range(parts))
    marker = ObjectRef(f"base/{name}/manifest.json", 5, "f" * 64)
    return BackupItem(ItemKind.BASE, f"base/{name}", t(0), t(end), "s1", 0, payload, marker,
                      t(end))


def log_item(seq: int, stream: str = "s1") -> BackupItem:
    marker = ObjectRef(f"log/{stream}/{seq:010d}.log", 16, f"{seq:064x}")
    return BackupItem(ItemKind.LOG, f"log/{stream}/{seq:010d}", t(60 * seq), t(60 * seq + 60),
                      stream, seq, (), marker, t(60 * seq + 60))


@pytest.fixture
def catalog() -> Catalog:
    return Catalog.in_memory()


# --- the file, its mode and its schema --------------------------------------------------------

def test_file_catalog_is_in_wal_mode_at_the_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "btar.sqlite"
    cat = Catalog.open(path)
    try:
        assert path.exists()
        mode = cat.db.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
        assert cat.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    finally:
        cat.close()


def test_in_memory_catalogs_are_private_to_each_other() -> None:
    first, second = Catalog.in_memory(), Catalog.in_memory()
    first.add_item(SVC, PRIMARY, base_item(), ItemStatus.AVAILABLE, T0)
    assert first.conn.execute("select count(*) from items").fetchone()[0] == 1
    assert second.conn.execute("select count(*) from items").fetchone()[0] == 0


def test_locations_are_read_again_once_another_connection_changed_them(
        tmp_path: Path) -> None:
    """The daemon keeps a service's locations between passes; `btar disable` or the TUI
    changes them from another process."""
    path = tmp_path / "btar.sqlite"
    daemon, command = Catalog.open(path), Catalog.open(path)
    try:
        daemon.set_location(SVC, SECONDARY, RegionRole.SECONDARY, RegionState.ACTIVE, T0)
        assert [loc.state for loc in daemon.locations(SVC)] == [RegionState.ACTIVE]
        command.set_location(SVC, SECONDARY, RegionRole.SECONDARY, RegionState.PAUSED, t(1),
                             "maintenance")
        assert [(loc.state, loc.reason) for loc in daemon.locations(SVC)] == [
            (RegionState.PAUSED, "maintenance")]
        command.remove_location(SVC, SECONDARY)
        assert daemon.location(SVC, SECONDARY) is None
    finally:
        daemon.close()
        command.close()


def test_a_location_written_in_a_transaction_rolled_back_is_not_kept(catalog: Catalog) -> None:
    catalog.set_location(SVC, SECONDARY, RegionRole.SECONDARY, RegionState.ACTIVE, T0)
    assert catalog.location(SVC, SECONDARY).state == RegionState.ACTIVE  # type: ignore[union-attr]

    def failing_pass() -> None:
        with catalog.transaction():
            catalog.set_location(SVC, SECONDARY, RegionRole.SECONDARY, RegionState.PAUSED,
                                 t(1))
            seen = catalog.location(SVC, SECONDARY)
            assert seen is not None
            assert seen.state == RegionState.PAUSED
            raise RuntimeError("the pass failed")

    with pytest.raises(RuntimeError):
        failing_pass()
    assert catalog.location(SVC, SECONDARY).state == RegionState.ACTIVE  # type: ignore[union-attr]


def test_opening_twice_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "btar.sqlite"
    first = Catalog.open(path)
    first.add_item(SVC, PRIMARY, base_item(), ItemStatus.AVAILABLE, T0)
    tables = sorted(first.db.table_names())
    first.close()
    second = Catalog.open(path)
    try:
        assert second.schema_version == SCHEMA_VERSION
        assert sorted(second.db.table_names()) == tables
        assert [r.item_id for r in second.items(SVC, PRIMARY)] == ["base/b1"]
        assert second.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        second.close()


@pytest.mark.parametrize("newer_by", [1, 7], ids=["next-version", "far-future"])
def test_a_newer_catalog_is_refused(tmp_path: Path, newer_by: int) -> None:
    path = tmp_path / "btar.sqlite"
    Catalog.open(path).close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + newer_by}")
    raw.commit()
    raw.close()
    with pytest.raises(CatalogTooNew) as caught:
        Catalog.open(path)
    text = str(caught.value)
    assert str(SCHEMA_VERSION + newer_by) in text
    assert "upgrade btar" in text


@pytest.mark.parametrize("start", range(SCHEMA_VERSION), ids=lambda v: f"from-v{v}")
def test_an_older_catalog_is_migrated(tmp_path: Path, start: int) -> None:
    path = tmp_path / "btar.sqlite"
    db = sqlite_utils.Database(path)
    for number in range(start):
        MIGRATIONS[number](db)
        db.execute(f"PRAGMA user_version = {number + 1}")
    db.close()
    cat = Catalog.open(path)
    try:
        assert cat.schema_version == SCHEMA_VERSION
        cat.add_item(SVC, PRIMARY, log_item(0), ItemStatus.AVAILABLE, T0)
        assert [r.item_id for r in cat.items(SVC, PRIMARY)] == ["log/s1/0000000000"]
    finally:
        cat.close()


def test_v6_adds_the_mirrored_files_of_each_region(tmp_path: Path) -> None:
    """A v5 catalog (items copied, no mirror yet) gains mirrored_files, empty: the next pass
    mirrors the info files once, as for a new destination."""
    path = tmp_path / "btar.sqlite"
    db = sqlite_utils.Database(path)
    for number in range(5):
        MIGRATIONS[number](db)
        db.execute(f"PRAGMA user_version = {number + 1}")
    db.close()
    cat = Catalog.open(path)
    try:
        assert cat.schema_version == SCHEMA_VERSION  # 6 and later
        assert cat.mirror_rows(SVC) == []
        cat.record_mirror_blocked(SVC, SECONDARY, "backup/main/backup.info", "it lists x", T0)
        assert [r.blocked for r in cat.mirror_rows(SVC, SECONDARY)] == ["it lists x"]
        cat.record_mirrored(SVC, SECONDARY, "backup/main/backup.info", "a" * 64, 10, 10, T0,
                            T0)
        [row] = cat.mirror_rows(SVC, SECONDARY)
        assert (row.sha256, row.size, row.source_modified, row.blocked) == ("a" * 64, 10, T0, "")
        assert [r.key for r in cat.mirrored_refs(SVC, SECONDARY)] == ["backup/main/backup.info"]
        cat.forget_mirrored(SVC, SECONDARY, "backup/main/backup.info")
        assert cat.mirror_rows(SVC) == []
    finally:
        cat.close()


# --- add_item ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("item", "first", "second"),
    [
        (base_item(), ItemStatus.AVAILABLE, ItemStatus.AVAILABLE),
        (base_item(), ItemStatus.PENDING, ItemStatus.PENDING),
        (base_item(), ItemStatus.AVAILABLE, ItemStatus.PENDING),
        (base_item(), ItemStatus.PENDING, ItemStatus.AVAILABLE),
        (log_item(3), ItemStatus.AVAILABLE, ItemStatus.AVAILABLE),
        (log_item(3), ItemStatus.PENDING, ItemStatus.PENDING),
        (log_item(3), ItemStatus.AVAILABLE, ItemStatus.PENDING),
    ],
    ids=["base-available-twice", "base-pending-twice", "base-available-then-pending",
         "base-pending-then-available", "log-available-twice", "log-pending-twice",
         "log-available-then-pending"],
)
def test_add_item_is_idempotent(catalog: Catalog, item: BackupItem, first: ItemStatus,
                                second: ItemStatus) -> None:
    catalog.add_item(SVC, SECONDARY, item, first, t(1))
    snapshot = (catalog.items(SVC, SECONDARY), catalog.item_refs(SVC, SECONDARY, item.item_id),
                catalog.runs(SVC, SECONDARY))
    catalog.add_item(SVC, SECONDARY, item, second, t(2))
    assert (catalog.items(SVC, SECONDARY), catalog.item_refs(SVC, SECONDARY, item.item_id),
            catalog.runs(SVC, SECONDARY)) == snapshot
    [row] = snapshot[0]
    assert row.status == first
    assert row.object_count == len(item.objects)
    refs = snapshot[1]
    assert [r.key for r in refs] == [o.key for o in item.objects]  # marker last
    assert [r.is_marker for r in refs] == [False] * len(item.payload) + [True]
    assert catalog.item_as_model(row) == item


def test_add_item_again_as_available_does_not_touch_the_runs(catalog: Catalog) -> None:
    catalog.add_item(SVC, SECONDARY, log_item(3), ItemStatus.PENDING, t(1))
    catalog.add_item(SVC, SECONDARY, log_item(3), ItemStatus.AVAILABLE, t(2))
    [row] = catalog.items(SVC, SECONDARY)
    assert row.status == ItemStatus.PENDING
    assert catalog.runs(SVC, SECONDARY) == []


# --- publish_item and lag samples -------------------------------------------------------------

@pytest.mark.parametrize(
    ("publishes", "last"),
    [
        ([("base/b1", 10, 2.5)], 2.5),
        ([("base/b1", 10, 2.5), ("log/s1/0000000000", 20, 7.0)], 7.0),
        ([("log/s1/0000000000", 30, 1.0), ("base/b1", 20, 9.0)], 1.0),
    ],
    ids=["one", "two-in-order", "latest-time-wins-not-latest-call"],
)
def test_publish_item_records_a_lag_sample(catalog: Catalog,
                                           publishes: list[tuple[str, float, float]],
                                           last: float) -> None:
    catalog.add_item(SVC, SECONDARY, base_item(), ItemStatus.PENDING, T0)
    catalog.add_item(SVC, SECONDARY, log_item(0), ItemStatus.PENDING, T0)
    assert catalog.last_lag(SVC, SECONDARY) is None
    for item_id, at, lag in publishes:
        catalog.publish_item(SVC, SECONDARY, item_id, t(at), lag)
        row = catalog.item(SVC, SECONDARY, item_id)
        assert row is not None
        assert row.status == ItemStatus.AVAILABLE
        assert row.available_at == t(at)
        assert row.lag_seconds == lag
    assert catalog.lag_samples(SVC, SECONDARY, T0, t(3600)) == sorted(
        (t(at), lag) for _, at, lag in publishes)
    assert catalog.last_lag(SVC, SECONDARY) == last
    assert catalog.lag_samples(SVC, PRIMARY, T0, t(3600)) == []
    assert catalog.lag_samples(SVC, SECONDARY, t(3600), t(7200)) == []


def test_publishing_a_log_segment_adds_it_to_the_runs(catalog: Catalog) -> None:
    for seq in (0, 1, 3):
        catalog.add_item(SVC, SECONDARY, log_item(seq), ItemStatus.PENDING, T0)
    assert catalog.runs(SVC, SECONDARY) == []
    for seq in (0, 1, 3):
        catalog.publish_item(SVC, SECONDARY, log_item(seq).item_id, t(500), 1.0)
    assert [(r.first_seq, r.last_seq) for r in catalog.runs(SVC, SECONDARY)] == [(0, 1), (3, 3)]


# --- record_copy ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("outcomes", "status"),
    [
        ([True], ItemStatus.AVAILABLE),
        ([False], ItemStatus.FAILED),
        ([False, False, True], ItemStatus.AVAILABLE),
        ([True, False], ItemStatus.FAILED),
        ([False] * 5, ItemStatus.FAILED),
    ],
    ids=["ok", "failed", "third-time-lucky", "last-attempt-counts", "five-failures"],
)
def test_record_copy_counts_attempts(catalog: Catalog, outcomes: list[bool],
                                     status: ItemStatus) -> None:
    item = base_item()
    catalog.add_item(SVC, SECONDARY, item, ItemStatus.PENDING, T0)
    key = item.payload[0].key
    for index, ok in enumerate(outcomes):
        catalog.record_copy(SVC, SECONDARY, key, t(index), ok=ok, method="stream",
                            verified_by="sha256-streamed" if ok else "",
                            error="" if ok else "boom")
    refs = {r.key: r for r in catalog.item_refs(SVC, SECONDARY, item.item_id)}
    assert refs[key].attempts == len(outcomes)
    assert refs[key].status == status
    untouched = [r for k, r in refs.items() if k != key]
    assert all(r.attempts == 0 and r.status == ItemStatus.PENDING for r in untouched)
    attempts = catalog.copy_attempts(SVC, SECONDARY)
    assert [bool(a["ok"]) for a in attempts] == outcomes
    assert [a["key"] for a in attempts] == [key] * len(outcomes)
    assert [a["error"] for a in attempts] == ["" if ok else "boom" for ok in outcomes]
    assert catalog.copy_attempts(SVC, PRIMARY) == []


# --- retain_region ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("status", "kept_as"),
    [
        (ItemStatus.AVAILABLE, ItemStatus.RETAINED),
        (ItemStatus.RETAINED, ItemStatus.RETAINED),
        (ItemStatus.PENDING, None),
        (ItemStatus.COPYING, None),
        (ItemStatus.FAILED, None),
        (ItemStatus.PAUSED, None),
    ],
    ids=lambda v: str(v),
)
def test_retain_region(catalog: Catalog, status: ItemStatus, kept_as: ItemStatus | None) -> None:
    item = base_item()
    catalog.add_item(SVC, SECONDARY, item, ItemStatus.PENDING, T0)
    catalog.set_item_status(SVC, SECONDARY, item.item_id, status, T0)
    catalog.add_item(SVC, PRIMARY, item, ItemStatus.AVAILABLE, T0)  # another region: untouched
    catalog.add_item("other", SECONDARY, item, ItemStatus.PENDING, T0)  # another service too
    catalog.retain_region(SVC, SECONDARY, t(10))
    rows = catalog.items(SVC, SECONDARY)
    if kept_as is None:
        assert rows == []
        assert catalog.item_refs(SVC, SECONDARY, item.item_id) == []
    else:
        [row] = rows
        assert row.status == kept_as
        assert len(catalog.item_refs(SVC, SECONDARY, item.item_id)) == len(item.objects)
    assert [r.status for r in catalog.items(SVC, PRIMARY)] == [ItemStatus.AVAILABLE]
    assert [r.status for r in catalog.items("other", SECONDARY)] == [ItemStatus.PENDING]


def test_retain_region_with_a_mix(catalog: Catalog) -> None:
    catalog.add_item(SVC, SECONDARY, base_item("b1"), ItemStatus.AVAILABLE, T0)
    catalog.add_item(SVC, SECONDARY, base_item("b2", end=120), ItemStatus.PENDING, T0)
    for seq in range(3):
        catalog.add_item(SVC, SECONDARY, log_item(seq), ItemStatus.AVAILABLE, T0)
    catalog.add_item(SVC, SECONDARY, log_item(3), ItemStatus.PENDING, T0)
    runs = catalog.runs(SVC, SECONDARY)
    catalog.retain_region(SVC, SECONDARY, t(10))
    rows = catalog.items(SVC, SECONDARY)
    assert {r.item_id: r.status for r in rows} == {
        "base/b1": ItemStatus.RETAINED, **{log_item(s).item_id: ItemStatus.RETAINED
                                          for s in range(3)}}
    assert all(r.reason == "replication stopped" for r in rows)
    assert catalog.runs(SVC, SECONDARY) == runs  # retained copies stay restorable


# --- time as text -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (T0, "2026-11-01T12:00:00.000000Z"),
        (T0.replace(microsecond=7), "2026-11-01T12:00:00.000007Z"),
        (datetime(2026, 11, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
         "2026-11-01T12:00:00.000000Z"),
        (datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "1999-12-31T23:59:59.999999Z"),
        (datetime(2027, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
         "2027-01-01T06:00:00.000000Z"),
    ],
    ids=["utc", "microseconds", "positive-offset", "end-of-century", "negative-offset"],
)
def test_time_text(moment: datetime, text: str) -> None:
    assert to_text(moment) == text
    back = from_text(text)
    assert back == moment
    assert back.tzinfo == UTC


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        to_text(datetime(2026, 11, 1, 12, 0))


def _order(x: Any, y: Any) -> int:
    return int(x > y) - int(x < y)


aware = st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30),
                     timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                                                timezone(timedelta(hours=-8))]))


@settings(max_examples=200, deadline=None)
@given(a=aware, b=aware)
def test_time_text_round_trips_and_sorts_in_time_order(a: datetime, b: datetime) -> None:
    assert from_text(to_text(a)) == a
    assert len(to_text(a)) == len(to_text(b)) == 27
    assert _order(to_text(a), to_text(b)) == _order(a, b)


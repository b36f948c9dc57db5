"""The catalog's schema: its migrations, one per version, and how times are stored
(fixed-width UTC text, so that text order is time order)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.model import (
    ItemStatus,
    utc,
)

if TYPE_CHECKING:
    import sqlite_utils  # migrations get a Database; reads need no sqlite_utils

_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def to_text(moment: datetime) -> str:
    return utc(moment).strftime(_TIME)


def from_text(text: str) -> datetime:
    # fromisoformat is several times faster than strptime, and this runs for every row read.
    return datetime.fromisoformat(text)


def _v1(db: sqlite_utils.Database) -> None:
    db.table("services").create(
        {"name": str, "type": str, "region": str, "layout": str, "prefix": str,
         "updated_at": str}, pk="name")
    db.table("locations").create(
        {"service": str, "region": str, "role": str, "state": str, "reason": str,
         "since": str, "updated_at": str}, pk=("service", "region"))
    db.table("items").create(
        {"service": str, "region": str, "item_id": str, "kind": str, "stream": str, "seq": int,
         "start_time": str, "end_time": str, "size": int, "object_count": int, "status": str,
         "reason": str, "completed_at": str, "available_at": str, "lag_seconds": float,
         "updated_at": str}, pk=("service", "region", "item_id"))
    items = db.table("items")
    items.create_index(["service", "region", "status"])
    items.create_index(["service", "region", "kind", "stream", "seq"])
    db.table("objects").create(
        {"service": str, "region": str, "item_id": str, "key": str, "size": int,
         "sha256": str, "is_marker": int, "status": str, "method": str, "verified_by": str,
         "attempts": int, "updated_at": str}, pk=("service", "region", "key"))
    db.table("objects").create_index(["service", "region", "item_id"])
    db.table("copy_attempts").create(
        {"id": int, "service": str, "region": str, "key": str, "at": str, "ok": int,
         "method": str, "verified_by": str, "error": str}, pk="id")
    db.table("copy_attempts").create_index(["service", "region", "key"])
    db.table("lag_samples").create(
        {"id": int, "service": str, "region": str, "item_id": str, "at": str,
         "lag_seconds": float}, pk="id")
    db.table("lag_samples").create_index(["service", "region", "at"])
    db.table("audit").create(
        {"id": int, "at": str, "actor": str, "action": str, "service": str, "details": str},
        pk="id")
    db.table("events").create(
        {"id": int, "at": str, "level": str, "service": str, "region": str, "message": str},
        pk="id")
    db.table("events").create_index(["at"])


def _v2(db: sqlite_utils.Database) -> None:
    """Stream histories (parent column) and a summary of contiguous log runs, so that a
    window is computed from a few runs instead of a scan of every segment."""
    db.table("items").add_column("parent", str, not_null_default="")
    db.table("log_runs").create(
        {"service": str, "region": str, "stream": str, "first_seq": int, "last_seq": int,
         "first_start": str, "last_end": str}, pk=("service", "region", "stream", "first_seq"))
    db.table("log_runs").create_index(["service", "region", "stream", "last_seq"])
    # Finding the segment that covers a restore target is a seek, not a scan.
    db.table("items").create_index(["service", "region", "kind", "stream", "end_time"])
    # Base backups and histories are few among many segments: reach them without a scan.
    db.table("items").create_index(["service", "region", "kind", "status", "end_time"])
    pairs = db.execute("select distinct service, region from items").fetchall()
    for service, region in pairs:
        _rebuild_runs(db.conn, service, region)


def _v3(db: sqlite_utils.Database) -> None:
    """Incremental listing: a cursor per listing area of a service's primary, when its last
    full listing ran, and how far each destination has looked for items to copy."""
    db.table("listing_areas").create({"service": str, "area": str, "cursor": str},
                                     pk=("service", "area"))
    db.table("full_listings").create({"service": str, "at": str}, pk="service")
    db.table("copy_marks").create({"service": str, "region": str, "primary_rowid": int},
                                  pk=("service", "region"))


def _v4(db: sqlite_utils.Database) -> None:
    """Reachability as the replicator saw it, per (service, region): when a listing or copy
    last succeeded, and the fault that has held since when (empty when none)."""
    db.table("reachability").create(
        {"service": str, "region": str, "ok_at": str, "fault": str, "reason": str,
         "fault_since": str, "fault_at": str}, pk=("service", "region"),
        defaults={"ok_at": "", "fault": "", "reason": "", "fault_since": "", "fault_at": ""})


def _v5(db: sqlite_utils.Database) -> None:
    """Objects whose layout records no SHA-256 (sha256 NULL from now on, never ''): the
    digest the layout records instead, or, in a destination, the best digest its copy
    established (``algorithm:hex``, '' when none), which later downloads verify against."""
    db.table("objects").add_column("digest", str, not_null_default="")


def _v6(db: sqlite_utils.Database) -> None:
    """Files a backup tool rewrites in place (pgBackRest's backup.info, archive.info), mirrored
    into each destination by engine.mirror: per (service, region, key) the SHA-256 and size of
    the version last written there, the primary's listing entry (size, time) it came from, so
    that an unchanged file is neither read nor written again, and what keeps the current
    version from being written (the items it names that the region lacks; '' when none)."""
    db.table("mirrored_files").create(
        {"service": str, "region": str, "key": str, "sha256": str, "size": int,
         "source_size": int, "source_modified": str, "blocked": str, "mirrored_at": str,
         "updated_at": str}, pk=("service", "region", "key"),
        defaults={"sha256": "", "size": 0, "source_size": -1, "source_modified": "",
                  "blocked": "", "mirrored_at": ""})


def _v7(db: sqlite_utils.Database) -> None:
    """The catalog at fleet size (1,000 services, 10,000,000 items): `btar status` and `btar
    check` read every service at once, so what they ask must not cost a scan of a region's
    items.

    - ``item_counts``: items and bytes per (service, region, status, kind), kept by triggers
      on every write to items, whoever makes it; status counts and backlogs read a few rows.
    - the index on (service, region, status) gains completed_at: the oldest unpublished item
      of a region is a seek per status instead of a row read per waiting item.
    - base backups and histories (one in a thousand items) in a partial covering index: the
      windows of every region read them alone, never a table row.
    - events by service: a service's recent events are a seek, not a scan of the fleet's."""
    db.execute("create table item_counts (service text not null, region text not null, "
               "status text not null, kind text not null, items integer not null, "
               "bytes integer not null, primary key (service, region, status, kind))")
    db.execute("insert into item_counts (service, region, status, kind, items, bytes) "
               "select service, region, status, kind, count(*), coalesce(sum(size), 0) "
               "from items group by service, region, status, kind")
    for statement in _COUNT_TRIGGERS:
        db.execute(statement)
    db.execute("drop index if exists idx_items_service_region_status")
    db.table("items").create_index(["service", "region", "status", "completed_at"])
    # In the order the windows read them (bases, then histories, by end time): no sort.
    db.execute(f"create index {CHAIN_MARKS_INDEX} on items (service, region, kind, end_time, "
               "item_id, status, stream, seq, start_time, parent) where "
               f"{CHAIN_MARKS_WHERE}")
    db.table("events").create_index(["service"])


#: the partial index of base backups and histories; a query uses it only when its WHERE
#: holds this very term (SQLite matches it as written, literals and all)
CHAIN_MARKS_INDEX = "idx_items_chain_marks"
CHAIN_MARKS_WHERE = "kind in ('base', 'history')"


def _count_change(row: str, sign: str) -> str:
    """One item row (``new`` or ``old``) added to (+) or taken from (-) its counts."""
    return (f"insert into item_counts (service, region, status, kind, items, bytes) values "
            f"({row}.service, {row}.region, {row}.status, {row}.kind, {sign}1, "
            f"{sign}coalesce({row}.size, 0)) on conflict (service, region, status, kind) do "
            "update set items = items + excluded.items, bytes = bytes + excluded.bytes;")


_COUNT_TRIGGERS = (
    f"create trigger item_counts_insert after insert on items begin "
    f"{_count_change('new', '+')} end",
    f"create trigger item_counts_delete after delete on items begin "
    f"{_count_change('old', '-')} end",
    # Most updates (times, reasons, lags) move no count: the trigger does nothing for them.
    "create trigger item_counts_update after update of service, region, status, kind, size "
    "on items when old.service is not new.service or old.region is not new.region or "
    "old.status is not new.status or old.kind is not new.kind or old.size is not new.size "
    f"begin {_count_change('old', '-')} {_count_change('new', '+')} end",
)


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2, _v3, _v4, _v5, _v6,
                                                             _v7]


#: statuses whose items are really there and whole
RESTORABLE = (ItemStatus.AVAILABLE, ItemStatus.RETAINED)
_RESTORABLE_SQL = f"status in ('{RESTORABLE[0]}', '{RESTORABLE[1]}')"


def _rebuild_runs(conn: sqlite3.Connection, service: str, region: str) -> None:
    conn.execute("delete from log_runs where service = ? and region = ?", [service, region])
    runs: list[list[Any]] = []
    for stream, seq, start, end in conn.execute(
            "select stream, seq, start_time, end_time from items where service = ? and "
            f"region = ? and kind = 'log' and {_RESTORABLE_SQL} order by stream, seq",
            [service, region]).fetchall():
        last = runs[-1] if runs else None
        if last and last[2] == stream and last[4] == seq - 1:
            last[4], last[6] = seq, max(end, last[6])
        else:
            runs.append([service, region, stream, seq, seq, start, end])
    conn.executemany("insert into log_runs (service, region, stream, first_seq, last_seq, "
                     "first_start, last_end) values (?, ?, ?, ?, ?, ?, ?)", runs)


SCHEMA_VERSION = len(MIGRATIONS)
#: ids per ``in (...)`` query, well under SQLite's variable limit
_CHUNK = 500
#: a log segment as the runs see it: stream, seq, start and end time (catalog text)
Segment = tuple[str, int, str, str]

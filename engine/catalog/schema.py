"""The catalog's schema: its migrations, one per version, and how times are stored
(fixed-width UTC text, so that text order is time order)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlite_utils

from engine.model import (
    ItemStatus,
    utc,
)

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
        _rebuild_runs(db, service, region)


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


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2, _v3, _v4, _v5, _v6]


#: statuses whose items are really there and whole
RESTORABLE = (ItemStatus.AVAILABLE, ItemStatus.RETAINED)
_RESTORABLE_SQL = f"status in ('{RESTORABLE[0]}', '{RESTORABLE[1]}')"


def _rebuild_runs(db: sqlite_utils.Database, service: str, region: str) -> None:
    db.execute("delete from log_runs where service = ? and region = ?", [service, region])
    runs: list[dict[str, Any]] = []
    for stream, seq, start, end in db.execute(
            "select stream, seq, start_time, end_time from items where service = ? and "
            f"region = ? and kind = 'log' and {_RESTORABLE_SQL} order by stream, seq",
            [service, region]).fetchall():
        last = runs[-1] if runs else None
        if last and last["stream"] == stream and last["last_seq"] == seq - 1:
            last["last_seq"], last["last_end"] = seq, max(end, last["last_end"])
        else:
            runs.append({"service": service, "region": region, "stream": stream,
                         "first_seq": seq, "last_seq": seq, "first_start": start,
                         "last_end": end})
    db.table("log_runs").insert_all(runs, pk=("service", "region", "stream", "first_seq"))


SCHEMA_VERSION = len(MIGRATIONS)
#: ids per ``in (...)`` query, well under SQLite's variable limit
_CHUNK = 500
#: a log segment as the runs see it: stream, seq, start and end time (catalog text)
Segment = tuple[str, int, str, str]

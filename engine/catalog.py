"""The catalog: what is where, in one SQLite file (WAL mode) through sqlite-utils.

The schema is versioned; ``MIGRATIONS[i]`` brings a catalog from version i to i + 1. Times are
stored as fixed-width UTC text (``YYYY-MM-DDTHH:MM:SS.ffffffZ``) so that text order is time
order. Credentials are never stored here.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.db import Table

from engine.errors import CatalogDamaged, CatalogTooNew, SyncAlreadyRunning
from engine.model import (
    UNFINISHED,
    BackupItem,
    Digest,
    ItemKind,
    ItemStatus,
    ObjectRef,
    RegionRole,
    RegionState,
    Service,
    ServiceType,
    utc,
)

_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class LagRow:
    """What the lag over time reads of an item row (engine.lag.ItemLike)."""

    status: str
    completed_at: datetime
    available_at: datetime | None


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


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2, _v3, _v4, _v5]

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


@dataclass(frozen=True)
class LocationRow:
    service: str
    region: str
    role: RegionRole
    state: RegionState
    reason: str
    since: datetime


@dataclass(frozen=True)
class Reachability:
    """What the replicator last saw of one (service, region): when it last answered
    (``ok_at``) and the fault that holds since ``fault_since`` (``fault`` is "" when none;
    otherwise a StorageError's fault class, e.g. "unreachable", "denied", "missing")."""

    service: str
    region: str
    ok_at: datetime | None
    fault: str
    reason: str
    fault_since: datetime | None
    fault_at: datetime | None


@dataclass(frozen=True, slots=True)
class ItemRow:
    service: str
    region: str
    item_id: str
    kind: ItemKind
    stream: str
    seq: int
    start_time: datetime
    end_time: datetime
    size: int
    object_count: int
    status: ItemStatus
    reason: str
    completed_at: datetime
    available_at: datetime | None
    lag_seconds: float | None
    parent: str = ""


@dataclass(frozen=True)
class LogRun:
    """Contiguous log segments ``first_seq``..``last_seq`` of one stream, all restorable."""

    stream: str
    first_seq: int
    last_seq: int
    first_start: datetime
    last_end: datetime


@dataclass(frozen=True, slots=True)
class ObjectRow:
    key: str
    size: int
    sha256: str | None
    is_marker: bool
    status: ItemStatus
    attempts: int
    #: what the layout records instead of a SHA-256, or what a copy established
    digest: Digest | None = None

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.key, self.size, self.sha256, self.digest)


@dataclass(frozen=True)
class CopyRecord:
    """One copy attempt of an object, as record_copies stores it. ``sha256`` and ``digest``
    (``algorithm:hex``) are what a verified copy of an object without a recorded SHA-256
    established of its bytes; None and "" leave the object's record as it is."""

    key: str
    ok: bool
    method: str = ""
    verified_by: str = ""
    error: str = ""
    sha256: str | None = None
    digest: str = ""


@dataclass(frozen=True)
class EventRow:
    at: datetime
    level: str
    service: str
    region: str
    message: str


class Catalog:
    """All reads and writes of the catalog. Use from one thread at a time."""

    def __init__(self, db: sqlite_utils.Database, *, name: str = "the catalog",
                 path: Path | None = None) -> None:
        self.db = db
        self.name = name
        #: the file (None in memory): its lock file sits beside it (CatalogLock)
        self.path = path
        self._migrate()

    @classmethod
    def open(cls, path: str | Path) -> Catalog:
        """Open (creating if needed) the catalog file, in WAL mode, readable by its owner only.
        A file that is not a usable SQLite catalog raises CatalogDamaged."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _create_owner_only(path)
            # Front ends call from worker threads one at a time (the TUI serialises its
            # calls); sqlite3's same-thread check would refuse that outright.
            connection = sqlite3.connect(path, check_same_thread=False)
        except (OSError, sqlite3.Error) as error:
            raise CatalogDamaged(str(path), _reason(error)) from None
        try:
            db = sqlite_utils.Database(connection)
            db.execute("PRAGMA busy_timeout = 5000")
            db.enable_wal()
            # In WAL mode NORMAL never corrupts; a power cut may lose the last commits, which
            # only makes btar copy those objects again.
            db.execute("PRAGMA synchronous = NORMAL")
            catalog = cls(db, name=str(path), path=path)
            # Reading every table's root page finds a file cut short before any command does.
            for (table,) in db.execute(
                    "select name from sqlite_master where type = 'table'").fetchall():
                db.execute(f"select 1 from [{table}] limit 1").fetchall()
            return catalog
        except BaseException as error:
            connection.close()
            busy = isinstance(error, sqlite3.OperationalError) \
                and ("locked" in str(error) or "busy" in str(error))
            if isinstance(error, sqlite3.DatabaseError) and not busy:
                raise CatalogDamaged(str(path), _reason(error)) from None
            raise

    @classmethod
    def in_memory(cls) -> Catalog:
        return cls(sqlite_utils.Database(memory=True))

    def close(self) -> None:
        self.db.close()

    # -- schema ------------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        row = self.db.execute("PRAGMA user_version").fetchone()
        return int(row[0])

    def _migrate(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise CatalogTooNew(self.name, version, SCHEMA_VERSION)
        for number in range(version, SCHEMA_VERSION):
            with self.db.atomic():
                MIGRATIONS[number](self.db)
                self.db.execute(f"PRAGMA user_version = {number + 1}")

    def transaction(self) -> AbstractContextManager[object]:
        """Group writes into one commit (nested groups become savepoints)."""
        return self.db.atomic()

    def _t(self, name: str) -> Table:
        return self.db.table(name)

    # -- services and locations --------------------------------------------------------------

    def upsert_service(self, service: Service, now: datetime) -> None:
        self._t("services").upsert(
            {"name": service.name, "type": str(service.type), "region": service.region,
             "layout": service.layout, "prefix": service.key_prefix,
             "updated_at": to_text(now)}, pk="name")

    def service(self, name: str) -> Service | None:
        rows = list(self.db.query("select * from services where name = ?", [name]))
        if not rows:
            return None
        r = rows[0]
        return Service(r["name"], ServiceType(r["type"]), r["region"], r["layout"], r["prefix"])

    def set_location(self, service: str, region: str, role: RegionRole, state: RegionState,
                     now: datetime, reason: str = "") -> None:
        existing = self.location(service, region)
        since = existing.since if existing and existing.role == role else now
        self._t("locations").upsert(
            {"service": service, "region": region, "role": str(role), "state": str(state),
             "reason": reason, "since": to_text(since), "updated_at": to_text(now)},
            pk=("service", "region"))

    def note_reachable(self, service: str, region: str, now: datetime) -> None:
        """A listing or copy of ``region`` succeeded: it answers, any fault is over."""
        self.db.execute(
            "insert into reachability (service, region, ok_at, fault, reason, fault_since, "
            "fault_at) values (?, ?, ?, '', '', '', '') on conflict (service, region) do "
            "update set ok_at = excluded.ok_at, fault = '', reason = '', fault_since = ''",
            [service, region, to_text(now)])

    def note_fault(self, service: str, region: str, fault: str, reason: str,
                   now: datetime) -> None:
        """``region`` failed for ``service``; the fault's start is kept while it lasts."""
        self.db.execute(
            "insert into reachability (service, region, ok_at, fault, reason, fault_since, "
            "fault_at) values (?, ?, '', ?, ?, ?, ?) on conflict (service, region) do update "
            "set fault = excluded.fault, reason = excluded.reason, fault_at = "
            "excluded.fault_at, fault_since = case when reachability.fault_since = '' then "
            "excluded.fault_since else reachability.fault_since end",
            [service, region, fault, reason, to_text(now), to_text(now)])

    def reachability(self, service: str) -> dict[str, Reachability]:
        """Per region, what the replicator last saw of it for ``service``."""
        def moment(text: str) -> datetime | None:
            return from_text(text) if text else None
        return {r["region"]: Reachability(service, r["region"], moment(r["ok_at"]), r["fault"],
                                          r["reason"], moment(r["fault_since"]),
                                          moment(r["fault_at"]))
                for r in self.db.query("select * from reachability where service = ?",
                                       [service])}

    def reactivate_region(self, service: str, region: str, now: datetime) -> None:
        """A region replicates again: its retained copies count as published again."""
        self.db.execute(
            "update items set status = ?, reason = '', updated_at = ? "
            "where service = ? and region = ? and status = ?",
            [str(ItemStatus.AVAILABLE), to_text(now), service, region,
             str(ItemStatus.RETAINED)])

    def remove_location(self, service: str, region: str) -> None:
        for table in ("locations", "reachability"):
            self.db.execute(f"delete from {table} where service = ? and region = ?",
                            [service, region])

    def location(self, service: str, region: str) -> LocationRow | None:
        rows = self.locations(service, region=region)
        return rows[0] if rows else None

    def locations(self, service: str, *, region: str | None = None,
                  roles: Iterable[RegionRole] | None = None) -> list[LocationRow]:
        sql = "select * from locations where service = ?"
        params: list[Any] = [service]
        if region is not None:
            sql += " and region = ?"
            params.append(region)
        if roles is not None:
            wanted = [str(r) for r in roles]
            sql += f" and role in ({','.join('?' * len(wanted))})"
            params.extend(wanted)
        sql += " order by since, region"
        return [LocationRow(r["service"], r["region"], RegionRole(r["role"]),
                            RegionState(r["state"]), r["reason"], from_text(r["since"]))
                for r in self.db.query(sql, params)]

    # -- items and objects -------------------------------------------------------------------

    def status_counts(self, service: str, region: str) -> dict[str, int]:
        """How many items of each status a region holds (counted by SQLite, nothing decoded)."""
        return {status: count for status, count in self.db.execute(
            "select status, count(*) from items where service = ? and region = ? "
            "group by status order by status", [service, region]).fetchall()}

    def backlog(self, service: str, region: str) -> dict[ItemKind, tuple[int, int]]:
        """Items not yet published in a region, per kind: (how many, their bytes)."""
        unfinished = [str(s) for s in UNFINISHED]
        return {ItemKind(kind): (count, int(size or 0)) for kind, count, size in self.db.execute(
            "select kind, count(*), sum(size) from items where service = ? and region = ? "
            f"and status in ({','.join('?' * len(unfinished))}) group by kind order by kind",
            [service, region, *unfinished]).fetchall()}

    def oldest_unfinished(self, service: str, region: str) -> datetime | None:
        """When the oldest item not yet published in a region completed in the primary
        (SQLite finds it; times are stored in one fixed-width format, so text order is
        time order)."""
        unfinished = [str(s) for s in UNFINISHED]
        row = self.db.execute(
            "select min(completed_at) from items where service = ? and region = ? and "
            f"status in ({','.join('?' * len(unfinished))})",
            [service, region, *unfinished]).fetchone()
        return from_text(row[0]) if row and row[0] else None

    def lag_rows(self, service: str, region: str, start: datetime,
                 end: datetime) -> list[LagRow]:
        """The items of a region that may have waited or been published between start and
        end (complete by end; waiting, or published since start): what the lag over time is
        drawn from, engine.lag.lag_items saying which of them count."""
        unfinished = [str(s) for s in UNFINISHED]
        marks = ",".join("?" * len(unfinished))
        return [LagRow(status, from_text(done), from_text(available) if available else None)
                for status, done, available in self.db.execute(
                    "select status, completed_at, available_at from items where service = ? "
                    f"and region = ? and completed_at <= ? and (status in ({marks}) "
                    "or available_at >= ?)",
                    [service, region, to_text(end), *unfinished, to_text(start)])]

    def item_ids(self, service: str, region: str, status: ItemStatus) -> set[str]:
        """Ids of the items with ``status`` in a region (no row decoding: cheap)."""
        return {r[0] for r in self.db.execute(
            "select item_id from items where service = ? and region = ? and status = ?",
            [service, region, str(status)]).fetchall()}

    def known_item_ids(self, service: str, region: str) -> set[str]:
        return {r[0] for r in self.db.execute(
            "select item_id from items where service = ? and region = ?",
            [service, region]).fetchall()}

    def known_among(self, service: str, region: str, item_ids: Iterable[str]) -> set[str]:
        """Which of ``item_ids`` the catalog knows in a region (index seeks, no scan)."""
        wanted = sorted(set(item_ids))
        known: set[str] = set()
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start:start + _CHUNK]
            known.update(r[0] for r in self.db.execute(
                "select item_id from items where service = ? and region = ? and item_id in "
                f"({','.join('?' * len(chunk))})", [service, region, *chunk]).fetchall())
        return known

    def has_log_segment(self, service: str, region: str, stream: str, seq: int) -> bool:
        return self.db.execute(
            "select 1 from items where service = ? and region = ? and kind = 'log' and "
            "stream = ? and seq = ? limit 1", [service, region, stream, seq]).fetchone() \
            is not None

    def add_item(self, service: str, region: str, item: BackupItem, status: ItemStatus,
                 now: datetime, *, available_at: datetime | None = None) -> None:
        """Record an item and its objects in a region (no-op if already recorded)."""
        self.add_items(service, region, [(item, available_at)], status, now)

    def add_items(self, service: str, region: str,
                  items: Iterable[tuple[BackupItem, datetime | None]], status: ItemStatus,
                  now: datetime) -> int:
        """Record items (each with its available_at) and their objects in a region, in one
        transaction; items already recorded are left as they are. Returns how many were new."""
        batch = {item.item_id: (item, available_at) for item, available_at in items}
        stamp = to_text(now)
        object_status = str(ItemStatus.AVAILABLE if status == ItemStatus.AVAILABLE
                            else ItemStatus.PENDING)
        with self.db.atomic():
            known = self.known_among(service, region, batch)
            new = [pair for item_id, pair in batch.items() if item_id not in known]
            self.db.conn.executemany(
                "insert into items (service, region, item_id, kind, stream, seq, start_time, "
                "end_time, size, object_count, status, reason, completed_at, available_at, "
                "lag_seconds, updated_at, parent) "
                "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, null, ?, ?)",
                # Generators, not lists: a first full listing may bring millions of rows.
                ((service, region, item.item_id, str(item.kind), item.stream, item.seq,
                  to_text(item.start_time), to_text(item.end_time), item.size,
                  len(item.objects), str(status), to_text(item.completed_at),
                  to_text(available_at) if available_at else None, stamp, item.parent)
                 for item, available_at in new))
            self.db.conn.executemany(
                "insert or ignore into objects (service, region, item_id, key, size, sha256, "
                "is_marker, status, method, verified_by, attempts, updated_at, digest) "
                "values (?, ?, ?, ?, ?, ?, ?, ?, '', '', 0, ?, ?)",
                ((service, region, item.item_id, ref.key, ref.size, ref.sha256,
                  int(ref is item.marker), object_status, stamp,
                  str(ref.digest) if ref.digest is not None else "")
                 for item, _ in new for ref in item.objects))
            if status in RESTORABLE:
                self._runs_add(service, region, [
                    (item.stream, item.seq, to_text(item.start_time), to_text(item.end_time))
                    for item, _ in new if item.kind == ItemKind.LOG])
        return len(new)

    def add_missing(self, service: str, source: str, destination: str, now: datetime, *,
                    since_rowid: int = 0) -> list[str]:
        """Record as pending in ``destination`` every item available in ``source`` that
        ``destination`` has no record of, looking only at source rows after ``since_rowid``
        (0: all). Returns the ids added."""
        stamp = to_text(now)
        with self.db.atomic():
            ids = [r[0] for r in self.db.execute(
                "select p.item_id from items as p where p.rowid > ? and p.service = ? and "
                "p.region = ? and p.status = ? and not exists (select 1 from items as d "
                "where d.service = p.service and d.region = ? and d.item_id = p.item_id)",
                [since_rowid, service, source, str(ItemStatus.AVAILABLE),
                 destination]).fetchall()]
            rows = [(destination, str(ItemStatus.PENDING), stamp, service, source, item_id)
                    for item_id in ids]  # read twice below
            self.db.conn.executemany(
                "insert into items (service, region, item_id, kind, stream, seq, start_time, "
                "end_time, size, object_count, status, reason, completed_at, available_at, "
                "lag_seconds, updated_at, parent) "
                "select service, ?, item_id, kind, stream, seq, start_time, end_time, size, "
                "object_count, ?, '', completed_at, null, null, ?, parent from items "
                "where service = ? and region = ? and item_id = ?", rows)
            self.db.conn.executemany(
                "insert or ignore into objects (service, region, item_id, key, size, sha256, "
                "is_marker, status, method, verified_by, attempts, updated_at, digest) "
                "select service, ?, item_id, key, size, sha256, is_marker, ?, '', '', 0, ?, "
                "digest from objects where service = ? and region = ? and item_id = ?", rows)
        return ids

    def stream_start(self, service: str, region: str, stream: str) -> int | None:
        """The seq a stream starts at, when a history item records its branching."""
        row = self.db.execute(
            "select seq from items where service = ? and region = ? and kind = 'history' and "
            "stream = ? limit 1", [service, region, stream]).fetchone()
        return int(row[0]) if row else None

    def mark_copying(self, service: str, region: str, item_ids: Iterable[str],
                     now: datetime) -> None:
        """Items whose copies are under way (none of them restorable before or after)."""
        with self.db.atomic():
            self.db.conn.executemany(
                "update items set status = ?, updated_at = ? where service = ? and region = ? "
                "and item_id = ? and status != ?",
                [(str(ItemStatus.COPYING), to_text(now), service, region, item_id,
                  str(ItemStatus.AVAILABLE)) for item_id in item_ids])

    # -- incremental listing of the primary ------------------------------------------------------

    def listing_cursors(self, service: str) -> dict[str, str]:
        """Listing area -> the greatest key settled in it ("" for none yet)."""
        return {area: cursor for area, cursor in self.db.execute(
            "select area, cursor from listing_areas where service = ?", [service]).fetchall()}

    def save_listing_cursors(self, service: str, cursors: dict[str, str], *,
                             full_at: datetime | None) -> None:
        """Store cursors; after a full listing (``full_at``) they replace every area."""
        with self.db.atomic():
            if full_at is not None:
                self.db.execute("delete from listing_areas where service = ?", [service])
                self.db.execute("insert or replace into full_listings (service, at) "
                                "values (?, ?)", [service, to_text(full_at)])
            self.db.conn.executemany(
                "insert or replace into listing_areas (service, area, cursor) values (?, ?, ?)",
                [(service, area, cursor) for area, cursor in cursors.items()])

    def last_full_listing(self, service: str) -> datetime | None:
        row = self.db.execute("select at from full_listings where service = ?",
                              [service]).fetchone()
        return from_text(row[0]) if row else None

    def copy_mark(self, service: str, region: str) -> int:
        """The last source row that ``region`` was checked against (see add_missing)."""
        row = self.db.execute("select primary_rowid from copy_marks where service = ? and "
                              "region = ?", [service, region]).fetchone()
        return int(row[0]) if row else 0

    def set_copy_mark(self, service: str, region: str) -> None:
        """Every source row so far has been checked for ``region``."""
        self.db.execute(
            "insert or replace into copy_marks (service, region, primary_rowid) "
            "values (?, ?, (select coalesce(max(rowid), 0) from items))", [service, region])

    def _reset_copy_mark(self, service: str, region: str) -> None:
        self.db.execute("delete from copy_marks where service = ? and region = ?",
                        [service, region])

    def item_refs(self, service: str, region: str, item_id: str) -> list[ObjectRow]:
        """The objects of an item in publish order (payload by key, marker last)."""
        return self.items_refs(service, region, [item_id]).get(item_id, [])

    def items_refs(self, service: str, region: str,
                   item_ids: Iterable[str]) -> dict[str, list[ObjectRow]]:
        """The objects of several items, each in publish order (payload by key, marker
        last); one query per 500 items."""
        wanted = list(item_ids)
        found: dict[str, list[ObjectRow]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            for item_id, key, size, sha256, is_marker, status, attempts, digest in \
                    self.db.execute(
                        "select item_id, key, size, sha256, is_marker, status, attempts, "
                        "digest from objects where service = ? and region = ? and item_id in "
                        f"({','.join('?' * len(chunk))}) order by item_id, is_marker, key",
                        [service, region, *chunk]).fetchall():
                found.setdefault(item_id, []).append(ObjectRow(
                    key, size, sha256 or None, bool(is_marker), ItemStatus(status), attempts,
                    Digest.parse(digest) if digest else None))
        return found

    def item_as_model(self, row: ItemRow) -> BackupItem:
        refs = self.item_refs(row.service, row.region, row.item_id)
        payload = tuple(o.ref for o in refs if not o.is_marker)
        marker = next(o.ref for o in refs if o.is_marker)
        return BackupItem(row.kind, row.item_id, row.start_time, row.end_time, row.stream,
                          row.seq, payload, marker, row.completed_at, row.parent)

    def items(self, service: str, region: str, *, statuses: Iterable[ItemStatus] | None = None,
              kind: ItemKind | None = None) -> list[ItemRow]:
        """Items of a service in a region, oldest end time first."""
        sql = "select * from items where service = ? and region = ?"
        params: list[Any] = [service, region]
        if statuses is not None:
            wanted = [str(s) for s in statuses]
            sql += f" and status in ({','.join('?' * len(wanted))})"
            params.extend(wanted)
        if kind is not None:
            sql += " and kind = ?"
            params.append(str(kind))
        sql += " order by end_time, kind, item_id"
        return [_item_row(r) for r in self.db.query(sql, params)]

    def items_by_id(self, service: str, region: str, item_ids: Iterable[str]) -> list[ItemRow]:
        """The rows of the given items in a region, oldest end time first."""
        wanted = list(item_ids)
        rows: list[ItemRow] = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            rows += [_item_row(r) for r in self.db.query(
                "select * from items where service = ? and region = ? and item_id in "
                f"({','.join('?' * len(chunk))})", [service, region, *chunk])]
        return sorted(rows, key=lambda r: (r.end_time, r.kind, r.item_id))

    def set_item_status(self, service: str, region: str, item_id: str, status: ItemStatus,
                        now: datetime, reason: str = "") -> None:
        with self.db.atomic():
            before = self.db.execute(
                "select kind, status from items where service = ? and region = ? "
                "and item_id = ?", [service, region, item_id]).fetchone()
            self.db.execute(
                "update items set status = ?, reason = ?, updated_at = ? "
                "where service = ? and region = ? and item_id = ?",
                [str(status), reason, to_text(now), service, region, item_id])
            if before and before[0] == ItemKind.LOG \
                    and (before[1] in RESTORABLE) != (status in RESTORABLE):
                _rebuild_runs(self.db, service, region)

    def retain_region(self, service: str, region: str, now: datetime) -> None:
        """Replication to ``region`` stopped: its published items are retained; items that
        never completed there are dropped, since they were never restorable."""
        with self.db.atomic():
            self.db.execute(
                "update items set status = ?, reason = 'replication stopped', updated_at = ? "
                "where service = ? and region = ? and status = ?",
                [str(ItemStatus.RETAINED), to_text(now), service, region,
                 str(ItemStatus.AVAILABLE)])
            self._reset_copy_mark(service, region)
            for table in ("objects", "items"):
                self.db.execute(
                    f"delete from {table} where service = ? and region = ? and item_id in "
                    "(select item_id from items where service = ? and region = ? "
                    "and status != ?)",
                    [service, region, service, region, str(ItemStatus.RETAINED)])

    def publish_item(self, service: str, region: str, item_id: str, available_at: datetime,
                     lag_seconds: float) -> None:
        """Mark an item available in a region and record its replication lag."""
        self.publish_items(service, region, [(item_id, lag_seconds)], available_at)

    def publish_items(self, service: str, region: str, published: Iterable[tuple[str, float]],
                      available_at: datetime) -> None:
        """Mark items (id, lag in seconds) available in a region, recording each lag."""
        pairs = list(published)
        stamp = to_text(available_at)
        with self.db.atomic():
            segments: list[Segment] = []
            for item_id, _ in pairs:
                row = self.db.execute(
                    "select kind, stream, seq, start_time, end_time from items where "
                    "service = ? and region = ? and item_id = ?",
                    [service, region, item_id]).fetchone()
                if row and row[0] == ItemKind.LOG:
                    segments.append((row[1], row[2], row[3], row[4]))
            self.db.conn.executemany(
                "update items set status = ?, reason = '', available_at = ?, lag_seconds = ?, "
                "updated_at = ? where service = ? and region = ? and item_id = ?",
                [(str(ItemStatus.AVAILABLE), stamp, lag, stamp, service, region, item_id)
                 for item_id, lag in pairs])
            self._runs_add(service, region, segments)
            self.db.conn.executemany(
                "insert into lag_samples (service, region, item_id, at, lag_seconds) "
                "values (?, ?, ?, ?, ?)",
                [(service, region, item_id, stamp, lag) for item_id, lag in pairs])

    def record_copy(self, service: str, region: str, key: str, now: datetime, *, ok: bool,
                    method: str = "", verified_by: str = "", error: str = "") -> None:
        """Record one copy attempt and the object's resulting status."""
        self.record_copies(service, region, [CopyRecord(key, ok, method, verified_by, error)],
                           now)

    def record_copies(self, service: str, region: str, records: Iterable[CopyRecord],
                      now: datetime) -> None:
        """Record copy attempts and their objects' resulting status, in one transaction."""
        stamp = to_text(now)
        rows = list(records)
        with self.db.atomic():
            self.db.conn.executemany(
                "insert into copy_attempts (service, region, key, at, ok, method, verified_by, "
                "error) values (?, ?, ?, ?, ?, ?, ?, ?)",
                [(service, region, r.key, stamp, int(r.ok), r.method, r.verified_by, r.error)
                 for r in rows])
            self.db.conn.executemany(
                "update objects set status = ?, method = ?, verified_by = ?, "
                "attempts = attempts + 1, updated_at = ?, sha256 = coalesce(?, sha256), "
                "digest = coalesce(nullif(?, ''), digest) "
                "where service = ? and region = ? and key = ?",
                [(str(ItemStatus.AVAILABLE if r.ok else ItemStatus.FAILED), r.method,
                  r.verified_by, stamp, r.sha256 if r.ok else None, r.digest if r.ok else "",
                  service, region, r.key) for r in rows])

    def learn_sha256(self, service: str, learned: Iterable[tuple[str, str]]) -> None:
        """(key, SHA-256) of objects whose layout records no SHA-256, established by a
        verified copy as the source's: kept on every row of the object that has none yet
        (the primary's and the destinations' still to copy), so that later copies of it take
        the recorded-SHA-256 path and never read the source again."""
        pairs = list(learned)
        if not pairs:
            return
        # per region, so that each update is a primary-key lookup, not a scan
        regions = [r[0] for r in self.db.execute(
            "select region from locations where service = ? union "
            "select region from services where name = ?", [service, service]).fetchall()]
        self.db.conn.executemany(
            "update objects set sha256 = ? where service = ? and region = ? and key = ? "
            "and sha256 is null",
            [(sha256, service, region, key) for key, sha256 in pairs for region in regions])

    def copy_attempts(self, service: str, region: str) -> list[dict[str, Any]]:
        return list(self.db.query(
            "select * from copy_attempts where service = ? and region = ? order by id",
            [service, region]))

    def withdraw_region(self, service: str, region: str, now: datetime, reason: str) -> None:
        """Nothing in ``region`` counts as restorable any more (its copies are being
        deleted); the objects stay recorded until forget_region."""
        with self.db.atomic():
            self.db.execute(
                "update items set status = ?, reason = ?, updated_at = ? "
                "where service = ? and region = ?",
                [str(ItemStatus.FAILED), reason, to_text(now), service, region])
            _rebuild_runs(self.db, service, region)

    def object_keys(self, service: str, region: str) -> list[str]:
        """Every object key recorded for a service in a region (relative to the service
        prefix), completion markers first."""
        return [r[0] for r in self.db.execute(
            "select key from objects where service = ? and region = ? "
            "order by is_marker desc, key", [service, region]).fetchall()]

    def withdraw_items(self, service: str, region: str, item_ids: Iterable[str],
                       now: datetime, reason: str) -> None:
        """Stop counting items as restorable before their copies are deleted, so that an
        interrupted deletion never leaves a published item with missing objects."""
        ids = sorted(item_ids)
        with self.db.atomic():
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                self.db.execute(
                    "update items set status = ?, reason = ?, updated_at = ? where service = ? "
                    f"and region = ? and item_id in ({','.join('?' * len(chunk))})",
                    [str(ItemStatus.DELETING), reason, to_text(now), service, region, *chunk])
            _rebuild_runs(self.db, service, region)

    def expire_items(self, service: str, region: str, item_ids: Iterable[str],
                     now: datetime) -> None:
        """Items whose copies retention deleted: their objects are forgotten, the items stay
        as expired so that no later pass copies them again."""
        ids = sorted(item_ids)
        with self.db.atomic():
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                self.db.execute(f"delete from objects where service = ? and region = ? "
                                f"and item_id in ({marks})", [service, region, *chunk])
                self.db.execute(
                    f"update items set status = ?, updated_at = ? where service = ? and "
                    f"region = ? and item_id in ({marks})",
                    [str(ItemStatus.EXPIRED), to_text(now), service, region, *chunk])

    def forget_region(self, service: str, region: str) -> None:
        """Drop a region's items and objects (after its copies were deleted)."""
        with self.db.atomic():
            self._reset_copy_mark(service, region)
            for table in ("items", "objects", "log_runs"):
                self.db.execute(f"delete from {table} where service = ? and region = ?",
                                [service, region])

    # -- log runs (the chain summary) ---------------------------------------------------------

    def _runs_add(self, service: str, region: str, segments: Iterable[Segment]) -> None:
        """Fold restorable segments into the runs: consecutive ones become one piece first,
        so a batch costs a few queries per piece, not per segment."""
        pieces: list[list[Any]] = []
        for stream, seq, start, end in sorted(segments):
            last = pieces[-1] if pieces else None
            if last and last[0] == stream and last[2] == seq - 1:
                last[2], last[4] = seq, max(last[4], end)
            elif not (last and last[0] == stream and last[2] == seq):
                pieces.append([stream, seq, seq, start, end])
        for stream, first, last_seq, start, end in pieces:
            self._run_add(service, region, stream, first, last_seq, start, end)

    def _run_add(self, service: str, region: str, stream: str, first: int, last: int,
                 start: str, end: str) -> None:
        """Fold segments ``first``..``last`` of a stream: extend, bridge or start a run."""
        key = [service, region, stream]
        overlapping = self.db.execute(
            "select 1 from log_runs where service = ? and region = ? and stream = ? "
            "and first_seq <= ? and last_seq >= ?", [*key, last, first]).fetchone()
        if overlapping:
            # Only part of the piece is new (or the runs are stale): recount them all.
            _rebuild_runs(self.db, service, region)
            return
        before = self.db.execute(
            "select first_seq, first_start, last_end from log_runs where service = ? and "
            "region = ? and stream = ? and last_seq = ?", [*key, first - 1]).fetchone()
        after = self.db.execute(
            "select last_seq, last_end from log_runs where service = ? and region = ? and "
            "stream = ? and first_seq = ?", [*key, last + 1]).fetchone()
        first_seq, first_start = (before[0], before[1]) if before else (first, start)
        last_seq = after[0] if after else last
        # Segment end times need not grow with seq (a segment without commits may carry an
        # early time), so the run ends at the latest of the pieces it joins.
        last_end = max([end, *(row[-1] for row in (before, after) if row)])
        if before:
            self.db.execute("delete from log_runs where service = ? and region = ? and "
                            "stream = ? and last_seq = ?", [*key, first - 1])
        if after:
            self.db.execute("delete from log_runs where service = ? and region = ? and "
                            "stream = ? and first_seq = ?", [*key, last + 1])
        self.db.execute(
            "insert into log_runs (service, region, stream, first_seq, last_seq, first_start, "
            "last_end) values (?, ?, ?, ?, ?, ?, ?)",
            [*key, first_seq, last_seq, first_start, last_end])

    def runs(self, service: str, region: str) -> list[LogRun]:
        """The contiguous runs of restorable log segments in a region."""
        return [LogRun(r["stream"], r["first_seq"], r["last_seq"], from_text(r["first_start"]),
                       from_text(r["last_end"]))
                for r in self.db.query(
                    "select * from log_runs where service = ? and region = ? "
                    "order by stream, first_seq", [service, region])]

    def log_items(self, service: str, region: str, stream: str, first_seq: int,
                  last_seq: int) -> list[ItemRow]:
        """Restorable log segments of a stream in a seq range (an index range scan)."""
        return [_item_row(r) for r in self.db.query(
            "select * from items where service = ? and region = ? and kind = 'log' and "
            f"stream = ? and seq between ? and ? and {_RESTORABLE_SQL} order by seq",
            [service, region, stream, first_seq, last_seq])]

    def covering_seq(self, service: str, region: str, stream: str,
                     moment: datetime) -> int | None:
        """The lowest seq of a restorable segment of ``stream`` ending at or after ``moment``."""
        row = self.db.execute(
            "select seq from items where service = ? and region = ? and kind = 'log' and "
            f"stream = ? and end_time >= ? and {_RESTORABLE_SQL} order by end_time, seq "
            "limit 1", [service, region, stream, to_text(moment)]).fetchone()
        return int(row[0]) if row else None

    def item(self, service: str, region: str, item_id: str) -> ItemRow | None:
        rows = list(self.db.query(
            "select * from items where service = ? and region = ? and item_id = ?",
            [service, region, item_id]))
        return _item_row(rows[0]) if rows else None

    # -- lag, audit, events ------------------------------------------------------------------

    def lag_samples(self, service: str, region: str, since: datetime,
                    until: datetime) -> list[tuple[datetime, float]]:
        return [(from_text(r["at"]), float(r["lag_seconds"])) for r in self.db.query(
            "select at, lag_seconds from lag_samples where service = ? and region = ? "
            "and at >= ? and at <= ? order by at, id",
            [service, region, to_text(since), to_text(until)])]

    def last_lag(self, service: str, region: str) -> float | None:
        """The lag of the item most recently published in ``region``."""
        rows = list(self.db.query(
            "select lag_seconds from lag_samples where service = ? and region = ? "
            "order by at desc, id desc limit 1", [service, region]))
        return float(rows[0]["lag_seconds"]) if rows else None

    def audit(self, now: datetime, actor: str, action: str, service: str,
              details: dict[str, Any]) -> None:
        self._t("audit").insert(
            {"at": to_text(now), "actor": actor, "action": action, "service": service,
             "details": json.dumps(details, sort_keys=True)})

    def audit_log(self, service: str | None = None) -> list[dict[str, Any]]:
        sql, params = "select * from audit", []
        if service is not None:
            sql, params = sql + " where service = ?", [service]
        return list(self.db.query(sql + " order by id", params))

    def event(self, now: datetime, level: str, service: str, region: str, message: str) -> None:
        self._t("events").insert({"at": to_text(now), "level": level, "service": service,
                                  "region": region, "message": message})

    def events(self, limit: int = 100, service: str | None = None) -> list[EventRow]:
        sql, params = "select * from events", []
        if service is not None:
            sql, params = sql + " where service = ?", [service]
        rows = list(self.db.query(sql + " order by id desc limit ?", [*params, limit]))
        return [EventRow(from_text(r["at"]), r["level"], r["service"], r["region"],
                         r["message"]) for r in reversed(rows)]


def _item_row(r: dict[str, Any]) -> ItemRow:
    return ItemRow(
        service=r["service"], region=r["region"], item_id=r["item_id"],
        kind=ItemKind(r["kind"]), stream=r["stream"], seq=r["seq"],
        start_time=from_text(r["start_time"]), end_time=from_text(r["end_time"]),
        size=r["size"], object_count=r["object_count"], status=ItemStatus(r["status"]),
        reason=r["reason"] or "", completed_at=from_text(r["completed_at"]),
        available_at=from_text(r["available_at"]) if r["available_at"] else None,
        lag_seconds=r["lag_seconds"], parent=r.get("parent") or "")


class CatalogLock:
    """The exclusive lock of one catalog: a lock file beside it (``<catalog>.lock``) held with
    flock, so that two `btar sync` never copy the same objects at once. The kernel releases it
    when the holder exits, even on SIGKILL; the file stays and holds the last holder's pid."""

    def __init__(self, catalog: str | Path) -> None:
        self.path = Path(f"{catalog}.lock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = ""
            for _ in range(20):
                # The holder writes its pid just after it takes the lock: give it a moment.
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
                if holder.isdigit():
                    break
                time.sleep(0.025)
            os.close(fd)
            raise SyncAlreadyRunning(str(self.path),
                                     int(holder) if holder.isdigit() else None) from None
        # One write of a fixed width: a reader never sees the file half rewritten.
        os.pwrite(fd, f"{os.getpid():<20}\n".encode(), 0)
        os.ftruncate(fd, 21)
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


def _create_owner_only(path: Path) -> None:
    """Create the catalog file empty, readable and writable by its owner only, unless it
    exists (an existing file keeps the mode its owner gave it). SQLite creates the -wal and
    -shm files with the mode of the database file."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.fchmod(fd, 0o600)  # whatever the umask
    os.close(fd)


def _reason(error: BaseException) -> str:
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return " ".join(str(text).split())

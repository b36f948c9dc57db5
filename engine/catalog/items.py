"""Items and their objects per region: added, copied, published, withdrawn."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from engine.catalog.base import text_of
from engine.catalog.rows import (
    CopyRecord,
    ItemRow,
    LagRow,
    ObjectRow,
)
from engine.catalog.runs import ITEM_COLUMNS, RunsPart, item_row
from engine.catalog.schema import (
    _CHUNK,
    RESTORABLE,
    Segment,
    _rebuild_runs,
    from_text,
    to_text,
)
from engine.model import (
    UNFINISHED,
    BackupItem,
    Digest,
    ItemKind,
    ItemStatus,
)


class ItemsPart(RunsPart):
    """Items and objects."""

    def status_counts(self, service: str, region: str) -> dict[str, int]:
        """How many items of each status a region holds (counted by SQLite, nothing decoded)."""
        return {status: count for status, count in self.conn.execute(
            "select status, count(*) from items where service = ? and region = ? "
            "group by status order by status", [service, region]).fetchall()}

    def backlog(self, service: str, region: str) -> dict[ItemKind, tuple[int, int]]:
        """Items not yet published in a region, per kind: (how many, their bytes)."""
        unfinished = [str(s) for s in UNFINISHED]
        return {ItemKind(kind): (count, int(size or 0)) for kind, count, size in self.conn.execute(
            "select kind, count(*), sum(size) from items where service = ? and region = ? "
            f"and status in ({','.join('?' * len(unfinished))}) group by kind order by kind",
            [service, region, *unfinished]).fetchall()}

    def oldest_unfinished(self, service: str, region: str) -> datetime | None:
        """When the oldest item not yet published in a region completed in the primary
        (SQLite finds it; times are stored in one fixed-width format, so text order is
        time order)."""
        unfinished = [str(s) for s in UNFINISHED]
        row = self.conn.execute(
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
                for status, done, available in self.conn.execute(
                    "select status, completed_at, available_at from items where service = ? "
                    f"and region = ? and completed_at <= ? and (status in ({marks}) "
                    "or available_at >= ?)",
                    [service, region, to_text(end), *unfinished, to_text(start)])]

    def item_ids(self, service: str, region: str, status: ItemStatus) -> set[str]:
        """Ids of the items with ``status`` in a region (no row decoding: cheap)."""
        return {r[0] for r in self.conn.execute(
            "select item_id from items where service = ? and region = ? and status = ?",
            (service, region, str(status)))}

    def listed_statuses(self, service: str, region: str) -> tuple[set[str], dict[str, str]]:
        """What a full listing judges: every item id of a region, read from the primary key's
        index alone (no table row), and the status of those that are not available (in a
        primary, the few a listing missed or that left it)."""
        known = set(itertools.chain.from_iterable(self.conn.execute(
            "select item_id from items where service = ? and region = ?",
            (service, region)).fetchall()))
        return known, self.unavailable_statuses(service, region)

    def item_count(self, service: str, region: str) -> int:
        """How many items a region holds, whatever their status (from item_counts)."""
        return int(self.conn.execute(
            "select coalesce(sum(items), 0) from item_counts where service = ? and region = ?",
            (service, region)).fetchone()[0])

    def unavailable_statuses(self, service: str, region: str) -> dict[str, str]:
        """The status of each item of a region that is not available (a seek per status)."""
        statuses = [str(s) for s in ItemStatus if s != ItemStatus.AVAILABLE]
        return dict(self.conn.execute(
            "select item_id, status from items where service = ? and region = ? and status in "
            f"({','.join('?' * len(statuses))})", (service, region, *statuses)).fetchall())

    def known_among(self, service: str, region: str, item_ids: Iterable[str]) -> set[str]:
        """Which of ``item_ids`` the catalog knows in a region (index seeks, no scan)."""
        wanted = sorted(set(item_ids))
        known: set[str] = set()
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start:start + _CHUNK]
            known.update(r[0] for r in self.conn.execute(
                "select item_id from items where service = ? and region = ? and item_id in "
                f"({','.join('?' * len(chunk))})", (service, region, *chunk)))
        return known

    def has_log_segment(self, service: str, region: str, stream: str, seq: int) -> bool:
        return bool(self._read(
            "select 1 from items where service = ? and region = ? and kind = 'log' and "
            "stream = ? and seq = ? limit 1", (service, region, stream, seq)))

    def add_item(self, service: str, region: str, item: BackupItem, status: ItemStatus,
                 now: datetime, *, available_at: datetime | None = None) -> None:
        """Record an item and its objects in a region (no-op if already recorded)."""
        self.add_items(service, region, [(item, available_at)], status, now)

    def add_items(self, service: str, region: str,
                  items: Iterable[tuple[BackupItem, datetime | None]], status: ItemStatus,
                  now: datetime, *, unknown: bool = False) -> int:
        """Record items (each with its available_at) and their objects in a region, in one
        transaction; items already recorded are left as they are. Returns how many were new.
        ``unknown``: the caller has just found none of them in the catalog, with no write
        between (a pass's listing has), so they are not looked up again."""
        batch = {item.item_id: (item, available_at) for item, available_at in items}
        if not batch:
            return 0  # nothing to write (most markers of a pass are known already)
        stamp = self._text(now)
        object_status = str(ItemStatus.AVAILABLE if status == ItemStatus.AVAILABLE
                            else ItemStatus.PENDING)
        with self._atomic():
            known = set() if unknown else self.known_among(service, region, batch)
            new = [pair for item_id, pair in batch.items() if item_id not in known]
            if not new:
                return 0
            runs: list[Segment] = []
            self.conn.executemany(
                "insert into items (service, region, item_id, kind, stream, seq, start_time, "
                "end_time, size, object_count, status, reason, completed_at, available_at, "
                "lag_seconds, updated_at, parent) "
                "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, null, ?, ?)",
                # Generators, not lists: a first full listing may bring millions of rows.
                (self._item_values(service, region, item, available_at, str(status), stamp,
                                   runs if status in RESTORABLE else None)
                 for item, available_at in new))
            self.conn.executemany(
                "insert or ignore into objects (service, region, item_id, key, size, sha256, "
                "is_marker, status, method, verified_by, attempts, updated_at, digest) "
                "values (?, ?, ?, ?, ?, ?, ?, ?, '', '', 0, ?, ?)",
                ((service, region, item.item_id, ref.key, ref.size, ref.sha256,
                  int(ref is item.marker), object_status, stamp,
                  str(ref.digest) if ref.digest is not None else "")
                 for item, _ in new for ref in item.objects))
            if runs:
                self._runs_add(service, region, runs)
        return len(new)

    @staticmethod
    def _item_values(service: str, region: str, item: BackupItem,
                     available_at: datetime | None, status: str, stamp: str,
                     runs: list[Segment] | None) -> tuple[Any, ...]:
        """An items row of add_items; a restorable log segment is also noted in ``runs``
        with the same texts (each time is formatted once)."""
        start, end = text_of(item.start_time), text_of(item.end_time)
        done = text_of(item.completed_at)
        available = None if not available_at else \
            done if available_at == item.completed_at else text_of(available_at)
        if runs is not None and item.kind == ItemKind.LOG:
            runs.append((item.stream, item.seq, start, end))
        objects = (*item.payload, item.marker)
        return (service, region, item.item_id, str(item.kind), item.stream, item.seq, start,
                end, sum(o.size for o in objects), len(objects), status, done, available,
                stamp, item.parent)

    def add_missing(self, service: str, source: str, destination: str, now: datetime, *,
                    since_rowid: int = 0) -> list[ItemRow]:
        """Record as pending in ``destination`` every item available in ``source`` that
        ``destination`` has no record of, looking only at source rows after ``since_rowid``
        (0: all). Returns the rows added, oldest end time first.

        Three statements whatever the number of items (a catch-up queues thousands at once):
        the rows and their objects copied over by INSERT ... SELECT, then the new rows read
        back by rowid, which only grows (the copy marks rely on it too)."""
        stamp = self._text(now)
        with self._atomic():
            last = self.conn.execute("select coalesce(max(rowid), 0) from items").fetchone()[0]
            # After a mark, the rows since it (a rowid range: the rows every service added
            # since this one's last pass) and not every available row of the service: the
            # unary + keeps SQLite from choosing the (service, region, status) index.
            plus = "+" if since_rowid > 0 else ""
            added = self.conn.execute(
                "insert into items (service, region, item_id, kind, stream, seq, start_time, "
                "end_time, size, object_count, status, reason, completed_at, available_at, "
                "lag_seconds, updated_at, parent) "
                "select p.service, ?, p.item_id, p.kind, p.stream, p.seq, p.start_time, "
                "p.end_time, p.size, p.object_count, ?, '', p.completed_at, null, null, ?, "
                f"p.parent from items as p where p.rowid > ? and {plus}p.service = ? and "
                f"{plus}p.region = ? and {plus}p.status = ? and not exists (select 1 from "
                "items as d where d.service = p.service and d.region = ? and "
                "d.item_id = p.item_id)",
                [destination, str(ItemStatus.PENDING), stamp, since_rowid, service, source,
                 str(ItemStatus.AVAILABLE), destination]).rowcount
            if added <= 0:
                return []
            # CROSS JOIN: the new rows (a rowid range) drive, each a seek into objects;
            # SQLite would otherwise scan objects and look for each one's row.
            self.conn.execute(
                "insert or ignore into objects (service, region, item_id, key, size, sha256, "
                "is_marker, status, method, verified_by, attempts, updated_at, digest) "
                "select o.service, ?, o.item_id, o.key, o.size, o.sha256, o.is_marker, ?, '', "
                "'', 0, ?, o.digest from items as d cross join objects as o on "
                "o.service = d.service and o.region = ? and o.item_id = d.item_id "
                "where d.rowid > ?",
                [destination, str(ItemStatus.PENDING), stamp, source, last])
            rows = [item_row(r) for r in self.conn.execute(
                f"select {ITEM_COLUMNS} from items where rowid > ?", [last])]
        return sorted(rows, key=lambda r: (r.end_time, r.kind, r.item_id))

    def stream_start(self, service: str, region: str, stream: str) -> int | None:
        """The seq a stream starts at, when a history item records its branching."""
        rows = self._read(
            "select seq from items where service = ? and region = ? and kind = 'history' and "
            "stream = ? limit 1", (service, region, stream))
        return int(rows[0][0]) if rows else None

    def mark_copying(self, service: str, region: str, item_ids: Iterable[str],
                     now: datetime) -> None:
        """Items whose copies are under way (none of them restorable before or after)."""
        with self._atomic():
            self.conn.executemany(
                "update items set status = ?, updated_at = ? where service = ? and region = ? "
                "and item_id = ? and status != ?",
                [(str(ItemStatus.COPYING), self._text(now), service, region, item_id,
                  str(ItemStatus.AVAILABLE)) for item_id in item_ids])

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
                    self.conn.execute(
                        "select item_id, key, size, sha256, is_marker, status, attempts, "
                        "digest from objects where service = ? and region = ? and item_id in "
                        f"({','.join('?' * len(chunk))}) order by item_id, is_marker, key",
                        (service, region, *chunk)):
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
        sql = f"select {ITEM_COLUMNS} from items where service = ? and region = ?"
        params: list[Any] = [service, region]
        if statuses is not None:
            wanted = [str(s) for s in statuses]
            sql += f" and status in ({','.join('?' * len(wanted))})"
            params.extend(wanted)
        if kind is not None:
            sql += " and kind = ?"
            params.append(str(kind))
        sql += " order by end_time, kind, item_id"
        return [item_row(r) for r in self.conn.execute(sql, params)]

    def set_item_status(self, service: str, region: str, item_id: str, status: ItemStatus,
                        now: datetime, reason: str = "") -> None:
        with self._atomic():
            before = self.conn.execute(
                "select kind, status from items where service = ? and region = ? "
                "and item_id = ?", (service, region, item_id)).fetchone()
            self.conn.execute(
                "update items set status = ?, reason = ?, updated_at = ? "
                "where service = ? and region = ? and item_id = ?",
                (str(status), reason, self._text(now), service, region, item_id))
            if before and before[0] == ItemKind.LOG \
                    and (before[1] in RESTORABLE) != (status in RESTORABLE):
                _rebuild_runs(self.conn, service, region)

    def retain_region(self, service: str, region: str, now: datetime) -> None:
        """Replication to ``region`` stopped: its published items are retained; items that
        never completed there are dropped, since they were never restorable."""
        with self.transaction():
            self._write(
                "update items set status = ?, reason = 'replication stopped', updated_at = ? "
                "where service = ? and region = ? and status = ?",
                [str(ItemStatus.RETAINED), to_text(now), service, region,
                 str(ItemStatus.AVAILABLE)])
            self._reset_copy_mark(service, region)
            for table in ("objects", "items"):
                self._write(
                    f"delete from {table} where service = ? and region = ? and item_id in "
                    "(select item_id from items where service = ? and region = ? "
                    "and status != ?)",
                    [service, region, service, region, str(ItemStatus.RETAINED)])
            self.item_deletions += 1
            self._cap_copy_marks()

    def publish_item(self, service: str, region: str, item_id: str, available_at: datetime,
                     lag_seconds: float) -> None:
        """Mark an item available in a region and record its replication lag."""
        self.publish_items(service, region, [(item_id, lag_seconds)], available_at)

    def publish_items(self, service: str, region: str, published: Iterable[tuple[str, float]],
                      available_at: datetime) -> None:
        """Mark items (id, lag in seconds) available in a region, recording each lag."""
        pairs = list(published)
        if not pairs:
            return  # nothing published by these completions
        stamp = self._text(available_at)
        with self._atomic():
            segments: list[Segment] = []
            for start in range(0, len(pairs), _CHUNK):
                chunk = [item_id for item_id, _ in pairs[start:start + _CHUNK]]
                segments += self.conn.execute(
                    "select stream, seq, start_time, end_time from items where service = ? "
                    f"and region = ? and item_id in ({','.join('?' * len(chunk))}) "
                    "and kind = ?", (service, region, *chunk, str(ItemKind.LOG))).fetchall()
            self.conn.executemany(
                "update items set status = ?, reason = '', available_at = ?, lag_seconds = ?, "
                "updated_at = ? where service = ? and region = ? and item_id = ?",
                [(str(ItemStatus.AVAILABLE), stamp, lag, stamp, service, region, item_id)
                 for item_id, lag in pairs])
            self._runs_add(service, region, segments)
            self.conn.executemany(
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
        rows = list(records)
        if not rows:
            return
        stamp = self._text(now)
        with self._atomic():
            self.conn.executemany(
                "insert into copy_attempts (service, region, key, at, ok, method, verified_by, "
                "error) values (?, ?, ?, ?, ?, ?, ?, ?)",
                [(service, region, r.key, stamp, int(r.ok), r.method, r.verified_by, r.error)
                 for r in rows])
            self.conn.executemany(
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
        regions = [r[0] for r in self.conn.execute(
            "select region from locations where service = ? union "
            "select region from services where name = ?", [service, service]).fetchall()]
        self.conn.executemany(
            "update objects set sha256 = ? where service = ? and region = ? and key = ? "
            "and sha256 is null",
            [(sha256, service, region, key) for key, sha256 in pairs for region in regions])

    def copy_attempts(self, service: str, region: str) -> list[dict[str, Any]]:
        return self._query(
            "select * from copy_attempts where service = ? and region = ? order by id",
            [service, region])

    def withdraw_region(self, service: str, region: str, now: datetime, reason: str) -> None:
        """Nothing in ``region`` counts as restorable any more (its copies are being
        deleted); the objects stay recorded until forget_region."""
        with self.transaction():
            self._write(
                "update items set status = ?, reason = ?, updated_at = ? "
                "where service = ? and region = ?",
                [str(ItemStatus.FAILED), reason, to_text(now), service, region])
            _rebuild_runs(self.conn, service, region)

    def object_keys(self, service: str, region: str) -> list[str]:
        """Every object key recorded for a service in a region (relative to the service
        prefix), completion markers first."""
        return [r[0] for r in self.conn.execute(
            "select key from objects where service = ? and region = ? "
            "order by is_marker desc, key", [service, region]).fetchall()]

    def withdraw_items(self, service: str, region: str, item_ids: Iterable[str],
                       now: datetime, reason: str) -> None:
        """Stop counting items as restorable before their copies are deleted, so that an
        interrupted deletion never leaves a published item with missing objects."""
        ids = sorted(item_ids)
        with self.transaction():
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                self._write(
                    "update items set status = ?, reason = ?, updated_at = ? where service = ? "
                    f"and region = ? and item_id in ({','.join('?' * len(chunk))})",
                    [str(ItemStatus.DELETING), reason, to_text(now), service, region, *chunk])
            _rebuild_runs(self.conn, service, region)

    def expire_items(self, service: str, region: str, item_ids: Iterable[str],
                     now: datetime) -> None:
        """Items whose copies retention deleted: their objects are forgotten, the items stay
        as expired so that no later pass copies them again."""
        ids = sorted(item_ids)
        with self.transaction():
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                self._write(f"delete from objects where service = ? and region = ? "
                                f"and item_id in ({marks})", [service, region, *chunk])
                self._write(
                    f"update items set status = ?, updated_at = ? where service = ? and "
                    f"region = ? and item_id in ({marks})",
                    [str(ItemStatus.EXPIRED), to_text(now), service, region, *chunk])

    def forget_region(self, service: str, region: str) -> None:
        """Drop a region's items and objects (after its copies were deleted)."""
        with self.transaction():
            self._reset_copy_mark(service, region)
            for table in ("items", "objects", "log_runs"):
                self._write(f"delete from {table} where service = ? and region = ?",
                                [service, region])
            self.item_deletions += 1
            self._cap_copy_marks()

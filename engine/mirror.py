"""Mirroring, sans I/O: the files a backup tool rewrites in place beside its backups
(pgBackRest's backup.info and archive.info) copied into each destination byte-identical, so
that the tool can restore from the copy with nothing written by btar first.

They are not items (an item's objects never change). A layout that keeps such files
declares them (engine.formats.base.MirroredFiles); after a pass's publications the scheduler
has this module compare each with what the catalog says the destination holds:

- unchanged since it was mirrored there (same size and time in the primary's listing): no
  read, no write;
- changed: read once at the primary (bytes kept per version while the process runs), and
  written only when the layout finds every item it names published in that destination (a
  backup.info naming a backup the destination lacks would have pgBackRest pick it there);
  else the catalog and an event say which items hold it back (`btar check` reports it);
- the write is a copy from the primary pinned to the SHA-256 of the bytes that were judged;
  a copy that holds other bytes (the file was rewritten in between) is removed from the
  destination (pgBackRest then reads the ``.copy`` twin) and tried again at the next pass.

Writes go through the scheduler's own effects (StartCopy, and NextCompletions at the end of a
once run), so both drivers carry them out. Nothing is ever written or deleted in a primary
location.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Container, Generator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.catalog import Catalog, MirrorRow
from engine.copy_queue import DestinationQueue
from engine.effects import (
    Completions,
    CopyResult,
    CopyTask,
    DeleteBatch,
    Effect,
    NextCompletions,
    Now,
    ReadObject,
    StartCopy,
)
from engine.errors import StorageError
from engine.formats.base import BackupLayout, MirroredFiles
from engine.listing import list_under
from engine.model import ItemStatus, ObjectInfo, Service
from engine.replication import verify


@dataclass(frozen=True)
class MirrorWrite:
    """One version of a mirrored file to write into ``region``: the bytes judged ready were
    ``size`` bytes with ``sha256``; ``source`` is the primary's listing entry they came from."""

    service: Service
    region: str
    source: ObjectInfo
    sha256: str
    size: int

    @property
    def task(self) -> CopyTask:
        return CopyTask(self.service.region, self.region,
                        f"{self.service.key_prefix}/{self.source.key}", self.size, self.sha256)


class Published(Container[str]):
    """The items available in one destination, asked one id at a time (a region holds far
    more log segments than a mirrored file names backups)."""

    def __init__(self, catalog: Catalog, service: str, region: str) -> None:
        self.catalog, self.service, self.region = catalog, service, region

    def __contains__(self, item_id: object) -> bool:
        row = self.catalog.item(self.service, self.region, str(item_id))
        return row is not None and row.status == ItemStatus.AVAILABLE


def unchanged(row: MirrorRow | None, entry: ObjectInfo) -> bool:
    """Is the version the destination holds the one the primary lists (by size and time)?"""
    return row is not None and bool(row.sha256) and not row.blocked \
        and row.source_size == entry.size and row.source_modified == entry.last_modified


class Mirror:
    """Mirrored files of every service of one replication run: the entries each service's
    last listing showed, the writes due, and those in flight."""

    def __init__(self, catalog: Catalog, *, page_size: int) -> None:
        self.catalog = catalog
        #: of the listings of the files to mirror (engine.listing.list_under)
        self.page_size = page_size
        self.listed: dict[str, tuple[ObjectInfo, ...]] = {}
        #: (service, key) -> (size, time, bytes) of the version last read at the primary
        self.read: dict[tuple[str, str], tuple[int, datetime, bytes]] = {}
        self.due: deque[MirrorWrite] = deque()
        #: (destination, full key) -> the write in flight
        self.flights: dict[tuple[str, str], MirrorWrite] = {}

    @property
    def in_flight(self) -> int:
        return len(self.flights)

    def saw(self, service: str, entries: Sequence[ObjectInfo] | None) -> None:
        """The mirrored files a full listing of the service's primary showed; None when the
        tool rewrote them since (an incremental listing found a new backup): the next
        prepare lists them again."""
        if entries is None:
            self.listed.pop(service, None)
        else:
            self.listed[service] = tuple(entries)

    def prepare(self, layout: BackupLayout, service: Service,
                queues: Sequence[DestinationQueue]) -> Generator[Effect, Any, None]:
        """Queue a write of each listed file that changed and is ready for a destination
        (one that is not paused: a paused region is written to when it resumes)."""
        entries = self.listed.get(service.name)
        if entries is None:
            # Not seen in this run yet, or rewritten since: an incremental listing leaves
            # them out (they are in no listing area), so they are listed on their own.
            entries = yield from self._list(layout, service)
        if not entries or not isinstance(layout, MirroredFiles):
            return
        now: datetime = yield Now()
        for region in [q.region for q in queues if not q.paused and not q.dropped]:
            if region == service.region:
                continue  # never a write into the primary
            rows = {r.key: r for r in self.catalog.mirror_rows(service.name, region)}
            for entry in entries:
                row = rows.get(entry.key)
                busy = (region, f"{service.key_prefix}/{entry.key}") in self.flights
                if busy or unchanged(row, entry):
                    continue
                data = yield from self._read(service, entry, now)
                if data is not None:
                    self._judge(layout, service, region, entry, row, data, now)

    def _list(self, layout: BackupLayout,
              service: Service) -> Generator[Effect, Any, tuple[ObjectInfo, ...]]:
        """The files to mirror, listed under the layout's prefixes for them (nothing for a
        layout that mirrors none: an isinstance check against a Protocol is slow, so it is
        made once per service)."""
        entries: tuple[ObjectInfo, ...] = ()
        if isinstance(layout, MirroredFiles):
            listed: list[ObjectInfo] = []
            try:
                for prefix in layout.mirrored_prefixes():
                    listed += yield from list_under(service, prefix, self.page_size)
            except StorageError as error:
                now: datetime = yield Now()
                self.catalog.event(now, "warning", service.name, service.region,
                                   f"the files to mirror cannot be listed: {error}")
                return ()  # listed again at the next pass
            entries = layout.mirrored_files(listed)
        self.listed[service.name] = entries
        return entries

    def _read(self, service: Service, entry: ObjectInfo,
              now: datetime) -> Generator[Effect, Any, bytes | None]:
        cached = self.read.get((service.name, entry.key))
        if cached is not None and cached[:2] == (entry.size, entry.last_modified):
            return cached[2]
        try:
            data: bytes = yield ReadObject(service.region, f"{service.key_prefix}/{entry.key}")
        except StorageError as error:
            self.catalog.event(now, "warning", service.name, service.region,
                               f"{entry.key} not mirrored: cannot read it: {error}")
            return None
        self.read[(service.name, entry.key)] = (entry.size, entry.last_modified, data)
        return data

    def _judge(self, layout: MirroredFiles, service: Service, region: str, entry: ObjectInfo,
               row: MirrorRow | None, data: bytes, now: datetime) -> None:
        sha256 = hashlib.sha256(data).hexdigest()
        if row is not None and row.sha256 == sha256:
            # Rewritten with the same bytes (pgBackRest saves archive.info at every backup):
            # nothing to write, only the listing entry to remember.
            self.catalog.record_mirrored(service.name, region, entry.key, sha256, len(data),
                                         entry.size, entry.last_modified, now)
            return
        try:
            lacking = layout.mirror_blockers(entry.key, data, Published(
                self.catalog, service.name, region))
            blocked = f"it lists {', '.join(lacking)}, not published there" if lacking else ""
        except ValueError as error:
            blocked = f"it cannot be read: {error}"
        if blocked:
            if row is None or row.blocked != blocked:
                self.catalog.event(now, "warning", service.name, region,
                                   f"{entry.key} not mirrored to {region}: {blocked}")
            self.catalog.record_mirror_blocked(service.name, region, entry.key, blocked, now)
            return
        self.due.append(MirrorWrite(service, region, entry, sha256, len(data)))

    def start(self) -> Generator[Effect, Any, None]:
        """Start the writes due (beside the item copies; they are few and small)."""
        while self.due:
            write = self.due.popleft()
            task = write.task
            started: bool = yield StartCopy(task)
            if not started:
                self.due.clear()  # the driver is stopping: the next run judges again
                return
            self.flights[(task.destination, task.key)] = write

    def settle(self, results: Sequence[CopyResult]) -> Generator[Effect, Any, list[CopyResult]]:
        """Record the writes among ``results``; returns the other results."""
        others = [r for r in results if (r.task.destination, r.task.key) not in self.flights]
        if len(others) == len(results):
            return others
        now: datetime = yield Now()
        for result in results:
            write = self.flights.pop((result.task.destination, result.task.key), None)
            if write is None:
                continue
            ok, how = verify(result, write.sha256)
            name, key = write.service.name, write.source.key
            if ok:
                self.catalog.record_mirrored(name, write.region, key, write.sha256, write.size,
                                             write.source.size, write.source.last_modified, now)
                continue
            self.catalog.event(now, "warning", name, write.region,
                               f"mirror of {key} failed: {result.error or how}")
            if result.ok:
                # Bytes other than the ones judged landed there: they must not stay.
                yield DeleteBatch(write.region, (result.task.key,))
                self.catalog.forget_mirrored(name, write.region, key)
        return others

    def drain(self) -> Generator[Effect, Any, None]:
        """At the end of a once run, with nothing else in flight: write what is due and wait
        for it."""
        yield from self.start()
        while self.flights:
            wake: Completions = yield NextCompletions(None)
            yield from self.settle(wake.results)

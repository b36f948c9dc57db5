"""Replication decisions, sans I/O: one pass discovers complete primary items, copies what a
destination region lacks (payload first, completion marker last), verifies every object and
publishes an item only when all of its objects verified.

``replication_pass`` is a generator of effects (engine.effects); drivers carry them out.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.catalog import Catalog, CopyRecord, ItemRow, ObjectRow
from engine.effects import (
    CopyBatch,
    CopyResult,
    CopyTask,
    DeleteBatch,
    Effect,
    ListPage,
    Now,
    ReadObject,
    Sleep,
)
from engine.errors import CorruptBackup, InvalidKey, StorageError
from engine.formats.base import BackupLayout
from engine.listing import advance_cursors, full_listing_due, list_primary
from engine.model import BackupItem, ItemStatus, ObjectInfo, RegionRole, RegionState, Service
from engine.retention import RetentionPolicy, apply_retention
from engine.storage.base import validate_key
from engine.windows import window_from_catalog

#: Items still to be brought to a destination.
UNFINISHED = (ItemStatus.PENDING, ItemStatus.COPYING, ItemStatus.FAILED, ItemStatus.PAUSED)


@dataclass(frozen=True)
class ReplicationSettings:
    batch_size: int = 64
    max_attempts: int = 3
    list_page_size: int = 1000
    #: seconds between full listings of a primary; incremental listings in between
    full_listing_interval: float = 600.0
    #: seconds after which a listed key counts as settled (see engine.listing)
    listing_settle: float = 60.0
    #: seconds to wait after a batch the destination throttled, doubling while it goes on
    throttle_backoff: float = 1.0
    throttle_backoff_cap: float = 30.0


@dataclass
class PassOutcome:
    """What one pass did for one service."""

    service: str
    discovered: int = 0
    published: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    copied_objects: int = 0
    copied_bytes: int = 0
    paused: dict[str, str] = field(default_factory=dict)
    primary_error: str = ""
    #: items deleted by retention in the additional region
    retired: int = 0


def verify(result: CopyResult, expected_sha256: str) -> tuple[bool, str]:
    """Is the copy proven byte-identical to what the primary recorded? And how."""
    if not result.ok:
        return False, ""
    if result.sha256 is not None:
        if result.sha256 == expected_sha256:
            return True, result.verified_by or "sha256"
        return False, f"sha256 {result.sha256} != recorded {expected_sha256}"
    # A provider checksum equal to the source's is not enough: the source itself may not hold
    # what the primary recorded. Only the recorded SHA-256 publishes.
    return False, "nothing proved the copy holds the recorded SHA-256"


def _full(service: Service, key: str) -> str:
    return f"{service.key_prefix}/{key}"


_SHA256 = re.compile(r"^[0-9a-f]{64}$")
#: what the catalog (SQLite INTEGER) can hold
_INT64 = 2**63


def read_marker(layout: BackupLayout, service: Service, marker: ObjectInfo,
                data: bytes) -> BackupItem:
    """The item a completion marker describes, checked before anything is copied: whatever a
    layout reader throws on hostile bytes, and any object whose key would leave the service's
    prefix or whose size or hash cannot be right, is a CorruptBackup (reported, never copied,
    never a crash of the pass)."""
    try:
        item = layout.parse_marker(marker, data)
    except CorruptBackup:
        raise
    except Exception as error:  # a reader's bug on hostile input must not stop replication
        detail = " ".join(str(error).split())[:200]
        raise CorruptBackup(marker.key, f"unreadable completion marker ({type(error).__name__}: "
                                        f"{detail})") from None
    for ref in item.objects:
        try:
            validate_key(service.key_prefix, _full(service, ref.key))
        except InvalidKey as error:
            raise CorruptBackup(marker.key, f"lists an object outside the backup: {error}") \
                from None
        if not 0 <= ref.size < _INT64 or not _SHA256.match(ref.sha256):
            raise CorruptBackup(marker.key, f"object {ref.key!r} has an impossible size or "
                                            "SHA-256")
    if not -_INT64 < item.seq < _INT64:
        raise CorruptBackup(marker.key, "its sequence number is out of range")
    return item


def discover_primary(catalog: Catalog, layout: BackupLayout, service: Service,
                     settings: ReplicationSettings, *,
                     full: bool) -> Generator[Effect, Any, int]:
    """Record the primary's complete items that the catalog does not know yet (rule 3: an item
    exists for btar only once its completion marker does). A ``full`` listing also notices
    items gone from the primary; otherwise only what is new is listed (engine.listing).
    Returns how many items were new."""
    listing = yield from list_primary(catalog, layout, service, full=full,
                                      page_size=settings.list_page_size)
    try:
        found = layout.discover(listing.objects)
        marker_ids = {marker.key: layout.item_id_of_marker(marker.key)
                      for marker in found.markers}
    except Exception as error:  # a reader's bug on a hostile listing must not crash the pass
        detail = " ".join(str(error).split())[:200]
        raise CorruptBackup(f"{service.key_prefix}/", f"the listing cannot be read as the "
                            f"{layout.name} layout ({type(error).__name__}: {detail})") \
            from None
    present = {segment.item_id for segment in found.segments} | set(marker_ids.values())
    known = catalog.known_item_ids(service.name, service.region) if listing.full \
        else catalog.known_among(service.name, service.region, present)
    now: datetime = yield Now()
    with catalog.transaction():
        new = catalog.add_items(
            service.name, service.region,
            ((segment, segment.completed_at) for segment in found.segments
             if segment.item_id not in known), ItemStatus.AVAILABLE, now)
        if listing.full:
            _reconcile(catalog, service, present, now)
    for marker in found.markers:
        if marker_ids[marker.key] in known:
            continue
        data: bytes = yield ReadObject(service.region, _full(service, marker.key))
        try:
            item = read_marker(layout, service, marker, data)
        except CorruptBackup as error:
            catalog.event(now, "error", service.name, service.region, str(error))
            continue
        new += catalog.add_items(service.name, service.region, [(item, item.completed_at)],
                                 ItemStatus.AVAILABLE, now)
    advance_cursors(catalog, layout, service, listing, now, settings.listing_settle)
    return new


def _reconcile(catalog: Catalog, service: Service, present: set[str], now: datetime) -> None:
    """After a full listing: what the primary no longer holds stops counting, and what a
    listing missed once and shows again counts again."""
    available = catalog.item_ids(service.name, service.region, ItemStatus.AVAILABLE)
    for item_id in sorted(available - present):
        # Gone from the primary (its retention ran out): no longer a source or a cover.
        catalog.set_item_status(service.name, service.region, item_id,
                                ItemStatus.FAILED, now, "no longer in the primary")
    gone = catalog.item_ids(service.name, service.region, ItemStatus.FAILED)
    for item_id in sorted(gone & present):
        # Listed again: a listing that missed it once (eventual consistency, a flaky
        # page) must not drop it from replication for good.
        catalog.set_item_status(service.name, service.region, item_id,
                                ItemStatus.AVAILABLE, now)
        catalog.event(now, "info", service.name, service.region,
                      f"{item_id} is listed in the primary again")


class _RegionCopier:
    """The state of copying one service's items into one destination during one pass."""

    def __init__(self, catalog: Catalog, service: Service, region: str,
                 settings: ReplicationSettings, outcome: PassOutcome) -> None:
        self.catalog = catalog
        self.service = service
        self.region = region
        self.settings = settings
        self.outcome = outcome
        self.attempts: dict[str, int] = {}
        self.objects: dict[str, list[ObjectRow]] = {}
        self.given_up: dict[str, str] = {}
        #: full keys of copies that landed but did not verify (to be removed)
        self.unverified: list[str] = []
        #: batches in a row the destination throttled
        self.throttled = 0
        #: object key (relative to the service prefix) -> the item it belongs to
        self.owner: dict[str, str] = {}

    def _refs(self, item: ItemRow) -> list[ObjectRow]:
        if item.item_id not in self.objects:
            refs = self.catalog.item_refs(self.service.name, self.region, item.item_id)
            self.objects[item.item_id] = refs
            self.owner.update((ref.key, item.item_id) for ref in refs)
        return self.objects[item.item_id]

    def forget(self, item_id: str) -> None:
        """A published item needs no more state here (a catch-up may hold millions)."""
        for ref in self.objects.pop(item_id, []):
            self.owner.pop(ref.key, None)
            self.attempts.pop(ref.key, None)

    def next_tasks(self, items: Iterable[ItemRow]) -> list[CopyTask]:
        """Up to batch_size copies, oldest items first; a marker only once its payload
        verified."""
        tasks: list[CopyTask] = []
        for item in items:
            if item.item_id in self.given_up or item.status == ItemStatus.AVAILABLE:
                continue
            refs = self._refs(item)
            missing = [o for o in refs if not o.is_marker and o.status != ItemStatus.AVAILABLE]
            if not missing:
                missing = [o for o in refs if o.is_marker and o.status != ItemStatus.AVAILABLE]
            for ref in missing:
                if self.attempts.get(ref.key, 0) >= self.settings.max_attempts:
                    self.given_up[item.item_id] = f"{ref.key} failed {self.attempts[ref.key]} times"
                    break
            else:
                for ref in missing:
                    tasks.append(CopyTask(self.service.region, self.region,
                                          _full(self.service, ref.key), ref.size, ref.sha256))
                    if len(tasks) >= self.settings.batch_size:
                        return tasks
        return tasks

    def apply(self, results: tuple[CopyResult, ...], now: datetime) -> str | None:
        """Record results; returns a reason to stop the pass (unreachable side) or None."""
        prefix = f"{self.service.key_prefix}/"
        stop: str | None = None
        throttled = False
        records: list[CopyRecord] = []
        for result in results:
            key = result.task.key[len(prefix):]
            self.attempts[key] = self.attempts.get(key, 0) + 1
            ok, how = verify(result, result.task.sha256)
            error = "" if ok else (result.error or how)
            records.append(CopyRecord(key, ok, result.method, how if ok else "", error))
            refs = self.objects[self.owner[key]]
            for index, ref in enumerate(refs):
                if ref.key == key:
                    refs[index] = ObjectRow(ref.key, ref.size, ref.sha256, ref.is_marker,
                                            ItemStatus.AVAILABLE if ok else ItemStatus.FAILED,
                                            ref.attempts + 1)
            if ok:
                self.outcome.copied_objects += 1
                self.outcome.copied_bytes += result.task.size
                continue
            if result.ok:
                self.unverified.append(result.task.key)
            throttled = throttled or result.error_kind == "throttled"
            self.catalog.event(now, "warning", self.service.name, self.region,
                               f"copy of {key} failed: {error}")
            if result.error_kind == "unreachable":
                side = self.service.region if result.failed_side == "source" else self.region
                stop = f"{side} unreachable: {result.error}"
            elif result.error_kind == "missing" and result.failed_side == "source":
                self.attempts[key] = self.settings.max_attempts  # retrying cannot help
        self.catalog.record_copies(self.service.name, self.region, records, now)
        self.throttled = self.throttled + 1 if throttled else 0
        return stop

    def backoff(self) -> float:
        """Seconds to wait before the next batch: the provider asked to slow down."""
        if not self.throttled:
            return 0.0
        return min(self.settings.throttle_backoff_cap,
                   self.settings.throttle_backoff * 2.0 ** (self.throttled - 1))


def copy_to_region(catalog: Catalog, service: Service, region: str,
                   settings: ReplicationSettings, outcome: PassOutcome, *,
                   full: bool = True) -> Generator[Effect, Any, None]:
    """Bring ``region`` up to date with the primary's complete items; unless ``full``, only
    the primary's catalog rows added since the last look are checked for what to copy."""
    now: datetime = yield Now()
    location = catalog.location(service.name, region)
    if location is not None and location.state == RegionState.PAUSED:
        # Resume by ourselves once the region answers again.
        try:
            yield ListPage(region, f"{service.key_prefix}/", None, 1)
        except StorageError as error:
            outcome.paused[region] = f"{region} unreachable: {error}"
            return
        now = yield Now()
        catalog.set_location(service.name, region, location.role, RegionState.ACTIVE, now)
        catalog.event(now, "info", service.name, region, "region reachable again; resuming")

    with catalog.transaction():
        since = 0 if full else catalog.copy_mark(service.name, region)
        catalog.add_missing(service.name, service.region, region, now, since_rowid=since)
        catalog.set_copy_mark(service.name, region)

    copier = _RegionCopier(catalog, service, region, settings, outcome)
    items = catalog.items(service.name, region, statuses=UNFINISHED)
    by_id = {item.item_id: item for item in items}
    while True:
        tasks = copier.next_tasks(by_id.values())
        if not tasks:
            break
        if copier.backoff():
            yield Sleep(copier.backoff())
            now = yield Now()
        touched = sorted({copier.owner[t.key[len(service.key_prefix) + 1:]] for t in tasks})
        catalog.mark_copying(service.name, region,
                             (i for i in touched if by_id[i].status != ItemStatus.COPYING), now)
        results: tuple[CopyResult, ...] = yield CopyBatch(tuple(tasks))
        now = yield Now()
        with catalog.transaction():
            stop = copier.apply(results, now)
            published: list[tuple[str, float]] = []
            for item_id in touched:
                refs = copier.objects[item_id]
                item = by_id[item_id]
                if all(o.status == ItemStatus.AVAILABLE for o in refs):
                    published.append((item_id, (now - item.completed_at).total_seconds()))
                    del by_id[item_id]
                    copier.forget(item_id)
                else:
                    by_id[item_id] = _with_status(item, ItemStatus.COPYING)
            catalog.publish_items(service.name, region, published, now)
            outcome.published.extend(item_id for item_id, _ in published)
        if copier.unverified:
            # Bytes that did not verify never stay under a real key (a log segment is its own
            # completion marker: the backup tool would take it for a good one).
            keys, copier.unverified = tuple(copier.unverified), []
            try:
                errors: tuple[str, ...] = yield DeleteBatch(region, keys)
            except StorageError as error:
                errors = (str(error),) * len(keys)
            for key, problem in zip(keys, errors, strict=True):
                catalog.event(now, "warning" if problem else "info", service.name, region,
                              f"could not remove the unverified copy of {key}: {problem}"
                              if problem else f"removed the unverified copy of {key}")
        if stop is not None:
            _pause(catalog, service, region, stop, now, by_id, outcome)
            return
    for item_id, reason in sorted(copier.given_up.items()):
        catalog.set_item_status(service.name, region, item_id, ItemStatus.FAILED, now, reason)
        catalog.event(now, "error", service.name, region, f"{item_id} not published: {reason}")
        outcome.failed.append(item_id)


def _with_status(item: ItemRow, status: ItemStatus) -> ItemRow:
    return ItemRow(item.service, item.region, item.item_id, item.kind, item.stream, item.seq,
                   item.start_time, item.end_time, item.size, item.object_count, status,
                   item.reason, item.completed_at, item.available_at, item.lag_seconds)


def _pause(catalog: Catalog, service: Service, region: str, reason: str, now: datetime,
           unfinished: dict[str, ItemRow], outcome: PassOutcome) -> None:
    if reason.startswith(f"{service.region} "):
        outcome.primary_error = reason  # the primary is down: nothing to pause here
        catalog.event(now, "error", service.name, service.region, reason)
        return
    location = catalog.location(service.name, region)
    role = location.role if location else RegionRole.SECONDARY
    catalog.set_location(service.name, region, role, RegionState.PAUSED, now, reason)
    for item_id in sorted(unfinished):
        catalog.set_item_status(service.name, region, item_id, ItemStatus.PAUSED, now, reason)
    catalog.event(now, "error", service.name, region, f"replication paused: {reason}")
    outcome.paused[region] = reason


def replication_pass(catalog: Catalog, layout: BackupLayout, service: Service,
                     settings: ReplicationSettings, retention: RetentionPolicy | None = None,
                     *, full_listing: bool = False) -> Generator[Effect, Any, PassOutcome]:
    """One pass for one service: discover, copy to every active destination, retire the
    previous region once the new one has a window of its own (rule 8), and apply the
    retention policy in the additional region. The primary is listed in full when
    ``full_listing`` or when a full listing is due, else incrementally."""
    outcome = PassOutcome(service.name)
    # The previous region first: it only needs what is new, while a freshly changed secondary
    # may be backfilling for a long time; serving it second keeps protection continuous.
    # A stopped destination is one whose copies are being deleted (disable --delete).
    destinations = sorted(
        (loc for loc in catalog.locations(service.name,
                                          roles=[RegionRole.SECONDARY, RegionRole.PREVIOUS])
         if loc.state != RegionState.STOPPED),
        key=lambda loc: (loc.role != RegionRole.PREVIOUS, loc.since, loc.region))
    if not destinations:
        return outcome
    now: datetime = yield Now()
    full = full_listing or full_listing_due(catalog, layout, service, now,
                                                   settings.full_listing_interval)
    try:
        outcome.discovered = yield from discover_primary(catalog, layout, service, settings,
                                                         full=full)
    except (StorageError, CorruptBackup) as error:
        now = yield Now()
        outcome.primary_error = str(error)
        catalog.event(now, "error", service.name, service.region,
                      f"cannot list the primary: {error}")
        return outcome
    for location in destinations:
        yield from copy_to_region(catalog, service, location.region, settings, outcome,
                                  full=full)
        if outcome.primary_error:
            return outcome
    yield from retire_previous(catalog, service)
    if retention is not None and full:
        # Retention must never delete the only copy of a point in time, so it judges only
        # on a full listing: an incremental one cannot see what left the primary.
        for location in destinations:
            if location.role == RegionRole.SECONDARY:
                outcome.retired += yield from apply_retention(catalog, service,
                                                              location.region, retention)
    return outcome


def retire_previous(catalog: Catalog, service: Service) -> Generator[Effect, Any, None]:
    """Rule 8: the previous region keeps replicating until the new one can restore; then its
    copies are retained (kept, no longer updated)."""
    secondaries = catalog.locations(service.name, roles=[RegionRole.SECONDARY])
    previous = catalog.locations(service.name, roles=[RegionRole.PREVIOUS])
    if not secondaries or not previous:
        return
    new = window_from_catalog(catalog, service.name, secondaries[0].region,
                              RegionRole.SECONDARY)
    if new.end is None:
        return
    now: datetime = yield Now()
    for old in previous:
        catalog.set_location(service.name, old.region, RegionRole.RETAINED, RegionState.STOPPED,
                             now, f"replaced by {secondaries[0].region}")
        catalog.retain_region(service.name, old.region, now)
        catalog.event(now, "info", service.name, old.region,
                      f"{secondaries[0].region} can restore now; copies here are retained")

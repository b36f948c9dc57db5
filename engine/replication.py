"""Replication decisions, sans I/O: discovering a primary's complete items, verifying a copy,
retiring the previous region. engine.scheduler puts them to work: it copies what a destination
lacks (payload first, completion marker last) and publishes an item only when all of its
objects verified.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.catalog import Catalog, LocationRow
from engine.effects import (
    CopyResult,
    Effect,
    Now,
    ReadObject,
)
from engine.errors import CorruptBackup, InvalidKey
from engine.formats.base import (
    BackupLayout,
    BackupMarker,
    Discovery,
    ListedPayload,
)
from engine.listing import FullListingMemo, advance_cursors, list_primary, list_under
from engine.model import (
    BackupItem,
    Digest,
    ItemStatus,
    ObjectInfo,
    RegionRole,
    RegionState,
    Service,
)
from engine.replication_settings import ReplicationSettings as ReplicationSettings
from engine.storage.base import validate_key
from engine.windows import window_from_catalog


@dataclass
class PassOutcome:
    """What one listing cycle of a service (or a whole `sync --once`) did."""

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
    #: an unexpected failure (a bug) that ended the cycle early: one line, and its traceback
    unexpected: str = ""
    unexpected_detail: str = ""


def verify(result: CopyResult, expected_sha256: str | None) -> tuple[bool, str]:
    """Is the copy proven byte-identical to what the primary recorded? And how. An object
    whose layout records no SHA-256 is proven by the digest it records, or, recording none,
    by a digest of the source's own bytes equal to the copy's (engine.transfer)."""
    if not result.ok:
        return False, ""
    if expected_sha256 is None:
        return _verify_unrecorded(result)
    if result.sha256 is not None:
        if result.sha256 == expected_sha256:
            return True, result.verified_by or "sha256"
        return False, f"sha256 {result.sha256} != recorded {expected_sha256}"
    # A provider checksum equal to the source's is not enough: the source itself may not hold
    # what the primary recorded. Only the recorded SHA-256 publishes.
    return False, "nothing proved the copy holds the recorded SHA-256"


def _verify_unrecorded(result: CopyResult) -> tuple[bool, str]:
    expected = result.task.digest
    if expected is not None:
        found = next((d for d in result.digests if d.algorithm == expected.algorithm), None)
        if found is None and expected.algorithm == "sha256" and result.sha256 is not None:
            found = Digest("sha256", result.sha256)
        if found == expected:
            return True, result.verified_by or expected.algorithm
        if found is None:
            return False, f"nothing proved the copy holds the recorded {expected}"
        return False, f"{found} != recorded {expected}"
    if result.identical_to_source and result.verified_by:
        return True, result.verified_by
    return False, "nothing compared the copy with the source's bytes"


def established(result: CopyResult) -> tuple[str | None, str]:
    """What a verified copy of an object without a recorded SHA-256 tells the catalog of
    its bytes (see CopyRecord): the SHA-256 when it was computed, and the recorded digest or
    else the copy's best other digest, for later downloads to verify against."""
    if result.task.sha256 is not None or not result.ok:
        return None, ""
    best = result.task.digest or (result.digests[0] if result.digests else None)
    return result.sha256, str(best) if best is not None else ""


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
        if not 0 <= ref.size < _INT64 \
                or (ref.sha256 is not None and not _SHA256.match(ref.sha256)):
            raise CorruptBackup(marker.key, f"object {ref.key!r} has an impossible size or "
                                            "SHA-256")
    if not -_INT64 < item.seq < _INT64:
        raise CorruptBackup(marker.key, "its sequence number is out of range")
    return item


def discover_primary(catalog: Catalog, layout: BackupLayout, service: Service,
                     settings: ReplicationSettings, *, full: bool,
                     on_mirrored: Callable[[str, Sequence[ObjectInfo] | None], None]
                     | None = None,
                     memo: FullListingMemo | None = None) -> Generator[Effect, Any, int]:
    """Record the primary's complete items that the catalog does not know yet (rule 3: an item
    exists for btar only once its completion marker does). A ``full`` listing also notices
    items gone from the primary; otherwise only what is new is listed (engine.listing).
    ``on_mirrored`` hears the files a full listing shows that the layout mirrors, or None
    when an incremental one found that the tool rewrote them (engine.mirror); ``memo``: the
    service's last full listing (engine.listing). Returns how many items were new."""
    listing = yield from list_primary(catalog, layout, service, full=full,
                                      page_size=settings.list_page_size, memo=memo)
    # A full listing reads every known id once (the layout need not describe those again)
    # and the statuses _reconcile judges (the rows this pass adds are available and present,
    # so they change neither of its sets).
    judged = _judged(catalog, service, memo) if listing.full else None
    try:
        if judged is not None and layout.sorts_keys_alone:
            found = Discovery.joined([run.discovery(layout, judged[0]) for run in listing.runs])
        else:
            found = layout.discover(listing.objects, judged[0] if judged else frozenset())
        marker_ids = {marker.key: layout.item_id_of_marker(marker.key)
                      for marker in found.markers}
        announced = {} if listing.full else \
            {key: layout.item_id_of_marker(key) for key in found.announced}
    except Exception as error:  # a reader's bug on a hostile listing must not crash the pass
        detail = " ".join(str(error).split())[:200]
        raise CorruptBackup(f"{service.key_prefix}/", f"the listing cannot be read as the "
                            f"{layout.name} layout ({type(error).__name__}: {detail})") \
            from None
    if on_mirrored is not None and listing.full:
        on_mirrored(service.name, found.mirrored)
    present = {segment.item_id for segment in found.segments} | set(marker_ids.values())
    present.update(found.known_segments)
    known: AbstractSet[str] = judged[0] if judged is not None \
        else catalog.known_among(service.name, service.region,
                                 present | set(announced.values()))
    markers = list(found.markers)
    markers += yield from _look_up_announced(service, settings, announced, known, on_mirrored)
    marker_ids.update(announced)
    now: datetime = yield Now()
    fresh = [segment for segment in found.segments if segment.item_id not in known]
    added = [segment.item_id for segment in fresh]
    with catalog.transaction():
        new = catalog.add_items(
            service.name, service.region, ((segment, segment.completed_at) for segment in fresh),
            ItemStatus.AVAILABLE, now, unknown=True)
        if judged is not None:
            _reconcile(catalog, service, present, *judged, now)
    unknown = [marker for marker in markers if marker_ids[marker.key] not in known]
    # (an isinstance check against a Protocol is slow: only when there is something to read)
    payload_of = layout.payload_prefixes if unknown and isinstance(layout, ListedPayload) \
        else None
    for marker in unknown:
        data: bytes = yield ReadObject(service.region, _full(service, marker.key))
        if payload_of is not None:
            marker = yield from _with_payload(payload_of, service, settings, marker, data)
        try:
            item = read_marker(layout, service, marker, data)
        except CorruptBackup as error:
            catalog.event(now, "error", service.name, service.region, str(error))
            continue
        new += catalog.add_items(service.name, service.region, [(item, item.completed_at)],
                                 ItemStatus.AVAILABLE, now)
        added.append(item.item_id)
    if memo is not None and memo.known is not None:
        if catalog.in_transaction:
            memo.known = None  # what an enclosing transaction may roll back is never kept
        else:
            memo.known.update(added)  # (those of another region: _judged reads them again)
    advance_cursors(catalog, layout, service, listing, now, settings.listing_settle)
    return new


def _judged(catalog: Catalog, service: Service,
            memo: FullListingMemo | None) -> tuple[set[str], dict[str, str]]:
    """What a full listing judges: every item id of the primary, and the status of those not
    available. The ids are the one read of a full listing that grows with the history, so
    the service's memo keeps them, told of what each pass adds (discover_primary), and they
    are read again unless nothing else can have changed them: no other connection wrote the
    catalog (data_version), this one deleted no item row, and the count of the primary's
    items is the kept set's size. (Kept ids were all inserted and none deleted since, so
    with the counts equal the sets are equal. A kept id whose row is gone would hide its
    segment from this listing, and from replication.)"""
    name, region = service.name, service.region
    if memo is None or catalog.in_transaction:
        return catalog.listed_statuses(name, region)
    at = (region, catalog.data_version(), catalog.item_deletions)
    known = memo.known
    if known is not None and memo.known_at == at and \
            catalog.item_count(name, region) == len(known):
        return known, catalog.unavailable_statuses(name, region)
    known, others = catalog.listed_statuses(name, region)
    memo.known, memo.known_at = known, at
    return known, others


def _look_up_announced(service: Service, settings: ReplicationSettings,
                       announced: dict[str, str], known: AbstractSet[str],
                       on_mirrored: Callable[[str, Sequence[ObjectInfo] | None], None] | None,
                       ) -> Generator[Effect, Any, list[ObjectInfo]]:
    """The listing entries of the announced markers of new items (Discovery.announced). A new
    backup also rewrote the files its tool keeps in place: the mirror hears that they must
    be listed again (else it would wait for the next full listing)."""
    wanted = [key for key, item_id in announced.items() if item_id not in known]
    entries = []
    for key in wanted:
        listed = yield from list_under(service, key, settings.list_page_size)
        entries += [entry for entry in listed if entry.key == key]  # gone: expired since
    if wanted and on_mirrored is not None:
        on_mirrored(service.name, None)
    return entries


def _with_payload(payload_of: Callable[[str, bytes], tuple[str, ...]], service: Service,
                  settings: ReplicationSettings, marker: ObjectInfo,
                  data: bytes) -> Generator[Effect, Any, ObjectInfo]:
    """The marker with the objects the listings its bytes point to show (ListedPayload),
    whichever listing found it: an item is the same whether a full or an incremental listing
    found it first."""
    try:
        prefixes = payload_of(marker.key, data)
    except Exception:  # a reader's bug on hostile bytes: parse_marker reports the marker
        prefixes = ()
    if not prefixes:
        return marker
    listed: list[ObjectInfo] = []
    for prefix in prefixes:
        listed += yield from list_under(service, prefix, settings.list_page_size)
    return BackupMarker.of(marker, listed)


def _reconcile(catalog: Catalog, service: Service, present: set[str], known: set[str],
               others: dict[str, str], now: datetime) -> None:
    """After a full listing: what the primary no longer holds stops counting, and what a
    listing missed once and shows again counts again (``known``: every item id before the
    listing's new items were added; ``others``: the status of those not available)."""
    for item_id in sorted(known - present - others.keys()):
        # Gone from the primary (its retention ran out): no longer a source or a cover.
        catalog.set_item_status(service.name, service.region, item_id,
                                ItemStatus.FAILED, now, "no longer in the primary")
    # Those failed just above are not present: only the ones failed before can be listed again.
    again = sorted(item_id for item_id in others.keys() & present
                   if others[item_id] == ItemStatus.FAILED)
    for item_id in again:
        # Listed again: a listing that missed it once (eventual consistency, a flaky
        # page) must not drop it from replication for good.
        catalog.set_item_status(service.name, service.region, item_id,
                                ItemStatus.AVAILABLE, now)
        catalog.event(now, "info", service.name, service.region,
                      f"{item_id} is listed in the primary again")
    if again:  # the destinations that lack them queue them as new (add_missing)
        catalog.recheck_copies(service.name, service.region, again)


def retire_previous(catalog: Catalog,
                    service: Service) -> Generator[Effect, Any, list[LocationRow] | None]:
    """Rule 8: the previous region keeps replicating until the new one can restore; then its
    copies are retained (kept, no longer updated). Returns the secondary and previous
    locations it read when it changed none of them (the scheduler matches its queues to
    them), else None."""
    rows = catalog.locations(service.name, roles=[RegionRole.SECONDARY, RegionRole.PREVIOUS])
    secondaries = [row for row in rows if row.role == RegionRole.SECONDARY]
    previous = [row for row in rows if row.role == RegionRole.PREVIOUS]
    if not secondaries or not previous:
        return rows
    new = window_from_catalog(catalog, service.name, secondaries[0].region,
                              RegionRole.SECONDARY)
    if new.end is None:
        return rows
    now: datetime = yield Now()
    for old in previous:
        catalog.set_location(service.name, old.region, RegionRole.RETAINED, RegionState.STOPPED,
                             now, f"replaced by {secondaries[0].region}")
        catalog.retain_region(service.name, old.region, now)
        catalog.event(now, "info", service.name, old.region,
                      f"{secondaries[0].region} can restore now; copies here are retained")
    return None

"""Listing a service's primary: in full now and then, incrementally in between.

A full listing reads every key under the service prefix. In between, each listing area the
layout names (native: ``base/``, ``log/`` and ``log/<stream>/``) is listed only after its
cursor: the greatest key that is *settled*, meaning nothing new can still appear before it. A
log segment is settled when its predecessor in its stream is known (archivers upload in
parallel, so segment 6 may land before segment 5) or when it is the first of its stream (seq 1,
or where its history says it branches off); a full listing also settles segments after
a gap once they are older than ``listing_settle`` seconds, and any other key settles at that
age. Whatever still slips behind a cursor (an upload slower than that, a backup id or a new
stream that sorts before the existing ones) is found by the next full listing, which also
notices objects gone from the primary. A no-op pass therefore costs one
short request per area, whatever the size of the history, and one for a stream's area and
``log/`` together while ``log/``'s cursor is not held back behind that stream's.

This is sans I/O like engine.replication: it yields ListPage effects.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter, is_, itemgetter
from typing import Any

from engine.catalog import Catalog
from engine.effects import Effect, ListPage
from engine.formats.base import BackupLayout, Discovery
from engine.model import ObjectInfo, Service
from engine.storage.base import ListPage as ListPageResult

_KEY = attrgetter("key")
_MODIFIED = attrgetter("last_modified")
_AREAS = itemgetter(0)
#: where a stream without a history item starts (native segments and binlogs count from 1)
FIRST_SEQ = 1


@dataclass(frozen=True)
class PrimaryListing:
    """What a pass saw of the primary: keys relative to the service prefix, in key order."""

    objects: tuple[ObjectInfo, ...]
    #: True when every key was listed (so absence means gone)
    full: bool
    #: the cursors it listed after (empty for a full listing)
    cursors: dict[str, str]
    #: each listing area's keys in key order, when the listing worked them out already
    members: dict[str, list[ObjectInfo]] | None = None
    #: a full listing's runs of keys, end to end
    runs: tuple[ListedRun, ...] = ()


#: keys per unit of a full listing's reuse: a page is compared in runs of this many keys, so
#: that keys added at its end leave the runs before them reused
_RUN = 64


@dataclass(slots=True)
class ListedRun:
    """A run of keys of a full listing, worked out: as the storage listed them, relative to
    the service prefix, each listing area's share of them, and what the layout found in
    them."""

    listed: tuple[ObjectInfo, ...]
    objects: tuple[ObjectInfo, ...]
    members: dict[str, list[ObjectInfo]]
    #: the latest time of its keys
    newest: datetime
    found: Discovery | None = None
    found_by: BackupLayout | None = None

    def discovery(self, layout: BackupLayout, known: set[str]) -> Discovery:
        """``layout.discover`` of the run, found again only when the run is new or a segment
        it named as known no longer is. (A segment it described as new that is known now is
        left so: the caller adds only what it does not know.)"""
        found = self.found
        if found is None or self.found_by is not layout or \
                not known.issuperset(found.known_segments):
            found = self.found = layout.discover(self.objects, known)
            self.found_by = layout
        return found


class FullListingMemo:
    """A service's last full listing, worked out, for the next one to reuse where the storage
    hands out the very ObjectInfos it did then (``ListPage.stable_infos``). A full listing
    reads every key of the history, so without it each costs as much as the history is long
    and a run's listings cost the square of its length; with it, only the runs of keys that
    changed (the last, mostly) are worked out again. Of the catalog it keeps which segments
    a run's discovery took as known, checked again at every reuse (ListedRun.discovery),
    and the primary's item ids, checked at every full listing against what could have
    changed them (engine.replication._judged): it is right whatever the catalog does in
    between."""

    def __init__(self) -> None:
        #: the runs of the last full listing, each by the id of the ObjectInfo it starts
        #: with: found again wherever that key now sits, so that keys added before it (a
        #: new base sorts before every segment) leave it reused. The run holds that
        #: ObjectInfo, so no other object can have its id while the run is kept.
        self.runs: dict[int, ListedRun] = {}
        #: the primary's item ids as this connection last read them and added to them since
        #: (None: read them at the next full listing), and what they were read against:
        #: the region, the catalog's data_version and its count of item deletions
        #: (engine.replication._judged)
        self.known: set[str] | None = None
        self.known_at: tuple[str, int, int] = ("", -1, -1)


def list_all(region: str, prefix: str, page_size: int,
             start_after: str | None = None) -> Generator[Effect, Any, list[ObjectInfo]]:
    """Every object under ``prefix`` in ``region`` after ``start_after``, following pages."""
    found: list[ObjectInfo] = []
    cursor = start_after
    while True:
        page: ListPageResult = yield ListPage(region, prefix, cursor, page_size)
        found.extend(page.objects)
        if page.next_start_after is None:
            return found
        cursor = page.next_start_after


def list_under(service: Service, prefix: str,
               page_size: int) -> Generator[Effect, Any, list[ObjectInfo]]:
    """Every object of the service's primary under ``prefix``, both relative to the service
    prefix (what a layout names for a marker's payload or its mirrored files)."""
    cut = len(service.key_prefix) + 1
    return [ObjectInfo(info.key[cut:], info.size, info.last_modified, None, info.digests)
            for info in (yield from list_all(service.region, f"{service.key_prefix}/{prefix}",
                                             page_size))]


def full_listing_due(catalog: Catalog, layout: BackupLayout, service: Service,
                     now: datetime, interval: float) -> bool:
    """Must this pass list the primary in full?"""
    last = catalog.last_full_listing(service.name)
    if last is None or interval <= 0 or not layout.root_areas:
        return True
    return (now - last).total_seconds() >= interval


def _cursors(catalog: Catalog, layout: BackupLayout, service: Service) -> dict[str, str]:
    return dict.fromkeys(layout.root_areas, "") | catalog.listing_cursors(service.name)


def _covered(area: str, cursor: str, cursors: dict[str, str]) -> bool:
    """Does an area that holds ``area`` list every key of it after ``cursor``? Then ``area``
    costs no request of its own: with one stream, ``log/`` and ``log/<stream>/`` stand at the
    same key, and one listing serves both. (Every key of an area sorts after its name.)"""
    start = cursor or area
    return any(outer != area and area.startswith(outer) and start >= outer_cursor
               for outer, outer_cursor in cursors.items())


def list_primary(catalog: Catalog, layout: BackupLayout, service: Service, *, full: bool,
                 page_size: int, memo: FullListingMemo | None = None,
                 ) -> Generator[Effect, Any, PrimaryListing]:
    """List the primary in full, or each listing area after its cursor. ``memo``: the
    service's last full listing, which a full one reuses and replaces."""
    prefix = f"{service.key_prefix}/"
    if full:
        return (yield from _list_in_full(layout, service, prefix, page_size,
                                         memo or FullListingMemo()))
    cursors = _cursors(catalog, layout, service)
    ranges = [(prefix + area, prefix + cursor if cursor else None)
              for area, cursor in sorted(cursors.items()) if not _covered(area, cursor, cursors)]
    # Keys relative to the service prefix, page by page.
    # Areas nest (log/ holds log/<stream>/): a key listed twice is one object.
    found: dict[str, ObjectInfo] = {}
    cut = len(prefix)
    for area, start_after in ranges:
        cursor = start_after
        while True:
            page: ListPageResult = yield ListPage(service.region, area, cursor, page_size)
            for info in page.objects:
                key = info.key[cut:]
                found[key] = ObjectInfo(key, info.size, info.last_modified, None, info.digests)
            if page.next_start_after is None:
                break
            cursor = page.next_start_after
    return PrimaryListing(tuple(found[key] for key in sorted(found)), False, cursors)


def _list_in_full(layout: BackupLayout, service: Service, prefix: str, page_size: int,
                  memo: FullListingMemo) -> Generator[Effect, Any, PrimaryListing]:
    """Every key under ``prefix``, page by page (a full listing can be millions of keys),
    each run of keys worked out once until it changes (FullListingMemo)."""
    cut = len(prefix)
    kept: dict[int, ListedRun] = {}
    runs: list[ListedRun] = []
    cursor = None
    while True:
        page: ListPageResult = yield ListPage(service.region, prefix, cursor, page_size)
        if page.stable_infos:
            page_runs = _runs_of(layout, page.objects, cut, memo.runs)
            kept.update((id(run.listed[0]), run) for run in page_runs)
            runs += page_runs
        elif page.objects:  # a page that cannot be reused is one run: smaller ones would cost
            runs.append(_run_of(layout, page.objects, cut))
        if page.next_start_after is None:
            break
        cursor = page.next_start_after
    memo.runs = kept
    members: dict[str, list[ObjectInfo]] = {}
    for run in runs:
        for area, infos in run.members.items():
            members.setdefault(area, []).extend(infos)
    return PrimaryListing(tuple(itertools.chain.from_iterable(r.objects for r in runs)),
                          True, {}, members, tuple(runs))


def _runs_of(layout: BackupLayout, listed: Sequence[ObjectInfo], cut: int,
             before: dict[int, ListedRun]) -> list[ListedRun]:
    """A page's keys end to end in runs: the last listing's where the very same keys follow
    one another, new runs of at most ``_RUN`` keys for the rest, each ending where a kept
    run starts. A kept run shorter than ``_RUN`` followed by new keys (the history's last:
    segments are added after it) is worked out again with them, so that runs stay long."""
    runs: list[ListedRun] = []
    count, at = len(listed), 0
    while at < count:
        run = before.get(id(listed[at]))
        if run is not None:
            end = at + len(run.listed)
            if end <= count and all(map(is_, listed[at:end], run.listed)) and (
                    end == count or len(run.listed) >= _RUN or id(listed[end]) in before):
                runs.append(run)
                at = end
                continue
        end, limit = at + 1, min(count, at + _RUN)
        while end < limit and id(listed[end]) not in before:
            end += 1
        runs.append(_run_of(layout, listed[at:end], cut))
        at = end
    return runs


def _run_of(layout: BackupLayout, listed: Sequence[ObjectInfo], cut: int) -> ListedRun:
    objects = tuple(ObjectInfo(info.key[cut:], info.size, info.last_modified, None,
                               info.digests) for info in listed)
    return ListedRun(tuple(listed), objects, _members_by_area(layout, objects),
                     max(map(_MODIFIED, listed)))


def advance_cursors(catalog: Catalog, layout: BackupLayout, service: Service,
                    listing: PrimaryListing, now: datetime, settle: float) -> None:
    """Move each area's cursor over the keys of ``listing`` that are settled, stopping at the
    first that is not; call it once the listing's items are in the catalog."""
    settled_before = now - timedelta(seconds=settle)
    known = _KnownSegments(catalog, service)
    cursors: dict[str, str] = {}
    by_area = listing.members if listing.members is not None else \
        _members_by_area(layout, listing.objects)
    young = _young_keys(listing, settled_before) if listing.full else None
    for area, members in by_area.items():
        stored = listing.cursors.get(area)
        cursor = _walk(layout, members, stored or "", young=young,
                       settled_before=settled_before, known=known)
        if cursor != stored:
            cursors[area] = cursor
    if listing.full:
        catalog.save_listing_cursors(service.name, cursors, full_at=now)
    elif cursors:
        catalog.save_listing_cursors(service.name, cursors, full_at=None)


def _members_by_area(layout: BackupLayout,
                     objects: Sequence[ObjectInfo]) -> dict[str, list[ObjectInfo]]:
    """Each listing area's keys, in key order. Neighbouring keys mostly share their areas, so
    they are grouped in runs (a full listing has a key per segment of the whole history)."""
    members: dict[str, list[ObjectInfo]] = {}
    areas_of = map(layout.listing_areas, map(_KEY, objects))
    runs = itertools.groupby(zip(areas_of, objects, strict=True), key=_AREAS)
    for areas, run in runs:
        if areas:
            infos = [info for _, info in run]
            for area in areas:
                members.setdefault(area, []).extend(infos)
    return members


def _young_keys(listing: PrimaryListing, settled_before: datetime) -> list[str]:
    """The keys of a full listing younger than the settling time, in key order: those of
    the runs that hold any (a full listing holds every segment of the history; a few are
    young)."""
    if not listing.runs:
        return [info.key for info in listing.objects if info.last_modified > settled_before]
    return [info.key for run in listing.runs if run.newest > settled_before
            for info in run.objects if info.last_modified > settled_before]


def _walk(layout: BackupLayout, members: list[ObjectInfo], cursor: str, *,
          young: Sequence[str] | None, settled_before: datetime,
          known: _KnownSegments) -> str:
    """The greatest key of an area after ``cursor`` up to which every key is settled (or
    ``cursor`` when the first is not). ``young``: in a full listing, where every key older
    than the settling time is settled, the keys younger than it, the only ones judged one
    by one (None in an incremental listing)."""
    start = bisect.bisect_right(members, cursor, key=_KEY)
    if start == len(members):
        return cursor
    candidates: Iterable[int] = range(start, len(members))
    if young is not None:
        candidates = _positions(members, young, start)
    for index in candidates:
        info = members[index]
        position = layout.log_position(info.key)
        old = info.last_modified <= settled_before
        if position is None:
            settled = old
        else:
            # A segment settles once its predecessor is known (the key just before in this
            # listing, or the catalog), or when it starts its stream. A gap is passed only
            # by a full listing (which does not judge old keys) and only once old, so a
            # segment that never comes holds no cursor for long.
            stream, seq = position
            previous = layout.log_position(members[index - 1].key) if index > start else None
            settled = previous == (stream, seq - 1) \
                or seq == known.start(stream) or known.has(stream, seq - 1)
        if not settled:
            return members[index - 1].key if index > start else cursor
    return members[-1].key


def _positions(members: list[ObjectInfo], keys: Sequence[str], start: int) -> list[int]:
    """Where each of ``keys`` (in key order) is among ``members`` from ``start``, for those
    that are there."""
    found = []
    for key in keys:
        index = bisect.bisect_left(members, key, lo=start, key=_KEY)
        if index < len(members) and members[index].key == key:
            found.append(index)
    return found


class _KnownSegments:
    """What the catalog says of a service's streams, each asked once per walk (nothing
    writes the catalog while it runs)."""

    def __init__(self, catalog: Catalog, service: Service) -> None:
        self.catalog, self.service = catalog, service
        self.starts: dict[str, int] = {}
        self.held: dict[tuple[str, int], bool] = {}

    def start(self, stream: str) -> int:
        """Where ``stream`` starts (where its history says it branches off, else 1)."""
        if stream not in self.starts:
            self.starts[stream] = self.catalog.stream_start(
                self.service.name, self.service.region, stream) or FIRST_SEQ
        return self.starts[stream]

    def has(self, stream: str, seq: int) -> bool:
        """Is that segment in the catalog?"""
        if (stream, seq) not in self.held:
            self.held[(stream, seq)] = self.catalog.has_log_segment(
                self.service.name, self.service.region, stream, seq)
        return self.held[(stream, seq)]

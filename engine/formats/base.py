"""What a backup layout reader must tell the engine."""

from __future__ import annotations

import itertools
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from engine.model import BackupItem, ObjectInfo


@dataclass(frozen=True, slots=True)
class BackupMarker(ObjectInfo):
    """A completion marker's listing entry plus the objects listed under the prefixes it
    points to (ListedPayload: its folder, and companions elsewhere). A marker that names none
    of its files (Barman's backup.info), or whose files' digests come partly from a listing
    (pgBackRest's bundles), can only be described with those listings, and parse_marker sees
    only the marker: so the entries travel with it."""

    payload: tuple[ObjectInfo, ...] = ()

    @classmethod
    def of(cls, entry: ObjectInfo, payload: Iterable[ObjectInfo]) -> BackupMarker:
        return cls(entry.key, entry.size, entry.last_modified, entry.sha256, entry.digests,
                   entry.meta, payload=tuple(sorted(payload, key=lambda o: o.key)))


@dataclass(frozen=True)
class Discovery:
    """What a listing of one service's prefix shows.

    ``markers`` are completion markers whose content must be read to describe their backup;
    ``segments`` are log segments fully described by their listing entry.
    """

    markers: tuple[ObjectInfo, ...]
    segments: tuple[BackupItem, ...]
    #: listed files the backup tool rewrites in place, which a destination must hold as the
    #: primary does (see MirroredFiles); never items
    mirrored: tuple[ObjectInfo, ...] = ()
    #: ids of listed log segments left out of ``segments`` because the caller knows them
    known_segments: tuple[str, ...] = ()
    #: keys of completion markers that a listed key says exist, where the listing may not
    #: show them (pgBackRest's kept manifest is written after its backup's manifest, in an
    #: area an incremental listing reads; the backup's folder is in none). An incremental
    #: listing looks up those of new items; a full one shows every marker there is.
    announced: tuple[str, ...] = ()

    @classmethod
    def joined(cls, parts: Sequence[Discovery]) -> Discovery:
        """The discoveries of consecutive runs of a listing, end to end (see
        BackupLayout.sorts_keys_alone)."""
        chain = itertools.chain.from_iterable
        return cls(tuple(chain(p.markers for p in parts)), tuple(chain(p.segments for p in parts)),
                   tuple(chain(p.mirrored for p in parts)),
                   tuple(chain(p.known_segments for p in parts)),
                   tuple(chain(p.announced for p in parts)))


class BackupLayout(Protocol):
    name: str
    #: listing areas that always exist, even before anything is written in them; () for a
    #: layout that is listed in full every pass (see engine.listing)
    root_areas: tuple[str, ...]
    #: discover sorts each key on its own (what a key is depends on that key and ``known``
    #: alone): the discovery of a listing is then the discoveries of its runs of keys end
    #: to end, and a full listing reuses those of the runs that did not change
    sorts_keys_alone: bool

    def discover(self, objects: Iterable[ObjectInfo],
                 known: Container[str] = frozenset()) -> Discovery:
        """Sort a listing (keys relative to the service prefix) into complete items. A log
        segment whose id is in ``known`` may be named in ``known_segments`` instead of being
        described (a full listing sees every segment again, and describing one costs more
        than naming it)."""
        ...

    def item_id_of_marker(self, key: str) -> str:
        """The item id a completion marker stands for, without reading it."""
        ...

    def parse_marker(self, marker: ObjectInfo, data: bytes) -> BackupItem:
        """Describe a complete base backup from its completion marker's bytes."""
        ...

    def listing_areas(self, key: str) -> tuple[str, ...]:
        """The incremental listing areas ``key`` belongs to: prefixes (relative to the service
        prefix) under which new keys sort after the ones already written. A layout without
        such areas answers () and is listed in full every pass (see engine.listing)."""
        ...

    def log_position(self, key: str) -> tuple[str, int] | None:
        """(stream, seq) when ``key`` is a log segment named by its position, else None."""
        ...


@runtime_checkable
class MirroredFiles(Protocol):
    """A layout whose tool keeps files it rewrites in place beside its backups (pgBackRest's
    backup.info and archive.info), without which the tool cannot read a copy on its own. They
    are not items (an item's objects never change); engine.mirror copies each current
    version, once the destination holds everything that version names."""

    def mirrored_files(self, objects: Iterable[ObjectInfo]) -> tuple[ObjectInfo, ...]:
        """The listed files to mirror, in the order they must be written."""
        ...

    def mirrored_prefixes(self) -> tuple[str, ...]:
        """Prefixes whose listings show every file to mirror (relative to the service prefix):
        what a pass that found a new backup without a full listing lists, since the tool
        rewrote them then."""
        ...

    def mirror_blockers(self, key: str, data: bytes, published: Container[str]) -> tuple[str, ...]:
        """The item ids that file's bytes name and ``published`` (the items available in a
        destination) lacks: empty when those bytes may be written there. ValueError when the
        bytes cannot be read (they are then not written)."""
        ...


@runtime_checkable
class ListedPayload(Protocol):
    """A layout whose backup marker names its objects only in part (pgBackRest's manifest:
    bundles without sizes of their own, companions outside the backup's folder). Its payload
    is what listings show under the prefixes the marker's bytes point to: the engine lists
    them once it has read the marker, whichever listing found it, and hands the marker to
    parse_marker as a BackupMarker carrying those objects."""

    def payload_prefixes(self, key: str, data: bytes) -> tuple[str, ...]:
        """The prefixes (relative to the service prefix) to list for the payload of the
        marker ``key`` whose bytes are ``data``; () when the marker names its objects itself
        or cannot be read (parse_marker then says why)."""
        ...


@runtime_checkable
class WalFiles(Protocol):
    """A layout whose log segments are PostgreSQL WAL files as a tool stores them (named by
    their WAL file name, perhaps compressed): what `btar wal-fetch` needs to hand one to
    PostgreSQL's restore_command from a copy."""

    def wal_item_id(self, name: str) -> str:
        """The item id of the log segment a WAL file name (``00000001000000000000002A``)
        names; ValueError when it is no WAL file name."""
        ...

    def plain_wal(self, key: str, data: bytes) -> bytes:
        """The segment's own bytes from the stored object ``key`` (decompressed);
        ValueError when they cannot be had."""
        ...

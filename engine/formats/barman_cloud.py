"""Reader of what Barman Cloud (barman-cloud-backup, barman-cloud-wal-archive) writes
(docs/barman-cloud-layout.md).

A service's prefix is the URL path given to the barman-cloud commands (``s3://bucket/<prefix>``);
one server name is read::

    <server>/base/<backup_id>/backup.info                         a backup's metadata, uploaded last
    <server>/base/<backup_id>/data.tar[.gz|.bz2|.snappy]          PGDATA (``data_0001.tar`` ...)
    <server>/base/<backup_id>/<oid>.tar[...]                      one tablespace (and its parts)
    <server>/wals/<first 16 hex>/<24 hex>[.gz|.bz2|.snappy]       one WAL segment
    <server>/wals/<first 16 hex>/<24 hex>.<8 hex>.backup[...]     a backup history file
    <server>/wals/<8 hex>.history[...]                            a timeline history

Barman records no checksum of anything, so:

* ``backup.info`` is the completion marker of a backup: barman-cloud-backup uploads it after
  every tar file is closed, with ``status=DONE``. A backup that fails also gets one, with
  ``status=FAILED``: that one is refused (never copied). Its payload is every other object
  under the backup's folder, listed once backup.info is read (backup.info names none of them),
  with no SHA-256; a copy is verified against the source's bytes per backend (see
  docs/verification.md), or against the listing's own digest where the provider gives one;
* a WAL segment is its own completion marker, read once at discovery as for pgBackRest
  (engine.formats.wal, shared with engine.formats.pgbackrest): that gives its SHA-256 and the
  commit times inside it (the window);
* a ``.history`` file is a timeline history item; ``.backup`` and ``.partial`` files are not
  copied (recovery never asks for them).

Streams are timelines; ``seq`` is the WAL segment number (``log * 0x100 + seg``, 16 MiB
segments), the same numbering as the pgBackRest reader's.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import re
from collections.abc import Container, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.errors import CorruptBackup
from engine.formats.base import BackupMarker, Discovery
from engine.formats.pgbackrest import decompress
from engine.formats.wal import (
    history_item,
    log_item_id,
    segment_item,
    stored_extension,
    stream_position,
    wal_item_id,
    wal_position,
)
from engine.model import BackupItem, ItemKind, ObjectInfo, ObjectRef, listing_digest

#: barman's own pattern for a server name is free text; btar takes what is safe in a key
SERVER_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
DEFAULT_SERVER = "main"
#: what barman-cloud 3.4 writes: WAL compression by extension (``-z``, ``-j``, ``--snappy``)
_READABLE = ("", ".gz", ".bz2")
_COMPRESSIONS = r"(?P<ext>\.gz|\.bz2|\.snappy|\.xz|\.lz4|\.zst)?"
#: how many refused backup.info objects a reader remembers (a bound, not a tuning knob)
_REMEMBERED = 10_000
#: barman's backup ids (``20261206T140000``); backup names are not folder names
_BACKUP_ID = r"\d{8}T\d{6}"
#: a tar file of a backup: PGDATA (``data``) or a tablespace (its oid), a part number, compression
TAR_NAME = re.compile(
    r"^(?P<base>data|\d+)(?:_(?P<part>\d{4}))?\.tar(?P<ext>\.gz|\.bz2|\.snappy)?$")


# -- backup.info -------------------------------------------------------------------------------

@dataclass(frozen=True)
class BackupInfo:
    """What btar needs from a Barman backup.info."""

    backup_id: str
    status: str
    begin_time: datetime
    end_time: datetime
    begin_wal: str
    end_wal: str
    begin_xlog: str
    end_xlog: str
    timeline: int
    #: (name, oid, location) of each tablespace
    tablespaces: tuple[tuple[str, int, str], ...]
    systemid: str
    version: int
    snapshot: bool


def parse_info_file(text: str) -> dict[str, str | None]:
    """Barman's ``key=value`` files (barman/infofile.py): one field a line, ``None`` for unset,
    ``#`` comments."""
    fields: dict[str, str | None] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"line {number} is not key=value")
        value = value.strip()
        fields[key.strip()] = None if value == "None" else value
    return fields


def _time(fields: dict[str, str | None], key: str) -> datetime:
    text = fields.get(key)
    if not text:
        raise ValueError(f"no {key}")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        # Barman reads a naive time in the zone of the host that wrote it: unknown here.
        raise ValueError(f"{key} {text!r} names no time zone")
    return moment.astimezone(UTC)


def _tablespaces(text: str | None) -> tuple[tuple[str, int, str], ...]:
    if not text:
        return ()
    value: Any = ast.literal_eval(text)  # barman writes repr() of a list of tuples
    if not isinstance(value, list):
        raise ValueError("tablespaces is not a list")
    found: list[tuple[str, int, str]] = []
    for entry in value:
        if not isinstance(entry, tuple | list) or len(entry) < 3:
            raise ValueError(f"tablespace entry {entry!r} is not (name, oid, location)")
        found.append((str(entry[0]), int(entry[1]), str(entry[2])))
    return tuple(found)


def summarize_backup_info(backup_id: str, text: str) -> BackupInfo:
    try:
        fields = parse_info_file(text)
        begin_wal, end_wal = fields.get("begin_wal") or "", fields.get("end_wal") or ""
        wal_position(begin_wal)
        wal_position(end_wal)
        return BackupInfo(
            backup_id=backup_id, status=fields.get("status") or "",
            begin_time=_time(fields, "begin_time"), end_time=_time(fields, "end_time"),
            begin_wal=begin_wal, end_wal=end_wal,
            begin_xlog=fields.get("begin_xlog") or "", end_xlog=fields.get("end_xlog") or "",
            timeline=int(fields.get("timeline") or wal_position(begin_wal)[0]),
            tablespaces=_tablespaces(fields.get("tablespaces")),
            systemid=fields.get("systemid") or "", version=int(fields.get("version") or 0),
            snapshot=bool(fields.get("snapshots_info")))
    except (TypeError, ValueError, SyntaxError, OverflowError, MemoryError,
            RecursionError) as exc:
        raise ValueError(f"not a Barman backup.info: {exc}") from None


def consistent_from(end_time: datetime) -> datetime:
    """The first time a backup restores to. barman's end_time is ``now()`` of the statement
    that ran pg_backup_stop: the start of that statement, a few milliseconds before the stop
    point. A commit in between is stamped after end_time yet precedes the point where the
    backup becomes consistent, and PostgreSQL refuses a target before that point; the next
    whole second is what pgBackRest's own stop times also give."""
    whole = end_time.replace(microsecond=0)
    return whole if whole == end_time else whole + timedelta(seconds=1)


# -- the reader -------------------------------------------------------------------------------

class BarmanCloudLayout:
    """Reader of one server of a Barman Cloud prefix."""

    name = "barman-cloud"
    #: discovery groups keys (one object per segment: the first name in key order)
    sorts_keys_alone = False

    def __init__(self, server: str = DEFAULT_SERVER) -> None:
        if not re.fullmatch(SERVER_PATTERN, server):
            raise ValueError(f"{server!r} is not a server name btar can read")
        self.server = server
        s = re.escape(server)
        self._folder = re.compile(rf"^{s}/base/(?P<id>{_BACKUP_ID})/(?P<name>[^/]+)$")
        self._wal = re.compile(
            rf"^{s}/wals/(?P<dir>[0-9A-F]{{16}})/(?P<name>[0-9A-F]{{24}}){_COMPRESSIONS}$")
        self._history = re.compile(
            rf"^{s}/wals/(?P<timeline>[0-9A-F]{{8}})\.history{_COMPRESSIONS}$")
        self._info = re.compile(rf"^{s}/base/(?P<id>{_BACKUP_ID})/backup\.info$")
        # Listing areas (engine.listing): the WAL, written in the order of its names (a new
        # timeline's history and segments sort after the older timelines'), and the
        # backup.info of each backup, in the order of the backup ids (their start times).
        # A backup's tar files are in no area: a tablespace's (``<oid>.tar``) sort before
        # its backup.info; the engine lists the folder once backup.info is read.
        self._bases, self._wals = (f"{server}/base/",), (f"{server}/wals/",)
        self.root_areas: tuple[str, ...] = (*self._bases, *self._wals)
        #: backup.info objects (key, size, time) that recorded a status other than DONE.
        #: barman-cloud never rewrites one (a new backup gets a new id), so such a backup is
        #: refused once per process, not read and reported again on every pass.
        self._not_done: set[tuple[str, int, datetime]] = set()

    def for_server(self, server: str) -> BarmanCloudLayout:
        return self if server == self.server else _layout_for(server)

    def discover(self, objects: Iterable[ObjectInfo],
                 known: Container[str] = frozenset()) -> Discovery:
        infos: dict[str, ObjectInfo] = {}
        histories: dict[int, ObjectInfo] = {}
        wal: dict[tuple[int, int], ObjectInfo] = {}
        for info in objects:
            # WAL first, most of a listing: no key matches two of these patterns, so their
            # order changes nothing else
            if match := self._wal.match(info.key):
                try:
                    position = wal_position(match["name"])
                except ValueError:
                    continue
                if match["dir"] == match["name"][:16]:
                    # one object per segment: the first name in key order (uncompressed
                    # before .bz2 before .gz), as barman-cloud-wal-restore's listing keeps one
                    wal.setdefault(position, info)
            elif match := self._folder.match(info.key):
                if match["name"] == "backup.info" and \
                        (info.key, info.size, info.last_modified) not in self._not_done:
                    infos[match["id"]] = info
            elif match := self._history.match(info.key):
                histories.setdefault(int(match["timeline"], 16), info)
        # backup.info names none of its files: its folder is listed once it is read
        # (payload_prefixes)
        markers = [infos[backup_id] for backup_id in sorted(infos)]
        return Discovery((*markers, *(histories[t] for t in sorted(histories)),
                          *(wal[p] for p in sorted(wal))), ())

    def listing_areas(self, key: str) -> tuple[str, ...]:
        if key.startswith(self._wals[0]):
            return self._wals
        if key.endswith("/backup.info") and key.startswith(self._bases[0]):
            return self._bases
        return ()

    def payload_prefixes(self, key: str, data: bytes) -> tuple[str, ...]:
        """A backup is every other object of its folder (backup.info names none)."""
        match = self._info.match(key)
        return (f"{self.server}/base/{match['id']}/",) if match else ()

    def log_position(self, key: str) -> tuple[str, int] | None:
        match = self._wal.match(key)
        return stream_position(match["name"]) if match else None

    def item_id_of_marker(self, key: str) -> str:
        if match := self._wal.match(key):  # most markers: a segment each
            with contextlib.suppress(ValueError):
                return log_item_id(*wal_position(match["name"]))
        elif match := self._info.match(key):
            return f"base/{match['id']}"
        elif match := self._history.match(key):
            return f"history/{int(match['timeline'], 16)}"
        raise CorruptBackup(key, f"not a marker of Barman server {self.server!r}")

    def parse_marker(self, marker: ObjectInfo, data: bytes) -> BackupItem:
        ref = ObjectRef(marker.key, len(data), hashlib.sha256(data).hexdigest())
        if match := self._info.match(marker.key):
            return self._parse_backup(marker, data, ref, match["id"])
        if match := self._history.match(marker.key):
            return self._parse_history(marker, data, ref, int(match["timeline"], 16),
                                       match["ext"] or "")
        if match := self._wal.match(marker.key):
            return self._parse_wal(marker, data, ref, match)
        raise CorruptBackup(marker.key, f"not a marker of Barman server {self.server!r}")

    def _parse_backup(self, marker: ObjectInfo, data: bytes, ref: ObjectRef,
                      backup_id: str) -> BackupItem:
        if not isinstance(marker, BackupMarker):
            raise CorruptBackup(marker.key, "a backup.info can only be read with the listing "
                                "of its backup's folder (payload_prefixes)")
        try:
            info = summarize_backup_info(backup_id, data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise CorruptBackup(marker.key, str(exc)) from None
        if info.status != "DONE":
            if len(self._not_done) < _REMEMBERED:
                self._not_done.add((marker.key, marker.size, marker.last_modified))
            raise CorruptBackup(marker.key, f"barman-cloud-backup recorded status "
                                f"{info.status or 'none'}: not a complete backup, not copied")
        if info.snapshot:
            raise CorruptBackup(marker.key, "a snapshot backup's data lives in disk snapshots, "
                                "which btar does not copy")
        if info.end_time < info.begin_time:
            raise CorruptBackup(marker.key, "end_time is before begin_time")
        # the folder's own files, as its listing shows them, but backup.info itself
        files = [o for o in marker.payload if o.key != marker.key and self._folder.match(o.key)]
        problem = missing_tar_files(files, info)
        if problem:
            raise CorruptBackup(marker.key, problem)
        timeline, segno = wal_position(info.begin_wal)
        payload = tuple(ObjectRef(o.key, o.size, None, listing_digest(o)) for o in files)
        return BackupItem(
            kind=ItemKind.BASE, item_id=f"base/{backup_id}", start_time=info.begin_time,
            end_time=consistent_from(info.end_time), stream=str(timeline), seq=segno,
            payload=payload, marker=ref, completed_at=marker.last_modified)

    def wal_item_id(self, name: str) -> str:
        return wal_item_id(name)

    def plain_wal(self, key: str, data: bytes) -> bytes:
        return _plain(data, stored_extension(key))

    def _parse_wal(self, marker: ObjectInfo, data: bytes, ref: ObjectRef,
                   match: re.Match[str]) -> BackupItem:
        try:
            timeline, segno = wal_position(match["name"])
            raw = _plain(data, match["ext"] or "")
        except ValueError as exc:
            raise CorruptBackup(marker.key, str(exc)) from None
        return segment_item(marker, ref, raw, timeline, segno)

    def _parse_history(self, marker: ObjectInfo, data: bytes, ref: ObjectRef,
                       timeline: int, extension: str) -> BackupItem:
        try:
            plain = _plain(data, extension)
        except ValueError as exc:
            raise CorruptBackup(marker.key, f"unreadable timeline history: {exc}") from None
        return history_item(marker, ref, plain, timeline)


def _plain(data: bytes, extension: str) -> bytes:
    if extension not in _READABLE:
        raise ValueError(f"{extension[1:]}-compressed WAL cannot be read by btar (archive with "
                         "barman-cloud-wal-archive -z, -j or no compression)")
    return decompress(data, extension)


def missing_tar_files(payload: Iterable[ObjectInfo], info: BackupInfo) -> str:
    """Why the objects listed in a backup's folder cannot be the whole backup, or "".

    barman-cloud-restore extracts ``data.tar`` and one ``<oid>.tar`` per tablespace of
    backup.info, each followed by its ``_NNNN`` parts, and fails on a missing main file. The
    folder is listed after backup.info exists, which barman-cloud-backup uploads once every
    tar file is closed: a file missing then was deleted (or never written), and the backup is
    not an item until a listing shows it."""
    parts: dict[str, set[int]] = {}
    for o in payload:
        name = o.key.rsplit("/", 1)[-1]
        if match := TAR_NAME.match(name):
            parts.setdefault(match["base"], set()).add(int(match["part"] or 0))
    wanted = ["data", *(str(oid) for _, oid, _ in info.tablespaces)]
    missing = [f"{base}.tar" for base in wanted if 0 not in parts.get(base, set())]
    gaps = [f"{base}_{n:04d}.tar" for base, numbers in sorted(parts.items())
            for n in range(1, max(numbers) + 1) if n not in numbers]
    if missing or gaps:
        return f"its folder lacks {', '.join(missing + gaps)} (not listed yet, or deleted)"
    return ""


@functools.lru_cache(maxsize=64)
def _layout_for(server: str) -> BarmanCloudLayout:
    return BarmanCloudLayout(server)

"""Reader of a pgBackRest repository (docs/pgbackrest-layout.md).

A service's prefix is the repository root (pgBackRest's ``repo1-path``); one stanza is read::

    backup/<stanza>/<label>/backup.manifest(.copy), pg_data/**, bundle/**   a backup
    backup/<stanza>/backup.history/<YYYY>/<label>.manifest.gz              its manifest, kept
    archive/<stanza>/<ver>-<id>/<16 hex>/<24 hex>-<sha1>[.gz|.bz2]        a WAL segment
    archive/<stanza>/<ver>-<id>/<16 hex>/<24 hex>.<8 hex>.backup          a backup history file
    archive/<stanza>/<ver>-<id>/<8 hex>.history                           a timeline history
    backup/<stanza>/backup.info(.copy), archive/<stanza>/archive.info(.copy)   rewritten in place
    btar-seal/<stanza>/<label>.json                   a seal written by older btar versions

How btar reads it:

* a backup is complete once its ``backup.manifest`` exists: pgBackRest writes only
  ``backup.manifest.copy`` while a backup runs and copies it to ``backup.manifest`` in
  ``backupComplete`` (src/command/backup/backup.c), after every file of the backup; its own
  reconstruction of backup.info takes a folder with that file as a backup (``infoBackupLoad
  FileReconstruct``, src/info/infoBackup.c). The manifest is the completion marker; its
  payload is what listings of the folder, the kept manifest and the backup's ``.backup`` file
  show once the manifest is read (payload_prefixes, BackupMarker). A file stored outside bundles
  carries ``rck`` (SHA-1 of the stored bytes, pgBackRest >= 2.44) and ``repo-size``: that is
  the digest its copy is verified against; bundles, and files of older manifests, take the
  listing's digest or none (docs/verification.md);
* a label with a seal (older btar) is still read from its seal, under the same item id;
* a WAL segment is its own completion marker: btar reads it once at discovery, which gives its
  SHA-256, checks the SHA-1 in its name, and yields the commit times inside it (the window);
* ``backup.info`` / ``archive.info`` (and their ``.copy``) are not items, since pgBackRest
  rewrites them in place: engine.mirror copies their current version into each destination,
  a backup.info only once every backup it lists is published there (mirrored_files,
  mirror_blockers);
* between full listings only the archive and the kept manifests are listed, after their
  cursors (engine.listing): a new kept manifest announces its backup's manifest, which the
  engine then looks up, and the info files are listed again.

Streams are timelines; ``seq`` is the WAL segment number (``log * 0x100 + seg``, 16 MiB
segments).
"""

from __future__ import annotations

import bz2
import functools
import gzip
import hashlib
import json
import re
import zlib
from collections.abc import Container, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engine.errors import CorruptBackup
from engine.formats.base import BackupMarker, Discovery
from engine.formats.wal import NO_COMMIT as NO_COMMIT
from engine.formats.wal import PG_EPOCH as PG_EPOCH
from engine.formats.wal import WAL_SEGMENT_SIZE as WAL_SEGMENT_SIZE
from engine.formats.wal import WalTimes as WalTimes
from engine.formats.wal import (
    history_item,
    segment_item,
    stored_extension,
    stream_position,
    wal_item_id,
)
from engine.formats.wal import log_item_id as log_item_id
from engine.formats.wal import lsn_segno as lsn_segno
from engine.formats.wal import parse_history as parse_history
from engine.formats.wal import read_wal as read_wal
from engine.formats.wal import timeline_problem as timeline_problem
from engine.formats.wal import wal_file_name as wal_file_name
from engine.formats.wal import wal_position as wal_position
from engine.model import (
    BackupItem,
    Digest,
    ItemKind,
    ObjectInfo,
    ObjectRef,
    listing_digest,
    parse_iso,
)

FORMAT = "btar-pgbackrest-seal"
VERSION = 1
SEAL_FOLDER = "btar-seal"
DEFAULT_STANZA = "main"
STANZA_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_LABEL = r"\d{8}-\d{6}F(?:_\d{8}-\d{6}[DI])?"
_COMPRESSED = {"": "", ".gz": "gz", ".bz2": "bz2", ".lz4": "lz4", ".zst": "zst"}
_EXTENSION = {"none": "", "gz": ".gz", "bz2": ".bz2", "lz4": ".lz4", "zst": ".zst"}
BACKUP_HISTORY = "backup.history"
INFO_FILES = ("backup/{s}/backup.info", "backup/{s}/backup.info.copy",
              "archive/{s}/archive.info", "archive/{s}/archive.info.copy")


# -- names -----------------------------------------------------------------------------------

def info_keys(stanza: str) -> tuple[str, ...]:
    return tuple(k.format(s=stanza) for k in INFO_FILES)


# -- pgBackRest's INI files (manifests, info files) --------------------------------------------

def parse_ini(text: str) -> dict[str, dict[str, Any]]:
    """pgBackRest's ``[section]`` / ``key=<JSON value>`` files. A section named twice (the
    ``[backrest]`` checksum at the end) is merged."""
    sections: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        if current is None or not sep:
            raise ValueError(f"line {number} is neither a [section] nor key=value")
        try:
            current[key] = json.loads(value)
        except ValueError:
            raise ValueError(f"line {number}: the value of {key!r} is not JSON") from None
    return sections


@dataclass(frozen=True)
class RepoFile:
    """A file a backup stores in its own folder outside bundles: its stored size
    (``repo-size``, else ``size``) and the SHA-1 of its stored bytes (``rck``, pgBackRest
    >= 2.44; None before, and for a zero-length file a bundling backup does not store)."""

    size: int
    sha1: str | None


@dataclass(frozen=True)
class ManifestSummary:
    """What btar needs from a backup.manifest."""

    label: str
    backup_type: str
    start_time: datetime
    end_time: datetime
    archive_start: str
    archive_stop: str
    lsn_start: str
    lsn_stop: str
    compress_extension: str
    references: tuple[str, ...]
    #: repository key (relative to the backup folder) -> the file stored there
    files: dict[str, RepoFile]
    #: the bundles (``bundle/<id>``) holding this backup's other files
    bundles: tuple[int, ...]
    #: the archive id its WAL is stored under (``<db-version>-<db-id>`` of ``[backup:db]``),
    #: None when the manifest does not say
    archive_id: str | None = None


def summarize_manifest(text: str) -> ManifestSummary:
    try:
        doc = parse_ini(text)
        backup = doc["backup"]
        options = doc.get("backup:option", {})
        compress_type = options.get("option-compress-type")
        if compress_type is None:
            compress_type = "gz" if options.get("option-compress") else "none"
        extension = _EXTENSION[str(compress_type)]
        label = str(backup["backup-label"])
        references: set[str] = set()
        files: dict[str, RepoFile] = {}
        bundles: set[int] = set()
        for name, entry in doc.get("target:file", {}).items():
            if not isinstance(entry, dict):
                continue
            if "reference" in entry:  # stored by an earlier backup, in its folder
                references.add(str(entry["reference"]))
            elif "bni" in entry:
                bundles.add(int(entry["bni"]))
            else:
                # block incremental files are stored as <name>.pgbi (backupFileRepoPath)
                stored = f"{name}{'.pgbi' if entry.get('bi') else extension}"
                rck = entry.get("rck")
                size: Any = entry["repo-size"] if "repo-size" in entry else entry["size"]
                files[stored] = RepoFile(int(size),
                                         Digest("sha1", str(rck)).value if rck else None)
        # The archive id names a folder to list (payload_prefixes): only what pgBackRest
        # writes (a PostgreSQL version, "9.6" or "16", and a number) is taken.
        db = doc.get("backup:db", {})
        version, db_id = str(db.get("db-version", "")), str(db.get("db-id", ""))
        archive_id = f"{version}-{db_id}" \
            if re.fullmatch(r"\d+(?:\.\d+)?", version) and db_id.isdigit() else None
        return ManifestSummary(
            label=label, backup_type=str(backup["backup-type"]),
            start_time=datetime.fromtimestamp(int(backup["backup-timestamp-start"]), UTC),
            end_time=datetime.fromtimestamp(int(backup["backup-timestamp-stop"]), UTC),
            archive_start=str(backup["backup-archive-start"]),
            archive_stop=str(backup["backup-archive-stop"]),
            lsn_start=str(backup["backup-lsn-start"]), lsn_stop=str(backup["backup-lsn-stop"]),
            compress_extension=extension, references=tuple(sorted(references - {label})),
            files=files, bundles=tuple(sorted(bundles)), archive_id=archive_id)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"not a pgBackRest backup manifest: {exc}") from None


def backup_file_name(summary: ManifestSummary) -> str:
    """The name of the backup history file PostgreSQL archives at the backup's stop:
    ``<start segment>.<offset of the start LSN in it>.backup``."""
    offset = int(summary.lsn_start.partition("/")[2], 16) % WAL_SEGMENT_SIZE
    return f"{summary.archive_start}.{offset:08X}.backup"


# -- WAL content: engine.formats.wal ----------------------------------------------------

def decompress(data: bytes, extension: str) -> bytes:
    kind = _COMPRESSED.get(extension)
    try:
        if kind == "":
            return data
        if kind == "gz":
            return gzip.decompress(data)
        if kind == "bz2":
            return bz2.decompress(data)
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise ValueError(f"cannot decompress: {exc}") from None
    raise ValueError(f"compress-type {kind or extension} cannot be read by btar "
                     "(use gz, bz2 or none)")


# -- seals of older btar versions -------------------------------------------------------------

def parse_seal(data: bytes, key: str) -> dict[str, Any]:
    """A seal ``btar-seal/<stanza>/<label>.json``, as older btar versions wrote it at the
    primary (a completion marker with the SHA-256 of every object and a snapshot of the info
    files). Labels sealed then are still read from their seals."""
    try:
        doc: Any = json.loads(data)
    except ValueError as exc:
        raise CorruptBackup(key, f"unreadable seal: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise CorruptBackup(key, f"not a {FORMAT} v{VERSION} document")
    return doc


# -- the reader -------------------------------------------------------------------------------

class PgBackRestLayout:
    """Reader of one stanza of a pgBackRest repository."""

    name = "pgbackrest"
    #: discovery groups a backup folder's keys (a seal stands for its label only while the
    #: folder holds a manifest)
    sorts_keys_alone = False

    def __init__(self, stanza: str = DEFAULT_STANZA) -> None:
        if not re.fullmatch(STANZA_PATTERN, stanza):
            raise ValueError(f"{stanza!r} is not a stanza name")
        self.stanza = stanza
        s = re.escape(stanza)
        self._wal = re.compile(
            rf"^archive/{s}/(?P<archive>\d+-\d+)/(?P<dir>[0-9A-F]{{16}})/"
            r"(?P<name>[0-9A-F]{24})-(?P<sha1>[0-9a-f]{40})(?P<ext>\.gz|\.bz2|\.lz4|\.zst)?$")
        self._history = re.compile(
            rf"^archive/{s}/(?P<archive>\d+-\d+)/(?P<timeline>[0-9A-F]{{8}})\.history$")
        self._seal = re.compile(rf"^{SEAL_FOLDER}/{s}/(?P<label>{_LABEL})\.json$")
        self._folder = re.compile(rf"^backup/{s}/(?P<label>{_LABEL})/(?P<name>.+)$")
        self._kept = re.compile(
            rf"^backup/{s}/backup\.history/\d{{4}}/(?P<label>{_LABEL})\.manifest\.gz$")
        self._manifest = re.compile(rf"^backup/{s}/(?P<label>{_LABEL})/backup\.manifest$")
        self._info = info_keys(stanza)
        # Listing areas (engine.listing): the archive, and each archive id's folder in it
        # (a stanza-upgrade's new id may sort before the old one), where WAL is written in
        # order as native segments are; and the kept manifests, one per completed backup in
        # label order, each written after its backup's manifest (backupComplete). A backup's
        # own folder is in no area: its manifest sorts before the files written before it.
        self._archive = f"archive/{stanza}/"
        self._kept_area = (f"backup/{stanza}/backup.history/",)
        self.root_areas: tuple[str, ...] = (self._archive, *self._kept_area)
        self._archive_areas: dict[str, tuple[str, ...]] = {}

    def for_stanza(self, stanza: str) -> PgBackRestLayout:
        return self if stanza == self.stanza else _layout_for(stanza)

    def discover(self, objects: Iterable[ObjectInfo],
                 known: Container[str] = frozenset()) -> Discovery:
        seals: dict[str, ObjectInfo] = {}
        folders: dict[str, dict[str, ObjectInfo]] = {}
        kept: list[str] = []
        histories: list[ObjectInfo] = []
        wal: dict[tuple[int, int], ObjectInfo] = {}
        info: dict[str, ObjectInfo] = {}
        for entry in objects:
            # The archive's keys, most of a listing, are tried against its own patterns
            # only (every pattern starts with its folder's name, so none other can match).
            if entry.key.startswith("archive/"):
                if match := self._wal.match(entry.key):
                    try:
                        position = wal_position(match["name"])
                    except ValueError:
                        continue
                    if match["dir"] == match["name"][:16]:
                        wal.setdefault(position, entry)  # one archive id per segment
                elif self._history.match(entry.key):
                    histories.append(entry)
                elif entry.key in self._info:
                    info[entry.key] = entry
            elif match := self._folder.match(entry.key):
                if entry.key.count("/") == 3:  # the folder's own files, not pg_data/**
                    folders.setdefault(match["label"], {})[match["name"]] = entry
            elif match := self._seal.match(entry.key):
                seals[match["label"]] = entry
            elif match := self._kept.match(entry.key):
                kept.append(match["label"])
            elif entry.key in self._info:
                info[entry.key] = entry
        bases: list[ObjectInfo] = []
        for label, names in sorted(folders.items()):
            if label in seals and names.keys() & {"backup.manifest", "backup.manifest.copy"}:
                # Sealed by an older btar: the seal stays the marker (same item id). A seal
                # whose backup pgBackRest expired no longer stands for a backup.
                bases.append(seals[label])
            elif "backup.manifest" in names:
                bases.append(names["backup.manifest"])  # its payload: payload_prefixes
        announced = tuple(f"backup/{self.stanza}/{label}/backup.manifest" for label in kept
                          if "backup.manifest" not in folders.get(label, {}))
        markers = (*bases, *sorted(histories, key=lambda o: o.key),
                   *(wal[position] for position in sorted(wal)))
        return Discovery(markers, (), self.mirrored_files(info.values()), announced=announced)

    def listing_areas(self, key: str) -> tuple[str, ...]:
        if key.startswith(self._archive):
            archive_id, slash, _ = key[len(self._archive):].partition("/")
            if not slash:
                return ()  # archive.info: rewritten in place, and it sorts after the ids
            areas = self._archive_areas.get(archive_id)
            if areas is None:
                if len(self._archive_areas) >= _AREAS_KEPT:  # a hostile listing's folders
                    self._archive_areas.clear()
                areas = self._archive_areas[archive_id] = (
                    self._archive, f"{self._archive}{archive_id}/")
            return areas
        if key.startswith(self._kept_area[0]):
            return self._kept_area
        return ()

    def log_position(self, key: str) -> tuple[str, int] | None:
        match = self._wal.match(key)
        return stream_position(match["name"]) if match else None

    def item_id_of_marker(self, key: str) -> str:
        if match := self._wal.match(key):  # most markers: a segment each
            try:
                return log_item_id(*wal_position(match["name"]))
            except ValueError:
                pass
        elif match := self._seal.match(key) or self._manifest.match(key):
            return f"base/{match['label']}"
        elif match := self._history.match(key):
            return f"history/{int(match['timeline'], 16)}"
        raise CorruptBackup(key, f"not a marker of pgBackRest stanza {self.stanza!r}")

    def parse_marker(self, marker: ObjectInfo, data: bytes) -> BackupItem:
        ref = ObjectRef(marker.key, len(data), hashlib.sha256(data).hexdigest())
        if match := self._manifest.match(marker.key):
            return self._parse_manifest(marker, data, ref, match["label"])
        if match := self._seal.match(marker.key):
            return self._parse_seal(marker, data, ref, match["label"])
        if match := self._history.match(marker.key):
            return history_item(marker, ref, data, int(match["timeline"], 16))
        if match := self._wal.match(marker.key):
            return self._parse_wal(marker, data, ref, match)
        raise CorruptBackup(marker.key, f"not a marker of pgBackRest stanza {self.stanza!r}")

    # -- info files: mirrored, never items (engine.mirror) ------------------------------------

    def mirrored_files(self, objects: Iterable[ObjectInfo]) -> tuple[ObjectInfo, ...]:
        # backup.info before its .copy: pgBackRest reads the copy when the main file is
        # missing or damaged, so one of the two is whole at every moment.
        listed = {o.key: o for o in objects if o.key in self._info}
        return tuple(listed[key] for key in self._info if key in listed)

    def mirrored_prefixes(self) -> tuple[str, ...]:
        return (f"backup/{self.stanza}/backup.info", f"archive/{self.stanza}/archive.info")

    def mirror_blockers(self, key: str, data: bytes, published: Container[str]) -> tuple[str, ...]:
        if not key.startswith(f"backup/{self.stanza}/backup.info"):
            return ()  # archive.info names no backup
        try:
            current = parse_ini(data.decode("utf-8")).get("backup:current", {})
        except UnicodeDecodeError as exc:
            raise ValueError(f"not a pgBackRest backup.info: {exc}") from None
        # A secondary whose backup.info lists a backup it lacks would pick it for a restore.
        return tuple(f"base/{label}" for label in sorted(current)
                     if f"base/{label}" not in published)

    # -- markers --------------------------------------------------------------------------------

    def payload_prefixes(self, key: str, data: bytes) -> tuple[str, ...]:
        """A manifest's backup is its folder, its kept manifest and the backup history file
        PostgreSQL archived at its stop (in the archive id and segment folder the manifest
        names; a manifest without ``[backup:db]`` has none)."""
        match = self._manifest.match(key)
        if match is None:
            return ()
        try:
            summary = summarize_manifest(data.decode("utf-8"))
            wal_position(summary.archive_start)  # a folder name, then: only a WAL name
            history_file = backup_file_name(summary)
        except (UnicodeDecodeError, ValueError):
            return ()  # parse_marker says why
        label, stanza = match["label"], self.stanza
        prefixes = [f"backup/{stanza}/{label}/",
                    f"backup/{stanza}/{BACKUP_HISTORY}/{label[:4]}/{label}.manifest.gz"]
        if summary.archive_id is not None:
            prefixes.append(f"archive/{stanza}/{summary.archive_id}/"
                            f"{summary.archive_start[:16]}/{history_file}")
        return tuple(prefixes)

    def wal_item_id(self, name: str) -> str:
        return wal_item_id(name)

    def plain_wal(self, key: str, data: bytes) -> bytes:
        return decompress(data, stored_extension(key))

    def _parse_wal(self, marker: ObjectInfo, data: bytes, ref: ObjectRef,
                   match: re.Match[str]) -> BackupItem:
        try:
            timeline, segno = wal_position(match["name"])
            raw = decompress(data, match["ext"] or "")
        except ValueError as exc:
            raise CorruptBackup(marker.key, str(exc)) from None
        if hashlib.sha1(raw).hexdigest() != match["sha1"]:
            raise CorruptBackup(marker.key, "its content does not match the SHA-1 in its name")
        return segment_item(marker, ref, raw, timeline, segno)

    def _parse_manifest(self, marker: ObjectInfo, data: bytes, ref: ObjectRef,
                        label: str) -> BackupItem:
        try:
            summary = summarize_manifest(data.decode("utf-8"))
            timeline, segno = wal_position(summary.archive_start)
            wanted = backup_file_name(summary)
        except (UnicodeDecodeError, ValueError) as exc:
            raise CorruptBackup(marker.key, str(exc)) from None
        if not isinstance(marker, BackupMarker):
            raise CorruptBackup(marker.key, "a backup.manifest can only be read with the "
                                "listings its payload_prefixes name")
        if summary.label != label:
            raise CorruptBackup(marker.key, f"it describes backup {summary.label}")
        if summary.end_time < summary.start_time:
            raise CorruptBackup(marker.key, "backup-timestamp-stop is before -start")
        payload = self._manifest_payload(marker, summary, wanted)
        return BackupItem(
            kind=ItemKind.BASE, item_id=f"base/{label}", start_time=summary.start_time,
            end_time=summary.end_time, stream=str(timeline), seq=segno, payload=payload,
            marker=ref, completed_at=marker.last_modified)

    def _manifest_payload(self, marker: BackupMarker, summary: ManifestSummary,
                          wanted: str) -> tuple[ObjectRef, ...]:
        """The backup's objects as listed, each with the digest that verifies its copy: the
        manifest's SHA-1 (``rck``) where it records one, else the listing's (or none)."""
        folder = marker.key.rsplit("/", 1)[0] + "/"
        own_dir = f"/{summary.archive_start[:16]}/{wanted}"
        payload: list[ObjectRef] = []
        for o in marker.payload:
            if o.key == marker.key:
                continue
            if o.key.startswith(folder):
                stored = summary.files.get(o.key[len(folder):])
                if stored is not None and stored.sha1 is not None:
                    if o.size != stored.size:
                        raise CorruptBackup(marker.key, f"{o.key} is listed with {o.size} "
                                            f"bytes, but the manifest records {stored.size}")
                    payload.append(ObjectRef(o.key, o.size, None, Digest("sha1", stored.sha1)))
                    continue
            elif not (o.key.startswith("backup/") or o.key.endswith(own_dir)):
                continue  # another backup's .backup file
            payload.append(ObjectRef(o.key, o.size, None, listing_digest(o)))
        listed = {o.key[len(folder):] for o in marker.payload if o.key.startswith(folder)}
        lacking = [name for name, stored in sorted(summary.files.items())
                   if stored.sha1 is not None and name not in listed]
        lacking += [f"bundle/{n}" for n in summary.bundles if f"bundle/{n}" not in listed]
        if lacking:
            shown = ", ".join(lacking[:5]) + (f" and {len(lacking) - 5} more"
                                              if len(lacking) > 5 else "")
            raise CorruptBackup(marker.key, f"its folder lacks {shown}, which the manifest "
                                "records (not listed yet, or deleted)")
        return tuple(payload)

    def _parse_seal(self, marker: ObjectInfo, data: bytes, ref: ObjectRef,
                    label: str) -> BackupItem:
        doc = parse_seal(data, marker.key)
        try:
            if doc["stanza"] != self.stanza or doc["label"] != label:
                raise CorruptBackup(marker.key, "stanza or label does not match its key")
            timeline, segno = wal_position(str(doc["archive_start"]))
            start, end = parse_iso(doc["start_time"]), parse_iso(doc["end_time"])
            payload = tuple(ObjectRef(str(o["key"]), int(o["size"]), str(o["sha256"]))
                            for o in doc["objects"])
        except CorruptBackup:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise CorruptBackup(marker.key, f"unreadable seal: {exc}") from None
        for o in payload:
            if o.size < 0 or not re.fullmatch(r"[0-9a-f]{64}", o.sha256 or ""):
                raise CorruptBackup(marker.key, f"object {o.key}: no size or SHA-256")
        own = (f"backup/{self.stanza}/{label}/", f"archive/{self.stanza}/",
               f"backup/{self.stanza}/backup.history/")
        for o in payload:
            parts = o.key.split("/")
            if not o.key.startswith(own) or any(p in ("", ".", "..") for p in parts):
                raise CorruptBackup(marker.key, f"object {o.key} is outside the backup")
        manifest = f"backup/{self.stanza}/{label}/backup.manifest"
        if not {manifest, f"{manifest}.copy"} & {o.key for o in payload}:
            raise CorruptBackup(marker.key, "the seal does not list the backup's manifest")
        if end < start:
            raise CorruptBackup(marker.key, "end_time is before start_time")
        return BackupItem(
            kind=ItemKind.BASE, item_id=f"base/{label}", start_time=start, end_time=end,
            stream=str(timeline), seq=segno, payload=payload, marker=ref,
            completed_at=marker.last_modified)


#: archive ids whose areas are remembered at most (a repository has one per stanza-upgrade)
_AREAS_KEPT = 256


@functools.lru_cache(maxsize=64)
def _layout_for(stanza: str) -> PgBackRestLayout:
    return PgBackRestLayout(stanza)

"""Reader of a pgBackRest repository (docs/pgbackrest-layout.md).

A service's prefix is the repository root (pgBackRest's ``repo1-path``); one stanza is read::

    backup/<stanza>/<label>/backup.manifest(.copy), pg_data/**, bundle/**   a backup
    backup/<stanza>/backup.history/<YYYY>/<label>.manifest.gz              its manifest, kept
    archive/<stanza>/<ver>-<id>/<16 hex>/<24 hex>-<sha1>[.gz|.bz2]        a WAL segment
    archive/<stanza>/<ver>-<id>/<16 hex>/<24 hex>.<8 hex>.backup          a backup history file
    archive/<stanza>/<ver>-<id>/<8 hex>.history                           a timeline history
    backup/<stanza>/backup.info(.copy), archive/<stanza>/archive.info(.copy)   rewritten in place
    btar-seal/<stanza>/<label>.json                                      btar's seal (below)

pgBackRest records SHA-1 checksums only (of each file, and ``rck`` of each repository file),
while btar verifies every copy against a SHA-256 recorded at the primary, and a layout reader
sees a listing plus the completion markers it asks to read. So:

* a WAL segment is its own completion marker: btar reads it once at discovery, which gives its
  SHA-256, checks the SHA-1 in its name, and yields the commit times inside it (the window);
* a backup is complete for btar once it is *sealed*: ``seal_backups`` (run at the primary after
  ``pgbackrest backup``; ``python -m engine.formats.pgbackrest seal``) checks every repository
  file of the backup against the manifest's ``rck`` and writes ``btar-seal/<stanza>/<label>.json``
  with the SHA-256 of each object, the manifest's times and WAL bounds, and a snapshot of the
  info files. The seal is the backup's completion marker, so it is copied last;
* ``backup.info`` / ``archive.info`` are not items: the engine's catalog records one version of
  an object key, and these are rewritten in place. The fork writes the snapshot from the seal
  into its staging repository.

Streams are timelines; ``seq`` is the WAL segment number (``log * 0x100 + seg``, 16 MiB
segments).
"""

from __future__ import annotations

import bz2
import contextlib
import functools
import gzip
import hashlib
import json
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engine.errors import CorruptBackup, ObjectNotFound
from engine.formats.base import Discovery
from engine.formats.wal import NO_COMMIT as NO_COMMIT
from engine.formats.wal import PG_EPOCH as PG_EPOCH
from engine.formats.wal import WAL_SEGMENT_SIZE as WAL_SEGMENT_SIZE
from engine.formats.wal import WalTimes as WalTimes
from engine.formats.wal import history_item, segment_item
from engine.formats.wal import log_item_id as log_item_id
from engine.formats.wal import lsn_segno as lsn_segno
from engine.formats.wal import parse_history as parse_history
from engine.formats.wal import read_wal as read_wal
from engine.formats.wal import timeline_problem as timeline_problem
from engine.formats.wal import wal_file_name as wal_file_name
from engine.formats.wal import wal_position as wal_position
from engine.model import BackupItem, ItemKind, ObjectInfo, ObjectRef, iso, parse_iso
from engine.storage.base import CHUNK_SIZE, Storage

FORMAT = "btar-pgbackrest-seal"
VERSION = 1
SEAL_FOLDER = "btar-seal"
DEFAULT_STANZA = "main"
STANZA_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_LABEL = r"\d{8}-\d{6}F(?:_\d{8}-\d{6}[DI])?"
_COMPRESSED = {"": "", ".gz": "gz", ".bz2": "bz2", ".lz4": "lz4", ".zst": "zst"}
_EXTENSION = {"none": "", "gz": ".gz", "bz2": ".bz2", "lz4": ".lz4", "zst": ".zst"}
INFO_FILES = ("backup/{s}/backup.info", "backup/{s}/backup.info.copy",
              "archive/{s}/archive.info", "archive/{s}/archive.info.copy")


# -- names -----------------------------------------------------------------------------------

def seal_key(stanza: str, label: str) -> str:
    return f"{SEAL_FOLDER}/{stanza}/{label}.json"


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
    #: repository key (relative to the backup folder) -> (repo-size, rck) of the files stored
    #: in this backup outside bundles
    files: dict[str, tuple[int, str]]


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
        files: dict[str, tuple[int, str]] = {}
        for name, entry in doc.get("target:file", {}).items():
            if not isinstance(entry, dict):
                continue
            if "reference" in entry:
                references.add(str(entry["reference"]))
            elif "bni" not in entry and "rck" in entry:
                stored: Any = entry["repo-size"] if "repo-size" in entry else entry.get("size")
                files[f"{name}{extension}"] = (int(stored), str(entry["rck"]))
        return ManifestSummary(
            label=label, backup_type=str(backup["backup-type"]),
            start_time=datetime.fromtimestamp(int(backup["backup-timestamp-start"]), UTC),
            end_time=datetime.fromtimestamp(int(backup["backup-timestamp-stop"]), UTC),
            archive_start=str(backup["backup-archive-start"]),
            archive_stop=str(backup["backup-archive-stop"]),
            lsn_start=str(backup["backup-lsn-start"]), lsn_stop=str(backup["backup-lsn-stop"]),
            compress_extension=extension, references=tuple(sorted(references - {label})),
            files=files)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a pgBackRest backup manifest: {exc}") from None


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


# -- the seal -----------------------------------------------------------------------------------

def build_seal(stanza: str, summary: ManifestSummary, objects: Iterable[ObjectRef],
               info: Mapping[str, str], sealed_at: datetime) -> bytes:
    timeline, _ = wal_position(summary.archive_start)
    document = {
        "format": FORMAT, "version": VERSION, "stanza": stanza, "label": summary.label,
        "type": summary.backup_type, "references": list(summary.references),
        "start_time": iso(summary.start_time), "end_time": iso(summary.end_time),
        "timeline": timeline, "archive_start": summary.archive_start,
        "archive_stop": summary.archive_stop, "lsn_start": summary.lsn_start,
        "lsn_stop": summary.lsn_stop, "sealed_at": iso(sealed_at),
        "objects": [{"key": o.key, "size": o.size, "sha256": o.sha256}
                    for o in sorted(objects, key=lambda o: o.key)],
        "info": dict(sorted(info.items())),
    }
    return json.dumps(document, indent=1, sort_keys=True).encode()


def parse_seal(data: bytes, key: str) -> dict[str, Any]:
    try:
        doc: Any = json.loads(data)
    except ValueError as exc:
        raise CorruptBackup(key, f"unreadable seal: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise CorruptBackup(key, f"not a {FORMAT} v{VERSION} document")
    return doc


def _hash(storage: Storage, key: str) -> tuple[int, str, str]:
    """Size, SHA-256 and SHA-1 of an object, streamed."""
    sha256, sha1, size = hashlib.sha256(), hashlib.sha1(), 0
    with storage.open_read(key) as stream:
        while chunk := stream.read(CHUNK_SIZE):
            sha256.update(chunk)
            sha1.update(chunk)
            size += len(chunk)
    return size, sha256.hexdigest(), sha1.hexdigest()


def _read_text(storage: Storage, key: str) -> str | None:
    try:
        return storage.read_bytes(key).decode("utf-8")
    except ObjectNotFound:
        return None


def seal_backups(storage: Storage, prefix: str, stanza: str, now: datetime) -> list[str]:
    """Seal every backup that the stanza's backup.info lists and that has no seal yet: check
    each repository file against the manifest (size and SHA-1 ``rck``), record SHA-256s and
    publish ``btar-seal/<stanza>/<label>.json`` last. Returns the labels sealed. Run it at the
    primary after each ``pgbackrest backup``; running it again is harmless."""
    root = f"{prefix.rstrip('/')}/" if prefix else ""
    info: dict[str, str] = {}
    for key in info_keys(stanza):
        text = _read_text(storage, root + key)
        if text is not None:
            info[key] = text
    listing = info.get(f"backup/{stanza}/backup.info") \
        or info.get(f"backup/{stanza}/backup.info.copy")
    if listing is None:
        raise CorruptBackup(f"{root}backup/{stanza}/backup.info",
                            f"no backup.info: is {stanza!r} a stanza of this repository?")
    try:
        labels = sorted(parse_ini(listing).get("backup:current", {}))
    except ValueError as exc:
        raise CorruptBackup(f"{root}backup/{stanza}/backup.info", str(exc)) from None
    sealed_already = {o.key.rsplit("/", 1)[-1].removesuffix(".json")
                      for o in storage.iter_objects(f"{root}{SEAL_FOLDER}/{stanza}/")}
    sealed: list[str] = []
    unreadable: list[str] = []
    archive: list[str] | None = None
    for label in labels:
        if label in sealed_already:
            continue
        folder = f"backup/{stanza}/{label}/"
        # pgBackRest writes the manifest twice and restores from the copy when the manifest
        # is gone: so does the seal.
        manifest = _read_text(storage, f"{root}{folder}backup.manifest") or \
            _read_text(storage, f"{root}{folder}backup.manifest.copy")
        if manifest is None:
            if any(True for _ in storage.iter_objects(root + folder)):
                unreadable.append(label)  # listed, still there, but no manifest at all
            continue  # otherwise expired since backup.info was read
        try:
            summary = summarize_manifest(manifest)
        except ValueError as exc:
            raise CorruptBackup(f"{root}{folder}backup.manifest", str(exc)) from None
        keys = [o.key[len(root):] for o in storage.iter_objects(root + folder)]
        if archive is None:
            archive = [o.key[len(root):]
                       for o in storage.iter_objects(f"{root}archive/{stanza}/")]
        keys += _companions(storage, root, stanza, label, summary, archive)
        refs: list[ObjectRef] = []
        for key in keys:
            size, sha256, sha1 = _hash(storage, root + key)
            expected = summary.files.get(key[len(folder):]) if key.startswith(folder) else None
            if expected is not None and (size, sha1) != expected:
                raise CorruptBackup(root + key, f"{size} bytes with SHA-1 {sha1}, but the "
                                    f"manifest records {expected[0]} bytes, {expected[1]}")
            refs.append(ObjectRef(key, size, sha256))
        data = build_seal(stanza, summary, refs, info, now)
        storage.write(root + seal_key(stanza, label), data)
        sealed.append(label)
    if unreadable:
        raise CorruptBackup(f"{root}backup/{stanza}/", f"backup.info lists {', '.join(unreadable)}"
                            ", but neither backup.manifest nor backup.manifest.copy is there: "
                            "pgBackRest cannot restore it either"
                            + (f" (sealed: {', '.join(sealed)})" if sealed else ""))
    return sealed


def _companions(storage: Storage, root: str, stanza: str, label: str,
                summary: ManifestSummary, archive: list[str]) -> list[str]:
    """Objects outside the backup folder that belong with it: its backup history file in the
    archive and the copy of its manifest in backup.history."""
    found: list[str] = []
    start = summary.archive_start
    offset = int(summary.lsn_start.partition("/")[2], 16) % WAL_SEGMENT_SIZE
    wanted = f"{start}.{offset:08X}.backup"
    found += [key for key in archive if key.endswith(f"/{start[:16]}/{wanted}")]
    history = f"backup/{stanza}/backup.history/{label[:4]}/{label}.manifest.gz"
    try:
        storage.stat(root + history)
        found.append(history)
    except ObjectNotFound:
        pass
    return found


# -- the reader -------------------------------------------------------------------------------

class PgBackRestLayout:
    """Reader of one stanza of a pgBackRest repository."""

    name = "pgbackrest"
    root_areas: tuple[str, ...] = ()

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
        self._manifest = re.compile(
            rf"^backup/{s}/(?P<label>{_LABEL})/backup\.manifest(?:\.copy)?$")

    def for_stanza(self, stanza: str) -> PgBackRestLayout:
        return self if stanza == self.stanza else _layout_for(stanza)

    def discover(self, objects: Iterable[ObjectInfo]) -> Discovery:
        seals: list[ObjectInfo] = []
        histories: list[ObjectInfo] = []
        wal: dict[tuple[int, int], ObjectInfo] = {}
        manifests: set[str] = set()
        for info in objects:
            if match := self._manifest.match(info.key):
                manifests.add(match["label"])
            elif self._seal.match(info.key):
                seals.append(info)
            elif self._history.match(info.key):
                histories.append(info)
            elif match := self._wal.match(info.key):
                try:
                    position = wal_position(match["name"])
                except ValueError:
                    continue
                if match["dir"] == match["name"][:16]:
                    wal.setdefault(position, info)  # one archive id per segment
        # A seal whose backup was expired by pgBackRest no longer stands for a backup; one
        # whose manifest is gone but whose manifest.copy remains does (pgBackRest restores
        # from the copy).
        live = [s for s in seals if self._label(s.key) in manifests]
        markers = (*sorted(live, key=lambda o: o.key), *sorted(histories, key=lambda o: o.key),
                   *(wal[position] for position in sorted(wal)))
        return Discovery(markers, ())

    def _label(self, key: str) -> str:
        match = self._seal.match(key)
        return match["label"] if match else ""

    def listing_areas(self, key: str) -> tuple[str, ...]:
        # A seal counts only while its backup's manifest is listed too (pgBackRest expires
        # backups), and manifests are not in key order with seals: list in full every pass.
        return ()

    def log_position(self, key: str) -> tuple[str, int] | None:
        if match := self._wal.match(key):
            with contextlib.suppress(ValueError):
                timeline, segno = wal_position(match["name"])
                return str(timeline), segno
        return None

    def item_id_of_marker(self, key: str) -> str:
        if match := self._seal.match(key):
            return f"base/{match['label']}"
        if match := self._history.match(key):
            return f"history/{int(match['timeline'], 16)}"
        if match := self._wal.match(key):
            try:
                return log_item_id(*wal_position(match["name"]))
            except ValueError:
                pass
        raise CorruptBackup(key, f"not a marker of pgBackRest stanza {self.stanza!r}")

    def parse_marker(self, marker: ObjectInfo, data: bytes) -> BackupItem:
        ref = ObjectRef(marker.key, len(data), hashlib.sha256(data).hexdigest())
        if self._seal.match(marker.key):
            return self._parse_seal(marker, data, ref)
        if match := self._history.match(marker.key):
            return history_item(marker, ref, data, int(match["timeline"], 16))
        if match := self._wal.match(marker.key):
            return self._parse_wal(marker, data, ref, match)
        raise CorruptBackup(marker.key, f"not a marker of pgBackRest stanza {self.stanza!r}")

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

    def _parse_seal(self, marker: ObjectInfo, data: bytes, ref: ObjectRef) -> BackupItem:
        label = self._label(marker.key)
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


@functools.lru_cache(maxsize=64)
def _layout_for(stanza: str) -> PgBackRestLayout:
    return PgBackRestLayout(stanza)


def main(argv: list[str] | None = None) -> int:
    """``python -m engine.formats.pgbackrest seal SERVICE [--config PATH]``: seal the new
    backups of a service whose layout is pgbackrest, in its primary location."""
    import argparse
    import sys

    from engine.config import config_path, load_config
    from engine.errors import BtarError
    from engine.storage.locations import open_location

    parser = argparse.ArgumentParser(prog="python -m engine.formats.pgbackrest")
    sub = parser.add_subparsers(dest="command", required=True)
    seal = sub.add_parser("seal", help="seal new pgBackRest backups at the primary")
    seal.add_argument("service")
    seal.add_argument("--config", help="btar configuration (default: $BTAR_CONFIG, ./btar.toml)")
    args = parser.parse_args(argv)
    try:
        loaded = load_config(config_path(args.config))
        service = loaded.services().get(args.service)
        if service is None or not service.layout.startswith("pgbackrest:"):
            sys.stderr.write(f"{args.service}: not a service with layout = \"pgbackrest\"\n")
            return 2
        storage = open_location(loaded.config.regions[service.region], service.region,
                                create=True)
        try:
            labels = seal_backups(storage, service.key_prefix, service.layout.partition(":")[2],
                                  datetime.now(UTC))
        finally:
            storage.close()
    except BtarError as error:
        sys.stderr.write(f"btar: {error}\n")
        return error.exit_code
    sys.stdout.write("".join(f"sealed {label}\n" for label in labels) or "nothing to seal\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

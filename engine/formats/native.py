"""btar's native backup layout (documented in docs/native-layout.md).

Under a service prefix::

    base/<backup_id>/data/<any/relative/path>     payload objects, written first
    base/<backup_id>/manifest.json                completion marker, written last
    log/<stream>/<seq:010d>_<start>_<end>_<sha256>.log   one log segment, written atomically
    log/<stream>/history.json                     where <stream> branches off its parent

Times in names are UTC ``YYYYmmddTHHMMSS.ffffffZ``. A base backup is consistent at its
``end_time``; replay continues from segment ``log_start_seq`` of ``stream``.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Container, Iterable, Mapping
from datetime import datetime
from typing import Any

from engine.errors import CorruptBackup
from engine.formats.base import Discovery
from engine.model import BackupItem, ItemKind, ObjectInfo, ObjectRef, iso, parse_iso, utc
from engine.storage.base import Storage

FORMAT = "btar-native"
VERSION = 1
MANIFEST = "manifest.json"
_TIME = "%Y%m%dT%H%M%S.%fZ"
_ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_SEGMENT = re.compile(
    rf"^log/(?P<stream>{_ID})/(?P<seq>\d{{10}})_(?P<start>\d{{8}}T\d{{6}}\.\d{{6}}Z)_"
    r"(?P<end>\d{8}T\d{6}\.\d{6}Z)_(?P<sha>[0-9a-f]{64})\.log$"
)
_MARKER = re.compile(rf"^base/(?P<id>{_ID})/{re.escape(MANIFEST)}$")
HISTORY = "history.json"
_HISTORY = re.compile(rf"^log/(?P<stream>{_ID})/{re.escape(HISTORY)}$")


def name_time(moment: datetime) -> str:
    return utc(moment).strftime(_TIME)


def _parse_name_time(text: str) -> datetime:
    # Every full listing reads every segment name: fromisoformat takes this basic ISO form
    # (the pattern guaranteed its digits) ~10x faster than slicing by hand, strptime ~100x;
    # it refuses impossible dates alike, and its "Z" is datetime.UTC.
    return datetime.fromisoformat(text)


def segment_key(stream: str, seq: int, start: datetime, end: datetime, sha256: str) -> str:
    """The key of a log segment (relative to the service prefix)."""
    return f"log/{stream}/{seq:010d}_{name_time(start)}_{name_time(end)}_{sha256}.log"


def log_item_id(stream: str, seq: int) -> str:
    return f"log/{stream}/{seq:010d}"


def history_item_id(stream: str) -> str:
    return f"history/{stream}"


def history_key(stream: str) -> str:
    return f"log/{stream}/{HISTORY}"


def base_item_id(backup_id: str) -> str:
    return f"base/{backup_id}"


def manifest_key(backup_id: str) -> str:
    return f"base/{backup_id}/{MANIFEST}"


def payload_key(backup_id: str, relative: str) -> str:
    return f"base/{backup_id}/data/{relative}"


def build_manifest(backup_id: str, start: datetime, end: datetime, stream: str,
                   log_start_seq: int, payload: Mapping[str, bytes]) -> bytes:
    """The manifest for a base backup whose payload is ``payload`` (relative path -> bytes)."""
    document = {
        "format": FORMAT,
        "version": VERSION,
        "backup_id": backup_id,
        "start_time": iso(start),
        "end_time": iso(end),
        "stream": stream,
        "log_start_seq": log_start_seq,
        "objects": [
            {"key": f"data/{rel}", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for rel, data in sorted(payload.items())
        ],
    }
    return json.dumps(document, indent=1, sort_keys=True).encode()


class _Name:
    """What a key's name says, parsed once (see NativeLayout._name): whether it is a
    completion marker or a history, its listing areas, and for a log segment its stream and
    seq and, when they are real times, its start and end. Lean (a few hundred bytes each):
    the SHA-256 and the item id are cut from the key and made again when asked."""

    __slots__ = ("areas", "end", "marker", "seq", "start", "stream")

    def __init__(self, key: str) -> None:
        self.areas = _areas_of(key)
        self.marker = bool(_MARKER.match(key) or _HISTORY.match(key))
        self.stream: str | None = None
        self.seq = 0
        self.start: datetime | None = None
        self.end: datetime | None = None
        match = None if self.marker else _SEGMENT.match(key)
        if match is None:
            return
        # A listing holds few streams and many segments: share one string per stream.
        self.stream, self.seq = sys.intern(match["stream"]), int(match["seq"])
        try:
            self.start, self.end = (_parse_name_time(match["start"]),
                                    _parse_name_time(match["end"]))
        except ValueError:
            return  # shaped like a segment, but not a real time: not ours


#: listing areas per stream, shared by every segment name of the stream
_STREAM_AREAS: dict[str, tuple[str, ...]] = {}


def _areas_of(key: str) -> tuple[str, ...]:
    # A stream's history.json is written before its segments but sorts after them: in no
    # area, so that no cursor passes the segments still to come (it is listed again by
    # every pass of log/ until its stream's segments carry the cursor past it).
    if key.startswith("base/"):
        return ("base/",)
    if key.startswith("log/"):
        stream, _, name = key[4:].partition("/")
        if name == HISTORY:
            return ()
        if name and "/" not in name:
            areas = _STREAM_AREAS.get(stream)
            if areas is None:
                if len(_STREAM_AREAS) >= _NAMES_KEPT:
                    _STREAM_AREAS.clear()
                areas = _STREAM_AREAS[stream] = ("log/", f"log/{stream}/")
            return areas
        return ("log/",)
    return ()


#: names remembered at most (then forgotten all at once): a full listing sees every key of a
#: service again, and parsing a name costs more than finding it
_NAMES_KEPT = 65536


class NativeLayout:
    """Reader of the native layout."""

    name = "native"
    root_areas: tuple[str, ...] = ("base/", "log/")
    sorts_keys_alone = True

    def __init__(self) -> None:
        #: key (relative to a service prefix) -> what its name says; a pure function of the
        #: key, so it holds whatever service listed it
        self._names: dict[str, _Name] = {}

    def _name(self, key: str) -> _Name:
        names = self._names
        found = names.get(key)
        if found is None:
            found = _Name(key)
            if len(names) >= _NAMES_KEPT:
                names.clear()
            names[key] = found
        return found

    def discover(self, objects: Iterable[ObjectInfo],
                 known: Container[str] = frozenset()) -> Discovery:
        markers: list[ObjectInfo] = []
        segments: list[BackupItem] = []
        known_segments: list[str] = []
        for info in objects:
            found = self._name(info.key)
            if found.marker:
                markers.append(info)
                continue
            start, end, stream = found.start, found.end, found.stream
            if start is None or end is None or stream is None:
                continue  # payload, or something that is not ours
            if end < start:
                continue
            # The key is log/<stream>/<seq:010d>_..._<sha256>.log: its id (log_item_id) and
            # SHA-256 are slices of it.
            item_id = info.key[:len(stream) + 15]
            if item_id in known:
                known_segments.append(item_id)
                continue
            ref = ObjectRef(info.key, info.size, info.key[-68:-4])
            segments.append(BackupItem(
                kind=ItemKind.LOG, item_id=item_id,
                start_time=start,
                end_time=end,
                stream=stream, seq=found.seq, payload=(), marker=ref,
                completed_at=info.last_modified,
            ))
        return Discovery(tuple(markers), tuple(segments), known_segments=tuple(known_segments))

    def listing_areas(self, key: str) -> tuple[str, ...]:
        return self._name(key).areas

    def log_position(self, key: str) -> tuple[str, int] | None:
        found = self._name(key)
        return None if found.stream is None else (found.stream, found.seq)

    def item_id_of_marker(self, key: str) -> str:
        history = _HISTORY.match(key)
        if history is not None:
            return history_item_id(history["stream"])
        match = _MARKER.match(key)
        if match is None:
            raise CorruptBackup(key, "not a native manifest key")
        return base_item_id(match["id"])

    def parse_marker(self, marker: ObjectInfo, data: bytes) -> BackupItem:
        if _HISTORY.match(marker.key):
            return self._parse_history(marker, data)
        match = _MARKER.match(marker.key)
        if match is None:
            raise CorruptBackup(marker.key, "not a native manifest key")
        backup_id = match["id"]
        try:
            doc: dict[str, Any] = json.loads(data)
            if not isinstance(doc, dict):
                raise CorruptBackup(marker.key, "a manifest is a JSON object")
            if doc.get("format") != FORMAT or doc.get("version") != VERSION:
                raise CorruptBackup(marker.key, f"not a {FORMAT} v{VERSION} manifest")
            if doc["backup_id"] != backup_id:
                raise CorruptBackup(marker.key, "backup_id does not match its folder")
            payload = tuple(
                ObjectRef(f"base/{backup_id}/{o['key']}", int(o["size"]), str(o["sha256"]))
                for o in doc["objects"]
            )
            for ref in payload:
                parts = ref.key.split("/")
                if parts[2] != "data" or any(p in ("", ".", "..") for p in parts):
                    raise CorruptBackup(marker.key, f"object {ref.key} is outside the backup")
            start, end = parse_iso(doc["start_time"]), parse_iso(doc["end_time"])
            stream, log_start_seq = str(doc["stream"]), int(doc["log_start_seq"])
        except CorruptBackup:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            # Whatever the JSON holds (null times, infinite numbers), it is a corrupt backup.
            raise CorruptBackup(marker.key, f"unreadable manifest: {exc}") from None
        if end < start:
            raise CorruptBackup(marker.key, "end_time is before start_time")
        return BackupItem(
            kind=ItemKind.BASE, item_id=base_item_id(backup_id), start_time=start,
            end_time=end, stream=stream, seq=log_start_seq, payload=payload,
            marker=ObjectRef(marker.key, len(data), hashlib.sha256(data).hexdigest()),
            completed_at=marker.last_modified,
        )

    def _parse_history(self, marker: ObjectInfo, data: bytes) -> BackupItem:
        match = _HISTORY.match(marker.key)
        assert match is not None
        try:
            doc: dict[str, Any] = json.loads(data)
            if not isinstance(doc, dict):
                raise CorruptBackup(marker.key, "a history is a JSON object")
            if doc.get("format") != FORMAT or doc.get("version") != VERSION:
                raise CorruptBackup(marker.key, f"not a {FORMAT} v{VERSION} history")
            parent, switch_seq = str(doc["parent"]), int(doc["switch_seq"])
            switch_time = parse_iso(doc["switch_time"])
        except CorruptBackup:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise CorruptBackup(marker.key, f"unreadable history: {exc}") from None
        if doc.get("stream") != match["stream"] or parent == match["stream"]:
            raise CorruptBackup(marker.key, "stream does not match its folder or its parent")
        ref = ObjectRef(marker.key, len(data), hashlib.sha256(data).hexdigest())
        return BackupItem(
            kind=ItemKind.HISTORY, item_id=history_item_id(match["stream"]),
            start_time=switch_time, end_time=switch_time, stream=match["stream"],
            seq=switch_seq, payload=(), marker=ref, completed_at=marker.last_modified,
            parent=parent)


def build_history(stream: str, parent: str, switch_seq: int, switch_time: datetime) -> bytes:
    """A stream history: ``stream`` continues ``parent``'s chain from ``switch_seq`` on."""
    return json.dumps({"format": FORMAT, "version": VERSION, "stream": stream, "parent": parent,
                       "switch_seq": switch_seq, "switch_time": iso(switch_time)},
                      indent=1, sort_keys=True).encode()


def write_stream_history(storage: Storage, prefix: str, stream: str, parent: str,
                         switch_seq: int, switch_time: datetime) -> str:
    """Publish a stream history (a promotion: a new timeline or server id)."""
    key = f"{prefix}/{history_key(stream)}"
    storage.write(key, build_history(stream, parent, switch_seq, switch_time))
    return key


def write_base_backup(storage: Storage, prefix: str, backup_id: str, start: datetime,
                      end: datetime, stream: str, log_start_seq: int,
                      payload: Mapping[str, bytes]) -> str:
    """Publish a base backup in the native layout: payload first, manifest last.
    Returns the manifest key."""
    for rel, data in sorted(payload.items()):
        storage.write(f"{prefix}/{payload_key(backup_id, rel)}", data)
    key = f"{prefix}/{manifest_key(backup_id)}"
    storage.write(key, build_manifest(backup_id, start, end, stream, log_start_seq, payload))
    return key


def write_log_segment(storage: Storage, prefix: str, stream: str, seq: int, start: datetime,
                      end: datetime, data: bytes) -> str:
    """Publish one log segment (a single atomic write). Returns its key."""
    key = f"{prefix}/{segment_key(stream, seq, start, end, hashlib.sha256(data).hexdigest())}"
    storage.write(key, data)
    return key

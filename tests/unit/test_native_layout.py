"""The native backup layout: manifests, discovery of a listing, and the publish order."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

import pytest

from engine.errors import CorruptBackup
from engine.formats.native import (
    FORMAT,
    VERSION,
    NativeLayout,
    base_item_id,
    build_manifest,
    history_key,
    log_item_id,
    manifest_key,
    payload_key,
    segment_key,
    write_base_backup,
    write_log_segment,
)
from engine.model import BackupItem, ItemKind, ObjectInfo, ObjectRef
from engine.storage.base import ListPage, Storage
from engine.storage.memory import MemoryStorage

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5, microseconds=250)
SHA = "ab" * 32
PAYLOAD = {"base.tar": b"tablespace bytes", "pg_wal/000000010000000000000001": b"wal",
           "global/pg_control": b""}

LAYOUT = NativeLayout()


def info(key: str, size: int = 1, modified: datetime = T1) -> ObjectInfo:
    return ObjectInfo(key, size, modified)


def manifest_info(backup_id: str, data: bytes) -> ObjectInfo:
    return info(manifest_key(backup_id), len(data))


# --- build_manifest / parse_marker ------------------------------------------------------------

@pytest.mark.parametrize(
    ("backup_id", "start", "end", "stream", "log_start_seq", "payload"),
    [
        ("b1", T0, T1, "s1", 0, PAYLOAD),
        ("2026-11-01T12.00_full", T0, T0, "timeline-2", 41, {"a": b"x"}),
        ("b-empty", T0, T1, "s1", 7, {}),
        ("b.nested", T0, T1, "s1", 3, {"dir/sub/deep.bin": b"\x00\x01" * 100}),
    ],
    ids=["typical", "instant-backup", "no-payload", "nested-payload"],
)
def test_manifest_round_trip(backup_id: str, start: datetime, end: datetime, stream: str,
                             log_start_seq: int, payload: dict[str, bytes]) -> None:
    data = build_manifest(backup_id, start, end, stream, log_start_seq, payload)
    marker = manifest_info(backup_id, data)
    item = LAYOUT.parse_marker(marker, data)
    assert item.kind == ItemKind.BASE
    assert item.item_id == base_item_id(backup_id) == LAYOUT.item_id_of_marker(marker.key)
    assert (item.start_time, item.end_time) == (start, end)
    assert (item.stream, item.seq) == (stream, log_start_seq)
    assert item.completed_at == T1
    assert item.payload == tuple(
        ObjectRef(payload_key(backup_id, rel), len(blob), hashlib.sha256(blob).hexdigest())
        for rel, blob in sorted(payload.items()))
    assert item.marker == ObjectRef(marker.key, len(data), hashlib.sha256(data).hexdigest())
    assert item.objects[-1] == item.marker  # publish order: payload first, marker last
    assert item.size == len(data) + sum(len(b) for b in payload.values())


def test_manifest_is_deterministic() -> None:
    one = build_manifest("b1", T0, T1, "s1", 0, PAYLOAD)
    two = build_manifest("b1", T0, T1, "s1", 0, dict(reversed(list(PAYLOAD.items()))))
    assert one == two
    doc = json.loads(one)
    assert doc["format"] == FORMAT
    assert doc["version"] == VERSION


def _doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(build_manifest("b1", T0, T1, "s1", 0, PAYLOAD))
    for key, value in changes.items():
        if value is None:
            del doc[key]
        else:
            doc[key] = value
    return doc


def _bytes(doc: object) -> bytes:
    return json.dumps(doc).encode()


def _objects(*keys: str) -> list[dict[str, object]]:
    return [{"key": k, "size": 1, "sha256": SHA} for k in keys]


CORRUPT: dict[str, tuple[bytes, str]] = {
    "wrong-format": (_bytes(_doc(format="pgbackrest")), "btar-native v1"),
    "wrong-version": (_bytes(_doc(version=2)), "btar-native v1"),
    "no-format": (_bytes(_doc(format=None)), "btar-native v1"),
    "backup-id-mismatch": (_bytes(_doc(backup_id="b2")), "backup_id does not match"),
    "dotdot-escape": (_bytes(_doc(objects=_objects("data/../../b2/data/x"))), "outside"),
    "parent-escape": (_bytes(_doc(objects=_objects("../b2/data/x"))), "outside"),
    "outside-data-folder": (_bytes(_doc(objects=_objects("manifest.json"))), "outside"),
    "end-before-start": (
        _bytes(_doc(start_time="2026-11-01T12:05:00Z", end_time="2026-11-01T12:00:00Z")),
        "end_time is before start_time",
    ),
    "naive-time": (_bytes(_doc(start_time="2026-11-01T12:00:00")), "unreadable"),
    "bad-time": (_bytes(_doc(end_time="yesterday")), "unreadable"),
    "missing-objects": (_bytes(_doc(objects=None)), "unreadable"),
    "missing-stream": (_bytes(_doc(stream=None)), "unreadable"),
    "bad-size": (_bytes(_doc(objects=[{"key": "data/x", "size": "big", "sha256": SHA}])),
                 "unreadable"),
    "object-not-a-table": (_bytes(_doc(objects=["data/x"])), "unreadable"),
    "invalid-json": (b'{"format": "btar-native", ', "unreadable"),
    "empty-file": (b"", "unreadable"),
    "not-utf8": (b"\xff\xfe\x00", "unreadable"),
}


@pytest.mark.parametrize(("data", "problem"), CORRUPT.values(), ids=CORRUPT.keys())
def test_parse_marker_refuses(data: bytes, problem: str) -> None:
    marker = manifest_info("b1", data)
    with pytest.raises(CorruptBackup) as caught:
        LAYOUT.parse_marker(marker, data)
    text = str(caught.value)
    assert caught.value.key == marker.key
    assert text.startswith(f"{marker.key}: ")
    assert problem in text
    assert "\n" not in text


@pytest.mark.parametrize("data", [b"[]", b"null", b'"manifest"', b"42"],
                         ids=["array", "null", "string", "number"])
def test_parse_marker_refuses_json_that_is_not_an_object(data: bytes) -> None:
    with pytest.raises(CorruptBackup):
        LAYOUT.parse_marker(manifest_info("b1", data), data)


def test_round_trip_of_a_payload_name_with_two_dots() -> None:
    data = build_manifest("b1", T0, T1, "s1", 0, {"archive..tar": b"x"})
    item = LAYOUT.parse_marker(manifest_info("b1", data), data)
    assert item.payload[0].key == "base/b1/data/archive..tar"


@pytest.mark.parametrize(
    "key",
    ["base/b1/manifest.json.tmp", "base/b1/data/manifest.json", "base/../manifest.json",
     "base/b1/sub/manifest.json", "log/s1/0000000001.log"],
    ids=["temp-suffix", "inside-data", "dotdot-id", "nested", "segment"],
)
def test_parse_marker_and_item_id_refuse_non_manifest_keys(key: str) -> None:
    data = build_manifest("b1", T0, T1, "s1", 0, {})
    with pytest.raises(CorruptBackup):
        LAYOUT.parse_marker(info(key), data)
    with pytest.raises(CorruptBackup):
        LAYOUT.item_id_of_marker(key)


# --- discover ---------------------------------------------------------------------------------

SEG_0 = segment_key("s1", 0, T0, T1, SHA)
SEG_1 = segment_key("s1", 1, T1, T1 + timedelta(minutes=1), "cd" * 32)
SEG_OTHER = segment_key("timeline.2", 9, T0, T1, SHA)


def test_discover_sorts_markers_and_segments() -> None:
    listing = [
        info(payload_key("b1", "base.tar"), 100),
        info(manifest_key("b1"), 200, T0),
        info(SEG_0, 16, T1),
        info("README.txt"),
        info(payload_key("b2", "base.tar")),  # b2 is not complete: no manifest
        info(SEG_1, 32, T1 + timedelta(minutes=1)),
        info(SEG_OTHER, 8),
        info(history_key("timeline.2")),
        info(manifest_key("b3"), 5),
        info("other-tool/base/b1/manifest.json"),
    ]
    found = LAYOUT.discover(iter(listing))
    assert [m.key for m in found.markers] == [
        manifest_key("b1"), history_key("timeline.2"), manifest_key("b3")]
    assert found.segments == (
        BackupItem(ItemKind.LOG, log_item_id("s1", 0), T0, T1, "s1", 0, (),
                   ObjectRef(SEG_0, 16, SHA), T1),
        BackupItem(ItemKind.LOG, log_item_id("s1", 1), T1, T1 + timedelta(minutes=1), "s1", 1,
                   (), ObjectRef(SEG_1, 32, "cd" * 32), T1 + timedelta(minutes=1)),
        BackupItem(ItemKind.LOG, log_item_id("timeline.2", 9), T0, T1, "timeline.2", 9, (),
                   ObjectRef(SEG_OTHER, 8, SHA), T1),
    )


def test_discover_names_known_segments_without_describing_them() -> None:
    listing = [info(manifest_key("b1"), 200, T0), info(SEG_0, 16, T1),
               info(SEG_1, 32, T1 + timedelta(minutes=1)), info(BAD_TIMES["end-before-start"])]
    everything = LAYOUT.discover(listing)
    found = LAYOUT.discover(listing, {log_item_id("s1", 0), "base/b1"})
    assert found.known_segments == (log_item_id("s1", 0),)
    assert found.segments == everything.segments[1:]
    assert found.markers == everything.markers  # a known marker is the caller's to skip


def test_discover_of_an_empty_listing() -> None:
    found = LAYOUT.discover([])
    assert found.markers == ()
    assert found.segments == ()


GOOD_NAME = "log/s1/0000000001_20261101T120000.000000Z_20261101T120100.000000Z_" + SHA + ".log"
IGNORED = {
    "sha-too-short": GOOD_NAME.replace(SHA, SHA[:-1]),
    "sha-upper-case": GOOD_NAME.replace(SHA, SHA.upper()),
    "sha-not-hex": GOOD_NAME.replace(SHA, "g" * 64),
    "seq-too-short": GOOD_NAME.replace("0000000001_", "1_"),
    "time-without-microseconds": GOOD_NAME.replace("120000.000000Z", "120000Z"),
    "time-without-z": GOOD_NAME.replace("120000.000000Z", "120000.000000"),
    "wrong-suffix": GOOD_NAME.replace(".log", ".gz"),
    "temp-suffix": GOOD_NAME + ".tmp",
    "nested-stream": GOOD_NAME.replace("log/s1/", "log/s1/x/"),
    "stream-starting-with-dot": GOOD_NAME.replace("log/s1/", "log/.s1/"),
    "not-under-log": GOOD_NAME.replace("log/", "logs/", 1),
}


@pytest.mark.parametrize("key", IGNORED.values(), ids=IGNORED.keys())
def test_discover_ignores_malformed_segment_names(key: str) -> None:
    found = LAYOUT.discover([info(key), info(GOOD_NAME)])
    assert found.markers == ()
    assert [s.marker.key for s in found.segments] == [GOOD_NAME]


BAD_TIMES = {
    "month-13": GOOD_NAME.replace("20261101T120000", "20261301T120000"),
    "hour-25": GOOD_NAME.replace("20261101T120100", "20261101T250100"),
    "february-30": GOOD_NAME.replace("20261101T120000", "20260230T120000"),
    "end-before-start": GOOD_NAME.replace("20261101T120100", "20261101T115900"),
}


@pytest.mark.parametrize("key", BAD_TIMES.values(), ids=BAD_TIMES.keys())
def test_discover_ignores_segment_names_with_impossible_times(key: str) -> None:
    found = LAYOUT.discover([info(key), info(GOOD_NAME)])
    assert [s.marker.key for s in found.segments] == [GOOD_NAME]


# --- publish order ----------------------------------------------------------------------------

class RecordingStorage(Storage):
    """Delegates to a MemoryStorage and logs the key of every write, in order."""

    def __init__(self, inner: MemoryStorage) -> None:
        self.inner = inner
        self.name = inner.name
        self.kind = inner.kind
        self.writes: list[str] = []

    def list_page(self, prefix: str = "", start_after: str | None = None,
                  limit: int = 1000) -> ListPage:
        return self.inner.list_page(prefix, start_after, limit)

    def stat(self, key: str) -> ObjectInfo:
        return self.inner.stat(key)

    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        return self.inner.open_read(key)

    def write(self, key: str, data: BinaryIO | bytes, *, sha256: str | None = None) -> ObjectInfo:
        self.writes.append(key)
        return self.inner.write(key, data, sha256=sha256)

    def delete(self, key: str) -> None:
        self.inner.delete(key)


def recording() -> RecordingStorage:
    return RecordingStorage(MemoryStorage("primary", clock=lambda: T1))


@pytest.mark.parametrize(
    "payload",
    [PAYLOAD, {}, {f"part-{i:02d}": bytes([i]) * i for i in range(12)}],
    ids=["typical", "no-payload", "many-parts"],
)
def test_write_base_backup_publishes_payload_before_manifest(payload: dict[str, bytes]) -> None:
    store = recording()
    key = write_base_backup(store, "orders", "b1", T0, T1, "s1", 0, payload)
    assert key == f"orders/{manifest_key('b1')}"
    assert store.writes[-1] == key
    assert store.writes.count(key) == 1
    assert sorted(store.writes[:-1]) == sorted(
        f"orders/{payload_key('b1', rel)}" for rel in payload)
    # what was written reads back as the same backup
    listing = [ObjectInfo(o.key.removeprefix("orders/"), o.size, o.last_modified)
               for o in store.inner.iter_objects("orders/")]
    found = LAYOUT.discover(listing)
    [marker] = found.markers
    item = LAYOUT.parse_marker(marker, store.inner.read_bytes(key))
    for ref in item.payload:
        blob = store.inner.read_bytes(f"orders/{ref.key}")
        assert hashlib.sha256(blob).hexdigest() == ref.sha256
        assert len(blob) == ref.size


@pytest.mark.parametrize(
    ("writer", "expected_writes"),
    [
        (lambda s: write_log_segment(s, "orders", "s1", 4, T0, T1, b"wal"), 1),
        (lambda s: write_base_backup(s, "orders", "b1", T0, T1, "s1", 0, {"a": b"1"}), 2),
    ],
    ids=["log-segment-single-write", "base-backup"],
)
def test_writes_are_discoverable(writer: Callable[[Storage], str], expected_writes: int) -> None:
    store = recording()
    key = writer(store)
    assert len(store.writes) == expected_writes
    assert store.writes[-1] == key
    found = LAYOUT.discover(
        ObjectInfo(o.key.removeprefix("orders/"), o.size, o.last_modified)
        for o in store.inner.iter_objects("orders/"))
    assert len(found.markers) + len(found.segments) == 1


def test_log_segment_name_carries_its_hash() -> None:
    store = recording()
    key = write_log_segment(store, "orders", "s1", 4, T0, T1, b"wal")
    [segment] = LAYOUT.discover([info(key.removeprefix("orders/"), 3)]).segments
    assert segment.marker.sha256 == hashlib.sha256(b"wal").hexdigest()
    assert (segment.stream, segment.seq, segment.start_time, segment.end_time) == (
        "s1", 4, T0, T1)

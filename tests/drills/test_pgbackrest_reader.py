"""The pieces the drills stand on, checked without a database: the pgBackRest layout reader
(WAL content, names, histories, manifests as completion markers, seals of older btar), the
configuration of a pgbackrest service, and the fork's target arithmetic. Synthetic WAL
follows PostgreSQL 15's on-disk format."""

from __future__ import annotations

import gzip
import hashlib
import json
import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from engine.config import parse_config
from engine.errors import ConfigError, CorruptBackup
from engine.formats import get_layout
from engine.formats.pgbackrest import (
    NO_COMMIT,
    PG_EPOCH,
    WAL_SEGMENT_SIZE,
    PgBackRestLayout,
    lsn_segno,
    read_wal,
    wal_file_name,
    wal_position,
)
from engine.model import Digest, ItemKind, ObjectInfo
from engine.restore import PlannedSegment
from engine.restore_tools.base import recovery_reaches_past
from engine.restore_tools.mariadb import binlog_stop
from engine.storage.memory import MemoryStorage

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
BLOCK = 8192


def _record(rmid: int, info: int, main: bytes) -> bytes:
    body = bytes([255, len(main)]) + main
    total = 24 + len(body)
    header = struct.pack("<IIQBBxxI", total, 700, 0, info, rmid, 0)
    return header + body + b"\0" * (-total % 8)


def commit(moment: datetime) -> bytes:
    micros = (moment - PG_EPOCH) // timedelta(microseconds=1)
    return _record(1, 0x00, struct.pack("<q", micros))


def segment(timeline: int, segno: int, records: list[bytes],
            page_timeline: Callable[[int], int] | None = None) -> bytes:
    """A 16 MiB segment: page headers, then the records laid across pages. Page ``n`` carries
    ``page_timeline(n)`` if given (a segment opening a timeline starts with its parent's
    pages), else ``timeline``."""
    payload = b"".join(records)
    out = bytearray()
    pos = 0
    for page in range(WAL_SEGMENT_SIZE // BLOCK):
        address = segno * WAL_SEGMENT_SIZE + page * BLOCK
        timeline = page_timeline(page) if page_timeline else timeline
        if page == 0:
            header = struct.pack("<HHIQIxxxxQII", 0xD110, 0x0002, timeline, address, 0,
                                 7712408193966489217, WAL_SEGMENT_SIZE, BLOCK)
        else:
            header = struct.pack("<HHIQIxxxx", 0xD110, 0, timeline, address, 0)
        room = BLOCK - len(header)
        chunk = payload[pos:pos + room]
        pos += len(chunk)
        out += header + chunk + b"\0" * (room - len(chunk))
    return bytes(out)


def wal_object(stanza: str, timeline: int, segno: int, raw: bytes) -> tuple[str, bytes]:
    name = wal_file_name(timeline, segno)
    key = (f"archive/{stanza}/15-1/{name[:16]}/{name}-{hashlib.sha1(raw).hexdigest()}.gz")
    return key, gzip.compress(raw, compresslevel=1)


def test_wal_names_and_positions() -> None:
    assert wal_position("000000010000000200000003") == (1, 0x203)
    assert wal_file_name(1, 0x203) == "000000010000000200000003"
    assert lsn_segno("0/5000000") == 5
    assert lsn_segno("2/3000028") == 0x203
    with pytest.raises(ValueError, match="16 MiB"):
        wal_position("000000010000000000000100")


def test_read_wal_finds_every_commit_time_across_pages() -> None:
    moments = [T0 + timedelta(milliseconds=7 * n) for n in range(500)]
    noise = _record(10, 0x00, b"x" * 40)  # a heap record: not a stop point
    raw = segment(3, 0x41, [r for m in moments for r in (noise, commit(m))])
    times = read_wal(raw)
    assert (times.timeline, times.segno, times.commits) == (3, 0x41, 500)
    assert (times.first_commit, times.last_commit) == (moments[0], moments[-1])
    empty = read_wal(segment(1, 2, [noise]))
    assert empty.commits == 0
    assert empty.last_commit is None


def test_the_reader_discovers_sealed_backups_wal_and_histories() -> None:
    layout = get_layout("pgbackrest:demo")
    assert isinstance(layout, PgBackRestLayout)
    assert layout.stanza == "demo"
    label = "20261126-080000F"
    listing = [ObjectInfo(k, 1, T0) for k in [
        f"backup/demo/{label}/backup.manifest", f"backup/demo/{label}/pg_data/PG_VERSION.gz",
        "backup/demo/backup.info", "archive/demo/archive.info",
        f"btar-seal/demo/{label}.json", "btar-seal/demo/20261125-080000F.json",  # expired
        "archive/demo/15-1/00000002.history",
        "archive/demo/15-1/0000000100000000/000000010000000000000002.00000028.backup",
        f"archive/demo/15-1/0000000100000000/000000010000000000000003-{'a' * 40}.gz",
        f"archive/demo/15-1/0000000100000000/000000010000000000000002-{'b' * 40}.gz",
        f"archive/other/15-1/0000000100000000/000000010000000000000004-{'c' * 40}.gz",
    ]]
    found = layout.discover(listing)
    assert found.segments == ()
    ids = [layout.item_id_of_marker(m.key) for m in found.markers]
    assert ids == [f"base/{label}", "history/2", "log/1/0000000002", "log/1/0000000003"]


def test_a_wal_marker_becomes_a_log_item_timed_by_its_commits() -> None:
    layout = PgBackRestLayout("main")
    raw = segment(1, 5, [commit(T0), commit(T0 + timedelta(seconds=2))])
    key, data = wal_object("main", 1, 5, raw)
    item = layout.parse_marker(ObjectInfo(key, len(data), T0 + timedelta(minutes=1)), data)
    assert (item.kind, item.item_id, item.stream, item.seq) == (ItemKind.LOG, "log/1/0000000005",
                                                                 "1", 5)
    assert (item.start_time, item.end_time) == (T0, T0 + timedelta(seconds=2))
    assert item.marker.sha256 == hashlib.sha256(data).hexdigest()
    quiet_key, quiet = wal_object("main", 1, 6, segment(1, 6, []))
    assert layout.parse_marker(ObjectInfo(quiet_key, 1, T0), quiet).end_time == NO_COMMIT
    with pytest.raises(CorruptBackup, match="SHA-1"):
        layout.parse_marker(ObjectInfo(f"{key.rsplit('-', 1)[0]}-{'0' * 40}.gz", 1, T0), data)
    wrong_key, _ = wal_object("main", 1, 7, raw)
    with pytest.raises(CorruptBackup):
        layout.parse_marker(ObjectInfo(wrong_key, 1, T0), wal_object("main", 1, 7, raw)[1])


def test_a_timeline_history_names_its_parent_and_switch_segment() -> None:
    layout = PgBackRestLayout("main")
    data = b"1\t0/5000000\tno recovery target specified\n\n2\t0/7000A0\tbefore 2026\n"
    item = layout.parse_marker(ObjectInfo("archive/main/15-1/00000003.history", len(data), T0),
                               data)
    assert (item.kind, item.item_id, item.parent, item.seq) == (ItemKind.HISTORY, "history/3",
                                                                 "2", 0)


def _manifest(label: str, files: dict[str, bytes]) -> str:
    lines = ["[backup]", 'backup-archive-start="000000010000000000000002"',
             'backup-archive-stop="000000010000000000000003"', f'backup-label="{label}"',
             'backup-lsn-start="0/2000028"', 'backup-lsn-stop="0/3000100"',
             f"backup-timestamp-start={int(T0.timestamp())}",
             f"backup-timestamp-stop={int(T0.timestamp()) + 4}", 'backup-type="full"', "",
             "[backup:db]", "db-id=1", 'db-version="15"', "", "[backup:option]",
             'option-compress-type="gz"', "", "[target:file]"]
    for name, data in files.items():
        entry = {"checksum": "0" * 40, "rck": hashlib.sha1(data).hexdigest(),
                 "repo-size": len(data), "size": 8192}
        lines.append(f"{name.removesuffix('.gz')}={json.dumps(entry)}")
    return "\n".join(lines) + "\n"


def test_the_manifest_stands_for_its_backup_and_rck_verifies_its_files() -> None:
    """No seal step: backup.manifest (written last, in backupComplete) is the marker; each
    file's copy is verified against the manifest's rck."""
    store = MemoryStorage("primary")
    label = "20261126-080000F"
    files = {"pg_data/PG_VERSION.gz": b"15\n-gz", "pg_data/global/pg_control.gz": b"ctl"}
    for name, data in files.items():
        store.write(f"r/backup/main/{label}/{name}", data)
    manifest = _manifest(label, files).encode()
    store.write(f"r/backup/main/{label}/backup.manifest.copy", manifest)
    layout = PgBackRestLayout("main")

    def listed() -> list[ObjectInfo]:
        return [ObjectInfo(o.key[2:], o.size, T0) for o in store.iter_objects("r/")]

    assert layout.discover(listed()).markers == ()  # still running: only the copy is there
    store.write(f"r/backup/main/{label}/backup.manifest", manifest)
    backup_file = "archive/main/15-1/0000000100000000/000000010000000000000002.00000028.backup"
    store.write(f"r/{backup_file}", b"START WAL LOCATION: 0/2000028\n")
    [marker] = layout.discover(listed()).markers
    from tests.pgbackrest_repo import read_base  # it builds on this module's WAL

    item = read_base(layout, listed(), marker, manifest)
    assert (item.kind, item.item_id, item.stream, item.seq) == (ItemKind.BASE, f"base/{label}",
                                                                 "1", 2)
    assert (item.start_time, item.end_time) == (T0, T0 + timedelta(seconds=4))
    refs = {o.key: o for o in item.payload}
    assert backup_file in refs
    assert refs[f"backup/main/{label}/pg_data/PG_VERSION.gz"].digest == \
        Digest("sha1", hashlib.sha1(b"15\n-gz").hexdigest())


@pytest.mark.parametrize(("service", "problem"), [
    ({"layout": "pgbackrest"}, "stanza"),
    ({"layout": "pgbackrest", "stanza": "main", "type": "mysql"}, "PostgreSQL"),
    ({"stanza": "main"}, "only a service with layout"),
    ({"layout": "barman"}, "layout"),
])
def test_config_of_a_pgbackrest_service(service: dict[str, str], problem: str) -> None:
    raw = {"regions": {"aws-eu-west-1": "file:///tmp/x"}, "services": [
        {"name": "orders", "type": "postgresql", "region": "aws-eu-west-1", **service}]}
    with pytest.raises(ConfigError, match=problem):
        parse_config(raw, "btar.toml")


def test_a_pgbackrest_service_names_its_stanza_in_the_layout() -> None:
    raw = {"regions": {"aws-eu-west-1": "file:///tmp/x"}, "services": [
        {"name": "orders", "type": "postgresql", "region": "aws-eu-west-1",
         "layout": "pgbackrest", "stanza": "main"}]}
    assert parse_config(raw, "btar.toml").services[0].to_service().layout == "pgbackrest:main"


def test_fork_target_arithmetic() -> None:
    assert binlog_stop(datetime(2026, 11, 26, 8, 0, 5, 500000, tzinfo=UTC)) == \
        "2026-11-26 08:00:06"
    segments = (PlannedSegment("log/1/0000000004", "1", 4, T0, T0 + timedelta(seconds=3)),
                PlannedSegment("log/1/0000000005", "1", 5, NO_COMMIT, NO_COMMIT))
    from engine.model import RegionRole, RestoreWindow
    from engine.restore import RestorePlan

    plan = RestorePlan("orders", "postgresql", "pgbackrest:main", "r", RegionRole.SECONDARY,
                       T0, T0, RestoreWindow("r", RegionRole.SECONDARY), "base/x", T0,
                       segments, (), (), 0, None, T0)
    assert recovery_reaches_past(plan, T0 + timedelta(seconds=2))
    assert not recovery_reaches_past(plan, T0 + timedelta(seconds=3))


@pytest.mark.parametrize("data", [
    b"\x00\xff{not json",
    json.dumps({"format": "btar-pgbackrest-seal", "version": 1}).encode(),
    json.dumps({"format": "btar-pgbackrest-seal", "version": 1, "stanza": "main",
                "label": "20261126-080000F", "archive_start": "000000010000000000000002",
                "start_time": None, "end_time": None, "objects": []}).encode(),
    json.dumps({"format": "btar-pgbackrest-seal", "version": 1, "stanza": "main",
                "label": "20261126-080000F", "archive_start": "000000010000000000000002",
                "start_time": "2026-11-26T08:00:00Z", "end_time": "2026-11-26T08:00:04Z",
                "objects": [{"key": "backup/main/20261126-080000F/backup.manifest",
                             "size": float("inf"), "sha256": "a" * 64}]}).encode(),
    json.dumps({"format": "btar-pgbackrest-seal", "version": 1, "stanza": "main",
                "label": "20261126-080000F", "archive_start": "000000010000000000000002",
                "start_time": "2026-11-26T08:00:00Z", "end_time": "2026-11-26T08:00:04Z",
                "objects": [{"key": "backup/main/../../etc/passwd", "size": 1,
                             "sha256": "a" * 64}]}).encode(),
], ids=["garbage", "empty", "null-times", "infinite-size", "escape"])
def test_a_hostile_seal_is_a_corrupt_backup(data: bytes) -> None:
    key = "btar-seal/main/20261126-080000F.json"
    with pytest.raises(CorruptBackup):
        PgBackRestLayout("main").parse_marker(ObjectInfo(key, len(data), T0), data)


def test_a_hostile_wal_segment_is_a_corrupt_backup() -> None:
    garbage = b"\x10\xd1\x02\x00" + bytes(range(256)) * 64
    for raw in (garbage, b"", segment(1, 5, [])[:BLOCK] + b"\1" * BLOCK):
        key, data = wal_object("main", 1, 5, raw)
        with pytest.raises(CorruptBackup):
            PgBackRestLayout("main").parse_marker(ObjectInfo(key, len(data), T0), data)

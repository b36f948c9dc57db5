"""The pgBackRest reader without a seal step: backup.manifest is the completion marker, its
payload comes from the listing, each file outside bundles verified by the manifest's ``rck``
(SHA-1 of the stored bytes); labels sealed by an older btar are still read from their seals;
the info files are mirrored once every backup they list is published; the fork takes them
from the mirrored copies."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings

from engine.errors import CorruptBackup
from engine.formats.base import MirroredFiles
from engine.formats.pgbackrest import PgBackRestLayout, summarize_manifest
from engine.model import BackupItem, Digest, ItemKind, ObjectInfo, RegionRole, RestoreWindow
from engine.restore import RestorePlan
from engine.restore_tools.pgbackrest import (
    BackupNotInMirroredInfo,
    lay_out_pgbackrest,
    read_bounds,
)
from engine.storage.memory import MemoryStorage
from tests.key_shapes import shaped_keys
from tests.pgbackrest_repo import (
    FULL,
    INCR,
    T0,
    Backup,
    backup_info,
    read_base,
    write_backup,
    write_info,
)

LAYOUT = PgBackRestLayout("main")
FILES = {"pg_data/PG_VERSION": b"15\n-gz", "pg_data/global/pg_control": b"control bytes"}
MD5 = Digest("md5", "0" * 32)


def listing(store: MemoryStorage, prefix: str = "r") -> list[ObjectInfo]:
    """The primary's listing relative to the prefix, with a provider MD5 on bundles (as a
    GCS or Azure listing carries)."""
    return [ObjectInfo(o.key[len(prefix) + 1:], o.size, o.last_modified,
                       digests=(MD5,) if "/bundle/" in o.key else ())
            for o in store.iter_objects(f"{prefix}/")]


def base_item(store: MemoryStorage, label: str = FULL) -> BackupItem:
    listed = listing(store)
    found = LAYOUT.discover(listed)
    [marker] = [m for m in found.markers if LAYOUT.item_id_of_marker(m.key) == f"base/{label}"]
    return read_base(LAYOUT, listed, marker, store.read_bytes(f"r/{marker.key}"))


def test_the_manifest_is_the_marker_and_rck_verifies_each_file() -> None:
    store = MemoryStorage("primary")
    backup = Backup(FULL, FILES, bundled={1: ("pg_data/base/1/1259", "pg_data/base/1/1260")})
    write_backup(store, "r", backup)
    write_info(store, "r", FULL)
    listed = listing(store)
    found = LAYOUT.discover(listed)
    [marker] = [m for m in found.markers if "/backup.manifest" in m.key]
    assert marker.key == f"{backup.folder}/backup.manifest"
    assert LAYOUT.item_id_of_marker(marker.key) == f"base/{FULL}"
    data = store.read_bytes(f"r/{marker.key}")
    # its payload: what its folder, kept manifest and backup history file list
    assert LAYOUT.payload_prefixes(marker.key, data) == (
        f"{backup.folder}/", f"backup/main/backup.history/2026/{FULL}.manifest.gz",
        backup.backup_file)
    item = read_base(LAYOUT, listed, marker, data)
    assert (item.kind, item.item_id, item.stream, item.seq) == (ItemKind.BASE, f"base/{FULL}",
                                                                 "1", 2)
    assert (item.start_time, item.end_time) == (T0, T0 + timedelta(seconds=4))
    assert item.marker.sha256 == hashlib.sha256(backup.manifest()).hexdigest()
    refs = {o.key: o for o in item.payload}
    control = refs[f"{backup.folder}/pg_data/global/pg_control.gz"]
    assert control.sha256 is None
    assert control.digest == Digest("sha1", hashlib.sha1(b"control bytes").hexdigest())
    assert control.size == len(b"control bytes")
    # a bundle has no checksum of its own: the listing's digest pins it
    assert refs[f"{backup.folder}/bundle/1"].digest == MD5
    # the companions: its history file in the archive, its kept manifest, the manifest copy
    assert backup.backup_file in refs
    assert f"backup/main/backup.history/2026/{FULL}.manifest.gz" in refs
    assert f"{backup.folder}/backup.manifest.copy" in refs
    assert marker.key not in refs
    # the info files are mirrored, never items
    assert [o.key for o in found.mirrored] == [
        "backup/main/backup.info", "backup/main/backup.info.copy",
        "archive/main/archive.info", "archive/main/archive.info.copy"]


def test_a_running_backup_is_not_an_item() -> None:
    """pgBackRest writes only backup.manifest.copy while a backup runs."""
    store = MemoryStorage("primary")
    write_backup(store, "r", Backup(FULL, FILES), complete=False)
    assert [m.key for m in LAYOUT.discover(listing(store)).markers] == []


def test_a_manifest_before_2_44_has_no_rck_and_the_listing_digest_or_none_verifies() -> None:
    store = MemoryStorage("primary")
    backup = Backup(FULL, FILES, bundled={2: ("pg_data/base/1/1259",)}, rck=False)
    write_backup(store, "r", backup)
    item = base_item(store)
    refs = {o.key: o for o in item.payload}
    assert refs[f"{backup.folder}/pg_data/PG_VERSION.gz"].digest is None
    assert refs[f"{backup.folder}/pg_data/PG_VERSION.gz"].sha256 is None
    assert refs[f"{backup.folder}/bundle/2"].digest == MD5


def test_an_incremental_backup_refers_to_the_backups_it_needs() -> None:
    store = MemoryStorage("primary")
    write_backup(store, "r", Backup(FULL, FILES))
    incr = Backup(INCR, {"pg_data/base/1/1259": b"changed"},
                  referenced={"pg_data/PG_VERSION": FULL, "pg_data/global/pg_control": FULL},
                  start=T0 + timedelta(hours=1), stop=T0 + timedelta(hours=1, seconds=3),
                  archive_start="000000010000000000000005",
                  archive_stop="000000010000000000000006", lsn_start="0/5000060")
    write_backup(store, "r", incr)
    summary = summarize_manifest(incr.manifest().decode())
    assert summary.references == (FULL,)
    item = base_item(store, INCR)
    keys = {o.key for o in item.payload}
    # what the full backup stores stays its own (the fork fetches it as a reference)
    assert not any(k.startswith(f"backup/main/{FULL}/") for k in keys)
    assert incr.backup_file in keys
    assert Backup(FULL).backup_file not in keys
    assert item.seq == 5


def test_the_folder_must_hold_what_the_manifest_records() -> None:
    store = MemoryStorage("primary")
    backup = Backup(FULL, FILES, bundled={3: ("pg_data/base/1/1259",)})
    write_backup(store, "r", backup)
    store.delete(f"r/{backup.folder}/bundle/3")
    store.delete(f"r/{backup.folder}/pg_data/PG_VERSION.gz")
    with pytest.raises(CorruptBackup, match=r"lacks pg_data/PG_VERSION\.gz, bundle/3"):
        base_item(store)
    write_backup(store, "r", backup)
    store.write(f"r/{backup.folder}/pg_data/PG_VERSION.gz", b"15\n-gz and more")
    with pytest.raises(CorruptBackup, match="the manifest records 6"):
        base_item(store)


def test_a_hostile_manifest_is_a_corrupt_backup() -> None:
    store = MemoryStorage("primary")
    backup = Backup(FULL, FILES)
    write_backup(store, "r", backup)
    [marker] = LAYOUT.discover(listing(store)).markers[:1]
    for data in (b"\xff\xfe", b"[backup]\nbackup-label=1\n", backup.manifest().replace(
            b'"rck": "', b'"rck": "X'), backup.manifest().replace(FULL.encode(), INCR.encode())):
        with pytest.raises(CorruptBackup):
            LAYOUT.parse_marker(marker, data)
    with pytest.raises(CorruptBackup, match="listings its payload_prefixes name"):
        LAYOUT.parse_marker(ObjectInfo(marker.key, 1, T0), backup.manifest())
    # bytes that are no manifest name no payload: parse_marker says what is wrong
    assert LAYOUT.payload_prefixes(marker.key, b"\xff\xfe") == ()
    # a manifest names folders to list: only what pgBackRest writes there is taken
    hostile = backup.manifest().replace(b'db-version="15"', b'db-version="../../x"')
    assert all(".." not in p for p in LAYOUT.payload_prefixes(marker.key, hostile))
    hostile = backup.manifest().replace(b'"000000010000000000000002"', b'"../../../x"')
    assert LAYOUT.payload_prefixes(marker.key, hostile) == ()


def seal_document(label: str, objects: dict[str, bytes]) -> bytes:
    """A seal as older btar versions wrote it (built by hand: btar writes none any more)."""
    return json.dumps({
        "format": "btar-pgbackrest-seal", "version": 1, "stanza": "main", "label": label,
        "type": "full", "references": [], "start_time": "2026-11-26T08:00:00Z",
        "end_time": "2026-11-26T08:00:04Z", "timeline": 1,
        "archive_start": "000000010000000000000002",
        "archive_stop": "000000010000000000000003", "lsn_start": "0/2000028",
        "lsn_stop": "0/3000100", "sealed_at": "2026-11-26T08:01:00Z",
        "objects": [{"key": k, "size": len(v), "sha256": hashlib.sha256(v).hexdigest()}
                    for k, v in sorted(objects.items())],
        "info": {"backup/main/backup.info": backup_info(label).decode()}}).encode()


def test_a_label_sealed_by_an_older_btar_is_still_read_from_its_seal() -> None:
    store = MemoryStorage("primary")
    backup = Backup(FULL, FILES)
    write_backup(store, "r", backup)
    sealed = {f"{backup.folder}/backup.manifest": backup.manifest(),
              f"{backup.folder}/pg_data/PG_VERSION.gz": FILES["pg_data/PG_VERSION"]}
    store.write(f"r/btar-seal/main/{FULL}.json", seal_document(FULL, sealed))
    store.write("r/btar-seal/main/20261125-080000F.json", b"{}")  # expired by pgBackRest
    found = LAYOUT.discover(listing(store))
    assert [m.key for m in found.markers] == [f"btar-seal/main/{FULL}.json"]
    item = base_item(store)
    assert item.item_id == f"base/{FULL}"
    assert {o.key: o.sha256 for o in item.payload} == {
        k: hashlib.sha256(v).hexdigest() for k, v in sealed.items()}


def test_backup_info_is_ready_only_when_every_backup_it_lists_is_published() -> None:
    assert isinstance(LAYOUT, MirroredFiles)
    data = backup_info(FULL, INCR)
    assert LAYOUT.mirror_blockers("backup/main/backup.info", data, set()) == (
        f"base/{FULL}", f"base/{INCR}")
    assert LAYOUT.mirror_blockers("backup/main/backup.info.copy", data, {f"base/{FULL}"}) == (
        f"base/{INCR}",)
    assert LAYOUT.mirror_blockers("backup/main/backup.info", data,
                                  {f"base/{FULL}", f"base/{INCR}"}) == ()
    assert LAYOUT.mirror_blockers("archive/main/archive.info", b"anything", set()) == ()
    with pytest.raises(ValueError, match="line 1"):
        LAYOUT.mirror_blockers("backup/main/backup.info", b"not = an ini\n", set())


def plan_for(label: str) -> RestorePlan:
    return RestorePlan("orders", "postgresql", "pgbackrest:main", "aws-eu-central-1",
                       RegionRole.SECONDARY, T0, T0,
                       RestoreWindow("aws-eu-central-1", RegionRole.SECONDARY), f"base/{label}",
                       T0, (), (), (), 0, None, T0)


def stage(into: Path, key: str, data: bytes) -> None:
    path = into / "repo" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_the_fork_takes_the_mirrored_info_files(tmp_path: Path) -> None:
    incr = Backup(INCR, referenced={"pg_data/PG_VERSION": FULL},
                  archive_stop="000000010000000000000007")
    stage(tmp_path, f"{incr.folder}/backup.manifest", incr.manifest())
    # the bounds and references come from the manifest fetched with the backup
    assert read_bounds(plan_for(INCR), tmp_path) == {
        "archive_stop": "000000010000000000000007", "references": [FULL]}
    stage(tmp_path, "backup/main/backup.info", backup_info(FULL))
    with pytest.raises(BackupNotInMirroredInfo, match="run `btar sync`"):
        lay_out_pgbackrest(plan_for(INCR), tmp_path)
    stage(tmp_path, "backup/main/backup.info", backup_info(FULL, INCR))
    written = lay_out_pgbackrest(plan_for(INCR), tmp_path)
    assert written == ["pgbackrest.conf"]  # the mirrored bytes stay as they are
    assert (tmp_path / "repo/backup/main/backup.info").read_bytes() == backup_info(FULL, INCR)


def test_a_fork_of_a_sealed_backup_without_mirrored_info_uses_the_seal(tmp_path: Path) -> None:
    stage(tmp_path, f"btar-seal/main/{FULL}.json", seal_document(FULL, {}))
    written = lay_out_pgbackrest(plan_for(FULL), tmp_path)
    assert written == ["repo/backup/main/backup.info", "pgbackrest.conf"]
    assert read_bounds(plan_for(FULL), tmp_path)["archive_stop"] == "000000010000000000000003"
    with pytest.raises(BackupNotInMirroredInfo):
        lay_out_pgbackrest(plan_for(INCR), tmp_path)


_SHA1 = "a" * 40
#: what each part of a repository key can be: the right values and near misses
_PARTS = {
    "stanza": ["main", "other"],
    "ver": ["15-1", "1-2", "15"],
    "dir": ["0000000100000000", "0000000100000001", "00000001"],
    "file": [f"000000010000000000000002-{_SHA1}.gz", f"000000010000000000000002-{_SHA1}",
             f"000000010000000000000100-{_SHA1}.gz", f"000000010000000000000002-{_SHA1}.xz",
             "000000010000000000000002.00000028.backup", "000000010000000000000002",
             "00000002.history", "0000002.history"],
    "info": ["archive.info", "archive.info.copy", "backup.info", "backup.info.copy"],
    "label": ["20261126-080000F", "20261126-080000F_20261126-090000I", "2026112-080000F",
              "backup.history"],
    "name": ["backup.manifest", "backup.manifest.copy", "bundle/1", "pg_data/PG_VERSION"],
    "year": ["2026", "26"],
}
#: where a repository's files are
_SHAPES = ["archive/{stanza}/{ver}/{dir}/{file}", "archive/{stanza}/{ver}/{file}",
           "archive/{stanza}/{info}", "backup/{stanza}/{label}/{name}",
           "backup/{stanza}/backup.history/{year}/{label}.manifest.gz", "backup/{stanza}/{info}",
           "btar-seal/{stanza}/{label}.json", "{stanza}/{label}/{file}"]


@settings(max_examples=3000, deadline=None)
@given(shaped_keys(_SHAPES, _PARTS))
def test_each_repository_key_is_one_kind_of_file(key: str) -> None:
    """The reader tries the archive's patterns only on the archive's keys, and each of its
    patterns in any order: that holds because no key is two kinds of file at once, and the
    archive's patterns match only under archive/."""
    archive = [LAYOUT._wal, LAYOUT._history]
    others = [LAYOUT._folder, LAYOUT._seal, LAYOUT._kept]
    matched = [p.pattern for p in (*archive, *others) if p.match(key)]
    matched += ["info"] if key in LAYOUT._info else []
    assert len(matched) <= 1, (key, matched)
    if any(p.match(key) for p in archive):
        assert key.startswith("archive/")
    if any(p.match(key) for p in others):
        assert not key.startswith("archive/")
    markers = [p.pattern for p in (LAYOUT._wal, LAYOUT._seal, LAYOUT._manifest, LAYOUT._history)
               if p.match(key)]
    assert len(markers) <= 1, (key, markers)
    # Listing areas: the archive's segments and histories, and the kept manifests; never a
    # backup's folder (its manifest sorts before its files) or a file rewritten in place.
    areas = LAYOUT.listing_areas(key)
    assert all(key.startswith(area) for area in areas)
    if match := LAYOUT._wal.match(key) or LAYOUT._history.match(key):
        assert areas == ("archive/main/", f"archive/main/{match['archive']}/")
    if LAYOUT._kept.match(key):
        assert areas == ("backup/main/backup.history/",)
    if key in LAYOUT._info or LAYOUT._folder.match(key) or LAYOUT._seal.match(key):
        assert areas == ()

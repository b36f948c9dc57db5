"""A pgBackRest repository written into a storage as pgBackRest >= 2.44 lays it out (manifest
with ``rck`` and ``repo-size``, bundles, references, the backup history file, the kept manifest
and the info files), for tests of the manifest reader, the mirror step and the fork. Synthetic
WAL comes from the reader drill's PostgreSQL 15 segments."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from engine.api import Btar
from engine.formats.base import BackupMarker
from engine.formats.pgbackrest import PgBackRestLayout, wal_file_name
from engine.model import BackupItem, ObjectInfo
from engine.storage.base import Storage
from engine.storage.memory import MemoryStorage
from tests.drills.test_pgbackrest_reader import commit, segment
from tests.worlds import ListingLog, ManualClock, orders_app

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
FULL = "20261126-080000F"
INCR = "20261126-080000F_20261126-090000I"
PRIMARY, SECONDARY = "aws-eu-west-1", "aws-eu-central-1"
FILES = {"pg_data/PG_VERSION": b"15\n-gz", "pg_data/global/pg_control": b"control bytes"}


@dataclass
class Backup:
    """One backup as its manifest records it. ``files``: stored name (without .gz) -> the
    stored bytes; ``bundled``: bundle id -> names in it; ``referenced``: name -> the label of
    the backup that stores it; ``rck``: whether the manifest records repository checksums
    (pgBackRest >= 2.44)."""

    label: str
    files: Mapping[str, bytes] = field(default_factory=dict)
    bundled: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    referenced: Mapping[str, str] = field(default_factory=dict)
    rck: bool = True
    start: datetime = T0
    stop: datetime = T0 + timedelta(seconds=4)
    archive_start: str = "000000010000000000000002"
    archive_stop: str = "000000010000000000000003"
    lsn_start: str = "0/2000028"

    @property
    def folder(self) -> str:
        return f"backup/main/{self.label}"

    @property
    def backup_file(self) -> str:
        offset = int(self.lsn_start.partition("/")[2], 16) % (16 * 1024 * 1024)
        return (f"archive/main/15-1/{self.archive_start[:16]}/"
                f"{self.archive_start}.{offset:08X}.backup")

    def manifest(self) -> bytes:
        kind = {"F": "full", "D": "diff", "I": "incr"}[self.label[-1]]
        lines = ["[backup]", f'backup-archive-start="{self.archive_start}"',
                 f'backup-archive-stop="{self.archive_stop}"', f'backup-label="{self.label}"',
                 f'backup-lsn-start="{self.lsn_start}"', 'backup-lsn-stop="0/3000100"',
                 f"backup-timestamp-start={int(self.start.timestamp())}",
                 f"backup-timestamp-stop={int(self.stop.timestamp())}",
                 f'backup-type="{kind}"', "", "[backup:db]", "db-id=1", 'db-version="15"', "",
                 "[backup:option]", 'option-compress-type="gz"',
                 "", "[target:file]"]
        for name, data in sorted(self.files.items()):
            entry: dict[str, object] = {"checksum": "0" * 40, "repo-size": len(data),
                                        "size": 8192}
            if self.rck:
                entry["rck"] = hashlib.sha1(data).hexdigest()
            lines.append(f"{name}={json.dumps(entry, sort_keys=True)}")
        for bundle, names in sorted(self.bundled.items()):
            for offset, name in enumerate(names):
                entry = {"bni": bundle, "bno": offset * 10, "checksum": "0" * 40,
                         "size": 10}
                if self.rck:
                    entry["rck"] = "1" * 40
                lines.append(f"{name}={json.dumps(entry, sort_keys=True)}")
        for name, label in sorted(self.referenced.items()):
            lines.append(f"{name}={json.dumps({'reference': label, 'size': 8192})}")
        return ("\n".join(lines) + "\n").encode()


def incremental() -> Backup:
    """An incremental backup on FULL, a minute later, starting in segment 5."""
    return Backup(INCR, {"pg_data/base/1/1259": b"changed"},
                  referenced={"pg_data/PG_VERSION": FULL}, start=T0 + timedelta(minutes=1),
                  stop=T0 + timedelta(minutes=1, seconds=2),
                  archive_start="000000010000000000000005",
                  archive_stop="000000010000000000000005", lsn_start="0/5000060")


def pg_world(stores: dict[str, ListingLog] | None = None, clock: ManualClock | None = None,
             ) -> tuple[Btar, dict[str, ListingLog], ManualClock]:
    """Service ``orders`` of the pgBackRest layout (stanza main) replicated from PRIMARY to
    SECONDARY with a catalog of its own: memory storages that log their listings (or
    ``stores``), the live driver, a manual clock (or ``clock``)."""
    clock = clock or ManualClock(T0 + timedelta(minutes=5))
    stores = stores or {r: ListingLog(MemoryStorage(r, clock.now)) for r in (PRIMARY, SECONDARY)}
    return orders_app("pgbackrest:main", stores, clock, max_attempts=1), stores, clock


def read_base(layout: PgBackRestLayout, listed: list[ObjectInfo], marker: ObjectInfo,
              data: bytes) -> BackupItem:
    """The item a discovered manifest describes, its payload taken from ``listed`` (the
    whole repository, relative keys) under the prefixes it names, as the engine lists them
    (engine.replication ``_with_payload``)."""
    prefixes = layout.payload_prefixes(marker.key, data)
    if prefixes:
        marker = BackupMarker.of(marker, [o for o in listed if o.key.startswith(prefixes)])
    return layout.parse_marker(marker, data)


def backup_info(*labels: str) -> bytes:
    current = "".join(f'{label}={{"backup-type":"full"}}\n' for label in labels)
    return (f"[backrest]\nbackrest-format=5\n\n[backup:current]\n{current}\n"
            "[db]\ndb-id=1\n").encode()


ARCHIVE_INFO = b'[backrest]\nbackrest-format=5\n\n[db]\ndb-id=1\ndb-version="15"\n'


def write_backup(store: Storage, prefix: str, backup: Backup, *, complete: bool = True) -> None:
    """The files, then the manifest copy, the manifest (complete) and its kept copy, as
    backupComplete orders them; the backup history file PostgreSQL archived."""
    root = f"{prefix}/{backup.folder}"
    for name, data in backup.files.items():
        store.write(f"{root}/{name}.gz", data)
    for bundle in backup.bundled:
        store.write(f"{root}/bundle/{bundle}", b"bundle %d" % bundle * 3)
    store.write(f"{prefix}/{backup.backup_file}", b"START WAL LOCATION: 0/2000028\n")
    store.write(f"{root}/backup.manifest.copy", backup.manifest())
    if complete:
        store.write(f"{root}/backup.manifest", backup.manifest())
        store.write(f"{prefix}/backup/main/backup.history/{backup.label[:4]}/"
                    f"{backup.label}.manifest.gz", gzip.compress(backup.manifest()))


def write_info(store: Storage, prefix: str, *labels: str) -> None:
    """backup.info and its copy listing ``labels``; archive.info and its copy."""
    for suffix in ("", ".copy"):
        store.write(f"{prefix}/backup/main/backup.info{suffix}", backup_info(*labels))
        store.write(f"{prefix}/archive/main/archive.info{suffix}", ARCHIVE_INFO)


def write_wal(store: Storage, prefix: str, segnos: range,
              start: datetime) -> list[datetime]:
    """Timeline-1 segments, gz, two commits each a second apart from ``start``; the commit
    times."""
    times: list[datetime] = []
    for n, segno in enumerate(segnos):
        moments = [start + timedelta(seconds=2 * n + k) for k in (1, 2)]
        raw = segment(1, segno, [commit(m) for m in moments])
        name = wal_file_name(1, segno)
        store.write(f"{prefix}/archive/main/15-1/{name[:16]}/{name}-"
                    f"{hashlib.sha1(raw).hexdigest()}.gz", gzip.compress(raw, compresslevel=1))
        times += moments
    return times

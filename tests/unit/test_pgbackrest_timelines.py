"""The pgBackRest reader at a timeline switch: the segment that opens a timeline starts with
its parent's pages (PostgreSQL copies them up to the switch point), which is accepted; a
segment whose content belongs to another timeline is still refused. And a backup whose
backup.manifest is missing is not an item (pgBackRest writes it last), unless an older btar
sealed it."""

from __future__ import annotations

import gzip
import hashlib
import struct
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from engine.errors import CorruptBackup
from engine.formats.pgbackrest import WAL_SEGMENT_SIZE, PgBackRestLayout
from engine.model import ObjectInfo
from engine.storage.memory import MemoryStorage
from tests.drills.test_pgbackrest_reader import _manifest, _record, commit, wal_object
from tests.drills.test_pgbackrest_reader import segment as drill_segment

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
BLOCK = 8192
PAGES = WAL_SEGMENT_SIZE // BLOCK


def opening(this: int, previous: int) -> bytes:
    """An end-of-recovery record (RM_XLOG, XLOG_END_OF_RECOVERY): time, this and previous
    timeline."""
    return _record(0, 0x90, struct.pack("<qII", 0, this, previous))


def segment(page_timeline: Callable[[int], int], segno: int, records: list[bytes]) -> bytes:
    """A 16 MiB segment whose page ``n`` carries timeline ``page_timeline(n)``."""
    return drill_segment(page_timeline(0), segno, records, page_timeline)


def parse(timeline: int, segno: int, raw: bytes) -> tuple[str, int, str]:
    key, data = wal_object("main", timeline, segno, raw)
    item = PgBackRestLayout("main").parse_marker(ObjectInfo(key, len(data), T0), data)
    return item.stream, item.seq, item.parent


def test_the_segment_opening_a_timeline_carries_its_parent_pages() -> None:
    raw = segment(lambda page: 1 if page < 3 else 2, 7, [commit(T0)] * 400)
    assert parse(2, 7, raw) == ("2", 7, "1")
    # the switch in the last page: every header says 1, the end-of-recovery record says 2
    late = segment(lambda page: 1, 7, [commit(T0), opening(2, 1)])
    assert parse(2, 7, late) == ("2", 7, "1")
    # a segment of its own timeline names no parent
    assert parse(2, 8, segment(lambda page: 2, 8, [commit(T0)])) == ("2", 8, "")
    # a grandparent's pages: two switches inside one segment
    assert parse(3, 7, segment(lambda p: 1 if p < 2 else 2 if p < 4 else 3, 7,
                               [commit(T0)] * 600)) == ("3", 7, "1")


@pytest.mark.parametrize(("name", "pages", "records", "problem"), [
    ("a timeline-1 segment named 2", lambda page: 1, [], "nothing in it opens timeline 2"),
    ("a timeline-1 segment opening 3 named 2", lambda page: 1, [opening(3, 1)],
     "nothing in it opens timeline 2"),
    ("pages of a later timeline", lambda page: 3, [], "timeline 3 pages"),
    ("timeline going back", lambda page: 2 if page < 5 else 1, [], "goes back"),
])
def test_a_mislabelled_segment_is_still_refused(
        name: str, pages: Callable[[int], int], records: list[bytes], problem: str) -> None:
    raw = segment(pages, 7, [commit(T0), *records])
    with pytest.raises(CorruptBackup, match=problem):
        parse(2, 7, raw)


def test_a_segment_named_for_another_position_is_refused() -> None:
    raw = segment(lambda page: 1 if page < 3 else 2, 7, [commit(T0)] * 400)
    key, _ = wal_object("main", 2, 8, raw)
    data = gzip.compress(raw, compresslevel=1)
    key = key.rsplit("-", 1)[0] + f"-{hashlib.sha1(raw).hexdigest()}.gz"
    with pytest.raises(CorruptBackup, match="not what its name says"):
        PgBackRestLayout("main").parse_marker(ObjectInfo(key, len(data), T0), data)


def _repository(store: MemoryStorage, label: str, *, manifest: bool, copy: bool) -> None:
    files = {"pg_data/PG_VERSION.gz": b"15\n-gz"}
    store.write("r/backup/main/backup.info", f"[backup:current]\n{label}={{}}\n".encode())
    store.write("r/archive/main/archive.info", b"[db]\ndb-id=1\n")
    for name, data in files.items():
        store.write(f"r/backup/main/{label}/{name}", data)
    text = _manifest(label, files).encode()
    if manifest:
        store.write(f"r/backup/main/{label}/backup.manifest", text)
    if copy:
        store.write(f"r/backup/main/{label}/backup.manifest.copy", text)


def test_a_backup_without_its_manifest_is_an_item_only_when_sealed_before() -> None:
    store = MemoryStorage("primary")
    label = "20261126-080000F"
    _repository(store, label, manifest=False, copy=True)
    layout = PgBackRestLayout("main")

    def ids() -> list[str]:
        listing = [ObjectInfo(o.key[2:], o.size, T0) for o in store.iter_objects("r/")]
        return [layout.item_id_of_marker(m.key) for m in layout.discover(listing).markers]

    assert ids() == []  # a backup still running looks the same
    # an older btar sealed it from the copy: the seal still stands for it
    store.write(f"r/btar-seal/main/{label}.json", b"{}")
    assert ids() == [f"base/{label}"]


def test_a_history_gives_the_time_a_recovery_to_a_time_stopped_at() -> None:
    layout = PgBackRestLayout("main")
    data = (b"1\t0/3000168\tbefore 2026-11-26 08:00:09.111961+00\n\n"
            b"2\t0/5000000\tbefore 2026-11-26 09:00:00.5+01\n")
    archived = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
    item = layout.parse_marker(ObjectInfo("archive/main/15-1/00000003.history", len(data),
                                          archived), data)
    assert (item.parent, item.start_time) == ("2", datetime(2026, 11, 26, 8, 0, 0, 500000,
                                                            tzinfo=UTC))
    promoted = b"1\t0/3000168\tno recovery target specified\n"
    item = layout.parse_marker(ObjectInfo("archive/main/15-1/00000002.history",
                                          len(promoted), archived), promoted)
    assert item.start_time == archived

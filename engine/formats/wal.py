"""PostgreSQL WAL as btar reads it: file names and positions, the commit times inside a
segment, the timelines its pages carry, and timeline history files (PostgreSQL 15's on-disk
format, 16 MiB segments)."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from engine.errors import CorruptBackup
from engine.model import BackupItem, ItemKind, ObjectInfo, ObjectRef

WAL_SEGMENT_SIZE = 16 * 1024 * 1024
SEGMENTS_PER_LOG = 0x1_0000_0000 // WAL_SEGMENT_SIZE
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
#: Start and end time of a WAL segment holding no commit or abort record: recovery cannot stop
#: inside it, so it adds no restorable point (it still links the chain).
NO_COMMIT = PG_EPOCH


# -- names -----------------------------------------------------------------------------------

#: a WAL file name (a repository lists thousands: compiled once, not looked up per name)
_WAL_NAME = re.compile(r"[0-9A-F]{24}")


def wal_position(name: str) -> tuple[int, int]:
    """(timeline, segment number) of a 24-hex WAL file name."""
    if not _WAL_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a WAL file name")
    timeline, log, seg = int(name[:8], 16), int(name[8:16], 16), int(name[16:], 16)
    if seg >= SEGMENTS_PER_LOG:
        raise ValueError(f"{name}: segment {seg:#x} does not exist with 16 MiB segments")
    return timeline, log * SEGMENTS_PER_LOG + seg


def wal_file_name(timeline: int, segno: int) -> str:
    return f"{timeline:08X}{segno // SEGMENTS_PER_LOG:08X}{segno % SEGMENTS_PER_LOG:08X}"


def lsn_segno(lsn: str) -> int:
    """The segment number holding an LSN written ``X/Y``."""
    high, sep, low = lsn.partition("/")
    if not sep:
        raise ValueError(f"{lsn!r} is not an LSN")
    return ((int(high, 16) << 32) | int(low, 16)) // WAL_SEGMENT_SIZE


# -- WAL content --------------------------------------------------------------------------------

@dataclass(frozen=True)
class WalTimes:
    """What one WAL segment says about itself: where it is, and its commit/abort times."""

    timeline: int
    segno: int
    first_commit: datetime | None
    last_commit: datetime | None
    commits: int
    #: the timelines its page headers carry, in page order, each once (a segment that opens a
    #: timeline starts with its parent's pages: PostgreSQL copies them up to the switch)
    page_timelines: tuple[int, ...] = ()
    #: the timelines that end-of-recovery or shutdown-checkpoint records in it switch to
    switches_to: tuple[int, ...] = ()


_PAGE = struct.Struct("<HHIQI")      # magic, info, timeline, page address, remaining length
_LONG = struct.Struct("<QII")        # system id, segment size, block size
_RECORD = struct.Struct("<IIQBB")    # total length, xid, previous, info, resource manager
_XLP_LONG_HEADER = 0x0002
_RM_XLOG = 0
_RM_XACT = 1
#: commit, abort, commit prepared, abort prepared: the records recovery_target_time stops at
_XACT_STOPS = frozenset({0x00, 0x20, 0x30, 0x40})
#: XLOG_CHECKPOINT_SHUTDOWN and XLOG_END_OF_RECOVERY: both carry ThisTimeLineID and
#: PrevTimeLineID at bytes 8..16 of their main data; one of them opens every new timeline
_XLOG_TIMELINE_RECORDS = frozenset({0x00, 0x90})


def _align(n: int) -> int:
    return (n + 7) & ~7


def _main_data(record: bytes, total: int) -> bytes | None:
    """The main data of a record, or None when the bytes that hold it are not in ``record``
    (a record cut by the segment's end) or its block headers cannot be walked."""
    pos = 24  # after the XLogRecord header (padding and xl_crc follow _RECORD's fields)
    main = 0
    try:
        while pos < total:
            block = record[pos]
            pos += 1
            if block == 255:
                main = record[pos]
                break
            if block == 254:
                main = struct.unpack_from("<I", record, pos)[0]
                break
            if block == 253:
                pos += 2
            elif block == 252:
                pos += 4
            elif block <= 32:
                flags = record[pos]
                pos += 3
                if flags & 0x10:  # BKPBLOCK_HAS_IMAGE
                    info = record[pos + 4]
                    pos += 5
                    if info & 0x01 and info & 0x1C:  # a hole in a compressed image
                        pos += 2
                if not flags & 0x80:  # BKPBLOCK_SAME_REL
                    pos += 12
                pos += 4
            else:
                return None
    except IndexError:
        return None
    start = total - main
    if main < 8 or start + 8 > len(record):
        return None
    return record[start:start + main]


def _xact_time(record: bytes, total: int) -> int | None:
    """The xact_time (microseconds since 2000-01-01) of a commit/abort record."""
    main = _main_data(record, total)
    if main is None:
        return None
    value: int = struct.unpack_from("<q", main, 0)[0]
    return value


def _switched_to(record: bytes, total: int) -> int | None:
    """The timeline a shutdown checkpoint or end-of-recovery record switches to, if it does."""
    main = _main_data(record, total)
    if main is None or len(main) < 16:
        return None
    this, previous = struct.unpack_from("<II", main, 8)
    return int(this) if this != previous else None


def read_wal(raw: bytes) -> WalTimes:
    """Walk the records of one (uncompressed) WAL segment and collect its commit times."""
    if len(raw) < 40:
        raise ValueError("too short to be a WAL segment")
    magic, info, timeline, address, remaining = _PAGE.unpack_from(raw, 0)
    if not info & _XLP_LONG_HEADER:
        raise ValueError("the first page has no long header")
    _, segment_size, block_size = _LONG.unpack_from(raw, 24)
    if segment_size != WAL_SEGMENT_SIZE:
        raise ValueError(f"WAL segments of {segment_size} bytes are not supported (16 MiB only)")
    if len(raw) != segment_size or block_size <= 0 or segment_size % block_size:
        raise ValueError(f"{len(raw)} bytes: not a whole {segment_size}-byte WAL segment")
    pages: list[bytes] = []
    page_timelines: list[int] = []
    for offset in range(0, len(raw), block_size):
        page_magic, page_info, page_timeline = struct.unpack_from("<HHI", raw, offset)
        if page_magic != magic:
            break
        if page_timelines and page_timeline < page_timelines[-1]:
            # PostgreSQL's own reader refuses this ("out-of-sequence timeline ID")
            raise ValueError(f"page at {offset:#x} goes back from timeline "
                             f"{page_timelines[-1]} to {page_timeline}")
        if not page_timelines or page_timeline != page_timelines[-1]:
            page_timelines.append(page_timeline)
        header = 40 if page_info & _XLP_LONG_HEADER else 24
        pages.append(raw[offset + header:offset + block_size])
    data = b"".join(pages)
    pos = _align(remaining)
    first: int | None = None
    last: int | None = None
    commits = 0
    switches: list[int] = []
    while pos + _RECORD.size <= len(data):
        total, _, _, record_info, rmid = _RECORD.unpack_from(data, pos)
        if total < 24:
            break  # zeros after a switch or at the end of what was written
        if rmid == _RM_XACT and record_info & 0x70 in _XACT_STOPS:
            moment = _xact_time(data[pos:pos + total], total)
            if moment is not None:
                commits += 1
                first = moment if first is None else min(first, moment)
                last = moment if last is None else max(last, moment)
        elif rmid == _RM_XLOG and record_info & 0xF0 in _XLOG_TIMELINE_RECORDS:
            switched = _switched_to(data[pos:pos + total], total)
            if switched is not None and switched not in switches:
                switches.append(switched)
        pos = _align(pos + total)
    return WalTimes(timeline, address // segment_size, _pg_time(first), _pg_time(last), commits,
                    tuple(page_timelines), tuple(switches))


def timeline_problem(name_timeline: int, times: WalTimes) -> str | None:
    """Why a segment named for ``name_timeline`` cannot be one, or None.

    The segment that opens a timeline starts with its parent's pages (PostgreSQL copies the
    parent's segment up to the switch point, page headers included), so a page may carry an
    older timeline than the name. It is accepted only when the segment itself shows the
    switch: a page of the name's timeline after them, or the record that opens it. Which
    parent is right is the timeline history's to say (engine.windows follows a timeline only
    through its history, at its switch segment)."""
    pages = times.page_timelines or (times.timeline,)
    if pages[-1] > name_timeline:
        return f"holds timeline {pages[-1]} pages, not what its name says ({name_timeline})"
    if pages[0] == name_timeline:
        return None
    if pages[-1] == name_timeline or name_timeline in times.switches_to:
        return None
    return (f"holds timeline {pages[0]} segment {times.segno}, not what its name says "
            f"(timeline {name_timeline}), and nothing in it opens timeline {name_timeline}")


def _pg_time(value: int | None) -> datetime | None:
    return None if value is None else PG_EPOCH + timedelta(microseconds=value)


# -- timeline histories -----------------------------------------------------------------------

def parse_history(text: str) -> tuple[int, str]:
    """The parent timeline and switch LSN of a ``.history`` file (its last entry)."""
    entries = [line.split() for line in text.splitlines()
               if line.strip() and not line.lstrip().startswith("#")]
    if not entries or len(entries[-1]) < 2:
        raise ValueError("no timeline entry")
    parent, lsn = int(entries[-1][0]), entries[-1][1]
    lsn_segno(lsn)  # validates
    return parent, lsn


_STOPPED_AT = re.compile(r"\b(?:before|after) (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?"
                         r"[+-]\d\d(?::?\d\d)?)\s*$")


def history_switch_time(text: str) -> datetime | None:
    """When the timeline a ``.history`` file opens branched off, if its last entry says: a
    recovery to a time records the commit it stopped at ("before 2026-12-06 13:52:59.1+00"),
    exactly where the old timeline's data and the new one's part. None for other reasons
    ("no recovery target specified", an xid, a name, an LSN)."""
    lines = [line for line in text.splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    match = _STOPPED_AT.search(lines[-1]) if lines else None
    if match is None:
        return None
    try:
        return datetime.fromisoformat(match[1]).astimezone(UTC)
    except ValueError:
        return None


# -- items -----------------------------------------------------------------------------------

def log_item_id(timeline: int, segno: int) -> str:
    return f"log/{timeline}/{segno:010d}"


def stream_position(name: str) -> tuple[str, int] | None:
    """(stream, seq) of a WAL file name as layouts number log segments: the timeline and
    the segment number; None when the name is no WAL file name."""
    try:
        timeline, segno = wal_position(name)
    except ValueError:
        return None
    return str(timeline), segno


def wal_item_id(name: str) -> str:
    """The item id of the segment a WAL file name names (ValueError if it names none)."""
    return log_item_id(*wal_position(name))


def stored_extension(key: str) -> str:
    """The compression suffix of a stored WAL object (``.gz``), or "" (a suffix is whatever
    follows the first dot of the file name: WAL names have none)."""
    name = key.rsplit("/", 1)[-1]
    return name[name.index("."):] if "." in name else ""


def segment_item(marker: ObjectInfo, ref: ObjectRef, raw: bytes, timeline: int,
                 segno: int) -> BackupItem:
    """The log item of a WAL segment from its plain bytes and the position its name gives:
    its commit times are the item's times. Refused (CorruptBackup) when its pages hold
    another segment, or a timeline the name does not allow."""
    try:
        times = read_wal(raw)
    except ValueError as exc:
        raise CorruptBackup(marker.key, str(exc)) from None
    except (IndexError, struct.error, OverflowError):
        raise CorruptBackup(marker.key, "not a readable WAL segment") from None
    if times.segno != segno:
        raise CorruptBackup(marker.key, f"holds timeline {times.timeline} segment "
                            f"{times.segno}, not what its name says")
    problem = timeline_problem(timeline, times)
    if problem is not None:
        raise CorruptBackup(marker.key, problem)
    # A segment opening its timeline names the parent its first pages carry.
    opened = times.page_timelines[0] if times.page_timelines else timeline
    return BackupItem(
        kind=ItemKind.LOG, item_id=log_item_id(timeline, segno),
        start_time=times.first_commit or NO_COMMIT, end_time=times.last_commit or NO_COMMIT,
        stream=str(timeline), seq=segno, payload=(), marker=ref,
        completed_at=marker.last_modified,
        parent=str(opened) if opened != timeline else "")


def history_item(marker: ObjectInfo, ref: ObjectRef, data: bytes,
                 timeline: int) -> BackupItem:
    """The history item of ``timeline`` from its plain ``.history`` bytes."""
    try:
        text = data.decode("utf-8")
        parent, lsn = parse_history(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptBackup(marker.key, f"unreadable timeline history: {exc}") from None
    if not 0 < parent < timeline:
        raise CorruptBackup(marker.key, f"timeline {timeline} cannot branch off {parent}")
    # The commit a recovery to a time stopped at is where the timelines part; otherwise the
    # moment the file was archived (the promotion) stands for the switch.
    stopped = history_switch_time(text)
    switched = min(stopped, marker.last_modified) if stopped else marker.last_modified
    return BackupItem(
        kind=ItemKind.HISTORY, item_id=f"history/{timeline}",
        start_time=switched, end_time=switched,
        stream=str(timeline), seq=lsn_segno(lsn), payload=(), marker=ref,
        completed_at=marker.last_modified, parent=str(parent))

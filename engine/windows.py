"""Restorable windows: which points in time a region can restore, from what it holds."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from engine.catalog import Catalog
from engine.model import ItemKind, ItemStatus, RegionRole, RestoreWindow, TimeRange

#: Items that are really there and whole: published copies, and copies kept after a disable.
RESTORABLE_STATUSES = (ItemStatus.AVAILABLE, ItemStatus.RETAINED)


@dataclass(frozen=True)
class BaseMark:
    """A complete base backup: consistent at ``end_time``, replay from ``log_start_seq``."""

    end_time: datetime
    stream: str
    log_start_seq: int


@dataclass(frozen=True)
class SegmentMark:
    stream: str
    seq: int
    end_time: datetime


def restorable_intervals(bases: Iterable[BaseMark],
                         segments: Iterable[SegmentMark]) -> tuple[TimeRange, ...]:
    """Each base backup restores from its end time up to the end of the unbroken run of log
    segments that follows it; a missing segment ends the run. Overlapping runs merge."""
    by_stream: dict[str, dict[int, datetime]] = {}
    for seg in segments:
        by_stream.setdefault(seg.stream, {})[seg.seq] = seg.end_time
    intervals: list[TimeRange] = []
    for base in sorted(bases, key=lambda b: (b.end_time, b.stream, b.log_start_seq)):
        ends = by_stream.get(base.stream, {})
        end, seq = base.end_time, base.log_start_seq
        while seq in ends:
            end = max(end, ends[seq])
            seq += 1
        intervals.append(TimeRange(base.end_time, end))
    merged: list[TimeRange] = []
    for piece in sorted(intervals, key=lambda r: (r.start, r.end)):
        if merged and piece.start <= merged[-1].end:
            if piece.end > merged[-1].end:
                merged[-1] = TimeRange(merged[-1].start, piece.end)
        else:
            merged.append(piece)
    return tuple(merged)


def window_of(region: str, role: RegionRole, bases: Iterable[BaseMark],
              segments: Iterable[SegmentMark]) -> RestoreWindow:
    return RestoreWindow(region, role, restorable_intervals(bases, segments))


def window_from_catalog(catalog: Catalog, service: str, region: str,
                        role: RegionRole) -> RestoreWindow:
    """The window of ``region`` from the items the catalog lists as available there."""
    bases: list[BaseMark] = []
    segments: list[SegmentMark] = []
    for row in catalog.items(service, region, statuses=RESTORABLE_STATUSES):
        if row.kind == ItemKind.BASE:
            bases.append(BaseMark(row.end_time, row.stream, row.seq))
        else:
            segments.append(SegmentMark(row.stream, row.seq, row.end_time))
    return window_of(region, role, bases, segments)

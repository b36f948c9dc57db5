"""Restorable windows: which points in time a region can restore, from what it holds.

A base backup restores from its end time up to the end of the unbroken chain of log segments
that follows it: contiguous sequence numbers within a stream (a timeline, a server id), and a
switch to a child stream only where that stream's history says it branches off. A missing
segment ends the chain; the window resumes only at the next base backup after the gap.

The chain is walked over *runs* (maximal contiguous stretches of segments), so the cost is in
the number of base backups, gaps and switches, not in the number of segments.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from engine.catalog import RESTORABLE, Catalog, LogRun
from engine.model import ItemKind, RegionRole, RestoreWindow, TimeRange

#: Items that are really there and whole: published copies, and copies kept after a disable.
RESTORABLE_STATUSES = RESTORABLE


@dataclass(frozen=True)
class BaseMark:
    """A complete base backup: consistent at ``end_time``, replay from ``log_start_seq``."""

    end_time: datetime
    stream: str
    log_start_seq: int
    item_id: str = ""


@dataclass(frozen=True)
class SegmentMark:
    stream: str
    seq: int
    end_time: datetime
    start_time: datetime | None = None


@dataclass(frozen=True)
class StreamSwitch:
    """``stream`` continues ``parent``'s chain from ``switch_seq`` on (a history file)."""

    stream: str
    parent: str
    switch_seq: int


@dataclass(frozen=True)
class ChainPiece:
    """Segments ``first_seq``..``last_seq`` of ``stream`` on the path of a chain."""

    stream: str
    first_seq: int
    last_seq: int


@dataclass(frozen=True)
class Chain:
    base: BaseMark
    end: datetime
    pieces: tuple[ChainPiece, ...]


class RunIndex:
    """Runs per stream, searchable by sequence number."""

    def __init__(self, runs: Iterable[LogRun]) -> None:
        self._runs: dict[str, list[LogRun]] = {}
        for run in sorted(runs, key=lambda r: (r.stream, r.first_seq)):
            self._runs.setdefault(run.stream, []).append(run)
        self._firsts = {s: [r.first_seq for r in rs] for s, rs in self._runs.items()}

    def containing(self, stream: str, seq: int) -> LogRun | None:
        firsts = self._firsts.get(stream)
        if not firsts:
            return None
        index = bisect.bisect_right(firsts, seq) - 1
        if index < 0:
            return None
        run = self._runs[stream][index]
        return run if run.last_seq >= seq else None


def runs_of(segments: Iterable[SegmentMark]) -> list[LogRun]:
    """Fold segments into maximal contiguous runs per stream."""
    runs: list[LogRun] = []
    for seg in sorted(segments, key=lambda s: (s.stream, s.seq)):
        last = runs[-1] if runs else None
        if last and last.stream == seg.stream and last.last_seq == seg.seq - 1:
            runs[-1] = LogRun(seg.stream, last.first_seq, seg.seq, last.first_start,
                              max(last.last_end, seg.end_time))
        elif last and last.stream == seg.stream and last.last_seq >= seg.seq:
            continue  # a duplicate
        else:
            runs.append(LogRun(seg.stream, seg.seq, seg.seq, seg.start_time or seg.end_time,
                               seg.end_time))
    return runs


def follow_chain(base: BaseMark, runs: RunIndex,
                 switches: Sequence[StreamSwitch]) -> Chain:
    """Walk from a base backup through contiguous segments and recorded stream switches."""
    stream, seq, end = base.stream, base.log_start_seq, base.end_time
    pieces: list[ChainPiece] = []
    seen: set[tuple[str, int]] = set()
    while (stream, seq) not in seen:
        seen.add((stream, seq))
        run = runs.containing(stream, seq)
        if run is None:
            break
        # The earliest switch off this stream inside the run (or right after it) whose child
        # stream really continues there.
        candidates = sorted(
            (s for s in switches
             if s.parent == stream and seq <= s.switch_seq <= run.last_seq + 1
             and runs.containing(s.stream, s.switch_seq) is not None),
            key=lambda s: (s.switch_seq, s.stream))
        if candidates:
            switch = candidates[0]
            if switch.switch_seq > seq:
                pieces.append(ChainPiece(stream, seq, switch.switch_seq - 1))
            stream, seq = switch.stream, switch.switch_seq
            continue
        pieces.append(ChainPiece(stream, seq, run.last_seq))
        end = max(end, run.last_end)
        seq = run.last_seq + 1
    return Chain(base, end, tuple(pieces))


def chains(bases: Iterable[BaseMark], runs: Iterable[LogRun],
           switches: Iterable[StreamSwitch] = ()) -> list[Chain]:
    """The chain of every base backup, in order of base end time."""
    index, switch_list = RunIndex(runs), list(switches)
    ordered = sorted(bases, key=lambda b: (b.end_time, b.stream, b.log_start_seq, b.item_id))
    return [follow_chain(base, index, switch_list) for base in ordered]


def merge_intervals(pieces: Iterable[TimeRange]) -> tuple[TimeRange, ...]:
    merged: list[TimeRange] = []
    for piece in sorted(pieces, key=lambda r: (r.start, r.end)):
        if merged and piece.start <= merged[-1].end:
            if piece.end > merged[-1].end:
                merged[-1] = TimeRange(merged[-1].start, piece.end)
        else:
            merged.append(piece)
    return tuple(merged)


def restorable_intervals(bases: Iterable[BaseMark], segments: Iterable[SegmentMark],
                         switches: Iterable[StreamSwitch] = ()) -> tuple[TimeRange, ...]:
    """The restorable intervals given base backups, segments and stream switches."""
    return intervals_of(chains(bases, runs_of(segments), switches))


def window_of(region: str, role: RegionRole, bases: Iterable[BaseMark],
              segments: Iterable[SegmentMark],
              switches: Iterable[StreamSwitch] = ()) -> RestoreWindow:
    return RestoreWindow(region, role, restorable_intervals(bases, segments, switches))


def chain_inputs(catalog: Catalog, service: str,
                 region: str) -> tuple[list[BaseMark], list[LogRun], list[StreamSwitch]]:
    """Base backups, log runs and stream switches restorable in a region, from the catalog."""
    bases: list[BaseMark] = []
    switches: list[StreamSwitch] = []
    for kind in (ItemKind.BASE, ItemKind.HISTORY):
        for row in catalog.items(service, region, statuses=RESTORABLE, kind=kind):
            if kind == ItemKind.BASE:
                bases.append(BaseMark(row.end_time, row.stream, row.seq, row.item_id))
            else:
                switches.append(StreamSwitch(row.stream, row.parent, row.seq))
    return bases, catalog.runs(service, region), switches


def window_from_catalog(catalog: Catalog, service: str, region: str,
                        role: RegionRole) -> RestoreWindow:
    """The window of ``region`` from what the catalog lists as restorable there."""
    bases, runs, switches = chain_inputs(catalog, service, region)
    return RestoreWindow(region, role, intervals_of(chains(bases, runs, switches)))


def intervals_of(found: Iterable[Chain]) -> tuple[TimeRange, ...]:
    return merge_intervals(TimeRange(c.base.end_time, c.end) for c in found)

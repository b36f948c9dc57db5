"""Restorable windows: which points in time a region can restore, from what it holds.

A base backup restores from its end time up to the end of the unbroken chain of log segments
that follows it: contiguous sequence numbers within a stream (a timeline, a server id), and a
switch to a child stream only where that stream's history says it branches off. A missing
segment ends the chain; the window resumes only at the next base backup after the gap.

Chains follow one timeline's history, as recovery does: by default the latest timeline
(PostgreSQL's ``recovery_target_timeline = 'latest'``), whose ancestors count only up to where
it branched off them. What an abandoned branch holds after that point is restorable only
along that branch, when asked for (engine.timelines shows every branch).

The chain is walked over *runs* (maximal contiguous stretches of segments), so the cost is in
the number of base backups, gaps and switches, not in the number of segments.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from engine.catalog import RESTORABLE, Catalog, ChainMark, LogRun
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
    #: when the switch happened, as its history says (PostgreSQL's: when it was archived)
    at: datetime | None = None


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
    #: the timeline (stream) this chain was followed along
    timeline: str = ""


_FIRST_SEQ = operator.attrgetter("first_seq")


class RunIndex:
    """Runs per stream, searchable by sequence number."""

    def __init__(self, runs: Iterable[LogRun]) -> None:
        self._runs: dict[str, list[LogRun]] = {}
        for run in runs:
            self._runs.setdefault(run.stream, []).append(run)
        for listed in self._runs.values():
            # `btar status` makes an index per region, of a run or two each: a stream of one
            # run is in order as it is (the catalog's runs come in order anyway)
            if len(listed) > 1:
                listed.sort(key=_FIRST_SEQ)
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


@dataclass(frozen=True)
class PathStep:
    """One timeline on the history recovery follows: its segments count up to ``until``
    (exclusive; the next timeline's switch segment), all of them on the last step."""

    stream: str
    until: int | None = None
    #: when the path leaves this stream for the next one (None: unknown or last)
    left_at: datetime | None = None


Path = tuple[PathStep, ...]


def ancestry(timeline: str, switches: Iterable[StreamSwitch]) -> Path:
    """The history recovery follows to reach ``timeline``: its ancestors, oldest first, each
    up to where its child branches off (what PostgreSQL reads from the .history files)."""
    parents = {s.stream: s for s in sorted(switches, key=lambda s: (s.stream, s.parent))}
    steps = [PathStep(timeline)]
    seen = {timeline}
    current = timeline
    while current in parents and parents[current].parent not in seen:
        switch = parents[current]
        steps.append(PathStep(switch.parent, switch.switch_seq, switch.at))
        current = switch.parent
        seen.add(current)
    return tuple(reversed(steps))


def _numeric(stream: str) -> int:
    return int(stream) if stream.isdigit() else -1


def latest_timeline(switches: Iterable[StreamSwitch]) -> str | None:
    """The timeline recovery follows by default: the newest leaf of the history (no stream
    branches off it). Among several leaves, the highest number (PostgreSQL's
    ``recovery_target_timeline = 'latest'``), then the newest switch (server ids are not in
    time order, but a chain of failovers has one leaf). None when no history is known: each
    base backup then follows its own stream."""
    listed = list(switches)
    parents = {s.parent for s in listed}
    leaves = [s for s in listed if s.stream not in parents] or listed
    newest = max(leaves, default=None,
                 key=lambda s: (_numeric(s.stream), s.at or datetime.min.replace(tzinfo=UTC),
                                s.stream))
    return newest.stream if newest is not None else None


#: the end time of one segment (stream, seq), when a chain leaves a stream inside a run
SegmentEnd = Callable[[str, int], datetime | None]


def follow_chain(base: BaseMark, runs: RunIndex, path: Path | None = None,
                 segment_end: SegmentEnd | None = None) -> Chain | None:
    """Walk from a base backup through contiguous segments along ``path`` (default: the
    base's own stream only). None when the base is not on the path: on another timeline, or
    on the part of an ancestor that the path leaves behind."""
    path = path or (PathStep(base.stream),)
    pieces: list[ChainPiece] = []
    end = _walk(base.stream, base.log_start_seq, base.end_time, runs, path, segment_end, pieces)
    return Chain(base, end, tuple(pieces), path[-1].stream) if end is not None else None


def _walk(stream: str, seq: int, end: datetime, runs: RunIndex, path: Path,
          segment_end: SegmentEnd | None, pieces: list[ChainPiece] | None) -> datetime | None:
    """follow_chain's walk from a base backup on ``stream``, replayed from ``seq``,
    consistent at ``end``: the end of its chain (None: the base is not on the path), its
    pieces appended to ``pieces`` when given (a window needs only the end)."""
    # the first step on the base's stream (no generator: this runs for every base of every
    # region in `btar status`)
    streams = [step.stream for step in path]
    if stream not in streams:
        return None
    index = streams.index(stream)
    until = path[index].until
    if until is not None and seq >= until:
        return None
    while True:
        step = path[index]
        run = runs.containing(stream, seq)
        if run is None:
            break
        if step.until is not None and run.last_seq >= step.until - 1:
            last = step.until - 1
            if last >= seq:
                if pieces is not None:
                    pieces.append(ChainPiece(stream, seq, last))
                known = run.last_end if last == run.last_seq else (
                    segment_end(stream, last) if segment_end is not None else None)
                end = max(end, known) if known is not None else end
            index += 1
            stream, seq = path[index].stream, step.until
            continue
        if pieces is not None:
            pieces.append(ChainPiece(stream, seq, run.last_seq))
        end = max(end, run.last_end)
        break
    return end


def chains(bases: Iterable[BaseMark], runs: Iterable[LogRun],
           switches: Iterable[StreamSwitch] = (), timeline: str | None = None,
           segment_end: SegmentEnd | None = None) -> list[Chain]:
    """The chain of every base backup on the history of ``timeline`` (default: the latest),
    in order of base end time."""
    index, path = RunIndex(runs), _path_to(list(switches), timeline)
    ordered = sorted(bases, key=lambda b: (b.end_time, b.stream, b.log_start_seq, b.item_id))
    found = (follow_chain(base, index, path, segment_end) for base in ordered)
    return [c for c in found if c is not None]


def marks_intervals(marks: Iterable[ChainMark], runs: Iterable[LogRun],
                    segment_end: SegmentEnd | None = None) -> tuple[TimeRange, ...]:
    """``intervals_of(chains(*inputs_of_marks(marks), ...))`` along the latest timeline,
    straight from the rows FleetPart.chain_marks read: without a BaseMark per base, nor a
    chain, its pieces and a range per base (`btar status` makes two thousand windows; those
    objects were most of what they cost). A window needs only where each chain ends."""
    bases, switches = _split_marks(marks)
    if not switches:
        return _own_stream_intervals(bases, runs)
    index = RunIndex(runs)
    found: list[tuple[datetime, datetime]] = []
    path = _path_to(switches)  # a history always has a latest timeline
    for base in bases:  # in any order: merging sorts them
        followed = path or (PathStep(base.stream),)
        end = _walk(base.stream, base.seq, base.end_time, index, followed, segment_end, None)
        if end is not None:
            found.append((base.end_time, end))
    return _merged(found)


#: runs looked through one by one rather than indexed (RunIndex)
_FEW_RUNS = 8


def _own_stream_intervals(bases: list[ChainMark],
                          runs: Iterable[LogRun]) -> tuple[TimeRange, ...]:
    """marks_intervals without a history: each base follows its own stream (as
    follow_chain), to the end of the run that holds the first segment it replays (_walk's
    answer on a path of one step). Most regions of a fleet are so, with a run or two: they
    are looked through, not indexed."""
    listed = runs if isinstance(runs, list) else list(runs)
    found: list[tuple[datetime, datetime]] = []
    if len(listed) > _FEW_RUNS:
        index = RunIndex(listed)
        for base in bases:
            run = index.containing(base.stream, base.seq)
            found.append((base.end_time, base.end_time if run is None
                          else max(base.end_time, run.last_end)))
        return _merged(found)
    for base in bases:
        stream, seq, end = base.stream, base.seq, base.end_time
        for run in listed:
            if run.stream == stream and run.first_seq <= seq <= run.last_seq:
                if run.last_end > end:
                    end = run.last_end
                break
        found.append((base.end_time, end))
    return _merged(found)


def _path_to(switches: list[StreamSwitch], timeline: str | None = None) -> Path | None:
    """The history of ``timeline`` (default: the latest); None without stream switches."""
    target = timeline or latest_timeline(switches)
    return ancestry(target, switches) if target is not None else None


def merge_intervals(pieces: Iterable[TimeRange]) -> tuple[TimeRange, ...]:
    return _merged([(piece.start, piece.end) for piece in pieces])


def _merged(pieces: list[tuple[datetime, datetime]]) -> tuple[TimeRange, ...]:
    """merge_intervals of (start, end) pairs: a TimeRange is made per merged interval
    only."""
    pieces.sort()  # by start, then end
    merged: list[tuple[datetime, datetime]] = []
    for start, end in pieces:
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return tuple([TimeRange(start, end) for start, end in merged])


def restorable_intervals(bases: Iterable[BaseMark], segments: Iterable[SegmentMark],
                         switches: Iterable[StreamSwitch] = (),
                         timeline: str | None = None) -> tuple[TimeRange, ...]:
    """The restorable intervals given base backups, segments and stream switches, along
    ``timeline`` (default: the latest)."""
    listed = list(segments)
    ends = {(s.stream, s.seq): s.end_time for s in listed}
    return intervals_of(chains(bases, runs_of(listed), switches, timeline,
                               lambda stream, seq: ends.get((stream, seq))))


def window_of(region: str, role: RegionRole, bases: Iterable[BaseMark],
              segments: Iterable[SegmentMark], switches: Iterable[StreamSwitch] = (),
              timeline: str | None = None) -> RestoreWindow:
    return RestoreWindow(region, role, restorable_intervals(bases, segments, switches,
                                                            timeline))


#: what a region's chains are computed from: base backups, log runs, stream switches
ChainInputs = tuple[list[BaseMark], list[LogRun], list[StreamSwitch]]


def chain_inputs(catalog: Catalog, service: str, region: str) -> ChainInputs:
    """Base backups, log runs and stream switches restorable in a region, from the catalog
    (the region's part of the fleet read, FleetPart.chain_marks)."""
    bases, switches = inputs_of_marks(catalog.chain_marks(service).get((service, region), []))
    return bases, catalog.runs(service, region), switches


def inputs_of_marks(marks: Iterable[ChainMark]) -> tuple[list[BaseMark], list[StreamSwitch]]:
    """chain_inputs' bases and switches from the rows FleetPart.chain_marks read (the same
    items, in the same order)."""
    marked, switches = _split_marks(marks)
    return [BaseMark(m.end_time, m.stream, m.seq, m.item_id) for m in marked], switches


def _split_marks(marks: Iterable[ChainMark]) -> tuple[list[ChainMark], list[StreamSwitch]]:
    """The base backups' rows, and the stream switches the histories' rows describe."""
    bases: list[ChainMark] = []
    switches: list[StreamSwitch] = []
    for mark in marks:
        if mark.kind == ItemKind.BASE:
            bases.append(mark)
        else:
            switches.append(StreamSwitch(mark.stream, mark.parent, mark.seq, mark.start_time))
    return bases, switches


def segment_end_of(catalog: Catalog, service: str, region: str) -> SegmentEnd:
    """The end time of one restorable segment, read from the catalog."""
    def end(stream: str, seq: int) -> datetime | None:
        rows = catalog.log_items(service, region, stream, seq, seq)
        return rows[0].end_time if rows and rows[0].kind == ItemKind.LOG else None
    return end


def catalog_chains(catalog: Catalog, service: str, region: str,
                   timeline: str | None = None) -> list[Chain]:
    """The chains restorable in ``region`` along ``timeline`` (default: the latest)."""
    bases, runs, switches = chain_inputs(catalog, service, region)
    return chains(bases, runs, switches, timeline, segment_end_of(catalog, service, region))


def window_from_catalog(catalog: Catalog, service: str, region: str, role: RegionRole,
                        timeline: str | None = None) -> RestoreWindow:
    """The window of ``region`` from what the catalog lists as restorable there, along
    ``timeline`` (default: the latest, the history recovery follows unless told)."""
    return RestoreWindow(region, role,
                         intervals_of(catalog_chains(catalog, service, region, timeline)))


def intervals_of(found: Iterable[Chain]) -> tuple[TimeRange, ...]:
    return _merged([(c.base.end_time, c.end) for c in found])

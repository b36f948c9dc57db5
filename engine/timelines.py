"""Timelines (PostgreSQL) and server-id switches (MySQL) as windows show them: the history
recovery follows by default, the timeline of each stretch of its window, and every other
branch with the window it has when followed explicitly (``btar fork --timeline N``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.catalog import Catalog
from engine.errors import UnknownName
from engine.model import RegionRole, RestoreWindow, TimeRange, iso
from engine.windows import (
    BaseMark,
    Path,
    StreamSwitch,
    ancestry,
    chain_inputs,
    chains,
    intervals_of,
    latest_timeline,
    segment_end_of,
)


@dataclass(frozen=True)
class TimelineRange:
    """A stretch of a window and the timeline whose WAL (or binlog) restores it."""

    start: datetime
    end: datetime
    timeline: str


@dataclass(frozen=True)
class Branch:
    """One timeline and the window recovery along it has."""

    timeline: str
    #: the timeline it branched off ("" for a root) at segment ``switch_seq``, time ``switch_at``
    parent: str
    switch_seq: int | None
    switch_at: datetime | None
    #: recovery follows it unless told otherwise (the latest timeline)
    followed: bool
    intervals: tuple[TimelineRange, ...]


@dataclass(frozen=True)
class TimelineView:
    """The window of a region along the followed timeline, and every branch."""

    window: RestoreWindow
    #: the followed timeline ("" when no history is known: each backup follows its stream)
    followed: str
    intervals: tuple[TimelineRange, ...]
    branches: tuple[Branch, ...]

    def branch(self, timeline: str) -> Branch | None:
        return next((b for b in self.branches if b.timeline == timeline), None)


def timelines_of(bases: Iterable[BaseMark], switches: Iterable[StreamSwitch]) -> list[str]:
    """Every timeline known from base backups and histories, oldest first."""
    found: set[str] = set()
    for base in bases:
        found.add(base.stream)
    for switch in switches:
        found.update((switch.stream, switch.parent))
    return sorted(found, key=lambda s: (int(s) if s.isdigit() else -1, s))


def label(intervals: Iterable[TimeRange], path: Path) -> tuple[TimelineRange, ...]:
    """Split a window's intervals where its path switches timeline (at the switch times the
    histories give)."""
    cuts = [(step.left_at, path[i + 1].stream) for i, step in enumerate(path[:-1])
            if step.left_at is not None]
    first = path[0].stream if path else ""
    labelled: list[TimelineRange] = []
    for interval in intervals:
        start, current = interval.start, first
        for at, child in cuts:
            if at <= start:
                current = child
            elif at < interval.end:
                labelled.append(TimelineRange(start, at, current))
                start, current = at, child
        labelled.append(TimelineRange(start, interval.end, current))
    return tuple(labelled)


def timeline_view(catalog: Catalog, service: str, region: str,
                  role: RegionRole) -> TimelineView:
    """The window of ``region`` along the latest timeline, with every branch."""
    bases, runs, switches = chain_inputs(catalog, service, region)
    segment_end = segment_end_of(catalog, service, region)
    followed = latest_timeline(switches)
    by_stream = {s.stream: s for s in switches}
    branches: list[Branch] = []
    window = RestoreWindow(region, role)
    intervals: tuple[TimelineRange, ...] = ()
    for timeline in timelines_of(bases, switches) if followed is not None else []:
        path = ancestry(timeline, switches)
        found = intervals_of(chains(bases, runs, switches, timeline, segment_end))
        switch = by_stream.get(timeline)
        labelled = label(found, path)
        branches.append(Branch(timeline, switch.parent if switch else "",
                               switch.switch_seq if switch else None,
                               switch.at if switch else None, timeline == followed, labelled))
        if timeline == followed:
            window, intervals = RestoreWindow(region, role, found), labelled
    if followed is None:
        found = intervals_of(chains(bases, runs, switches, None, segment_end))
        window = RestoreWindow(region, role, found)
        streams = {b.stream for b in bases}
        only = next(iter(streams)) if len(streams) == 1 else ""
        intervals = tuple(TimelineRange(r.start, r.end, only) for r in found)
    return TimelineView(window, followed or "", intervals, tuple(branches))


def known_timelines(catalog: Catalog, service: str, region: str) -> list[str]:
    bases, _, switches = chain_inputs(catalog, service, region)
    return timelines_of(bases, switches)


def check_timeline(catalog: Catalog, service: str, region: str, timeline: str) -> None:
    """A timeline asked for must be one the region's copy knows."""
    known = known_timelines(catalog, service, region)
    if timeline not in known:
        raise UnknownName(f"timeline of {service} in {region}", timeline, known)


def branch_hint(view: TimelineView, target: datetime) -> str:
    """Which other branch holds ``target``, as a hint for a refused fork ("" when none)."""
    for branch in view.branches:
        if branch.followed:
            continue
        if any(r.start <= target <= r.end for r in branch.intervals):
            return (f"{iso(target)} is on timeline {branch.timeline}, which recovery does not "
                    f"follow by default (it follows {view.followed}); fork with --timeline "
                    f"{branch.timeline} to restore it")
    return ""


def _ranges(ranges: Iterable[TimelineRange]) -> list[dict[str, str]]:
    return [{"start": iso(r.start), "end": iso(r.end), "timeline": r.timeline} for r in ranges]


def view_as_json(window: dict[str, Any], view: TimelineView) -> dict[str, Any]:
    """A region's window as JSON (``window``: the RestoreWindow's own fields), each interval
    with its timeline, the timeline followed, and every branch with its own window."""
    return {**window, "timeline": view.followed or None, "intervals": _ranges(view.intervals),
            "branches": [{"timeline": b.timeline, "parent": b.parent or None,
                          "switch_seq": b.switch_seq,
                          "switch_at": iso(b.switch_at) if b.switch_at else None,
                          "followed": b.followed, "intervals": _ranges(b.intervals)}
                         for b in view.branches]}

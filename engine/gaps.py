"""Holes: what cuts a region's window along the timeline recovery follows, and what the
layout reader refused to describe. `btar check` reports them and `btar sync --once --strict`
fails on them, each with the stretch of time it leaves unrestorable.

A hole is a log segment missing from a region where its chain needs it: a chain stops at it
while later segments of the same timeline (or a later timeline of the path) are there. A
segment not copied yet is backlog, not a hole (its item exists in the region).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime

from engine.catalog import Catalog, EventRow
from engine.errors import CorruptBackup
from engine.formats import get_layout, layout_kind
from engine.formats.base import BackupLayout
from engine.formats.pgbackrest import wal_file_name
from engine.model import Service, TimeRange, iso
from engine.windows import (
    Chain,
    ChainInputs,
    Path,
    ancestry,
    chain_inputs,
    chains,
    intervals_of,
    latest_timeline,
    segment_end_of,
)


@dataclass(frozen=True)
class Hole:
    """A segment (``stream``/``seq``) missing from ``region`` in the middle of a chain."""

    service: str
    region: str
    stream: str
    seq: int
    segment: str
    #: the last restorable point before it, and where the window resumes (None: it does not)
    cut_from: datetime
    cut_to: datetime | None
    #: why it is missing, when the layout reader refused it at the primary
    refused: str = ""

    @property
    def message(self) -> str:
        why = f"refused at the primary: {self.refused}" if self.refused else \
            "not in the region, while later segments are"
        resumes = f"until {iso(self.cut_to)}" if self.cut_to else "on (the window ends there)"
        return (f"{self.service}: {self.region} misses {self.segment} (timeline {self.stream}) "
                f"in the middle of its chain ({why}); no restorable point from "
                f"{iso(self.cut_from)} {resumes}")


@dataclass(frozen=True)
class Refusal:
    """A completion marker at the primary that the layout reader refused (an unreadable
    backup, a mislabelled or corrupt segment): not replicated, not restorable."""

    service: str
    region: str
    key: str
    item_id: str
    reason: str
    at: datetime

    @property
    def message(self) -> str:
        return (f"{self.service}: {self.item_id} at the primary ({self.region}) cannot be "
                f"read and is not replicated: {self.reason}")


def segment_name(service: Service, stream: str, seq: int) -> str:
    if layout_kind(service.layout) in ("pgbackrest", "barman-cloud") and stream.isdigit():
        return f"WAL {wal_file_name(int(stream), seq)}"
    return f"segment {stream}/{seq:010d}"


def holes(catalog: Catalog, service: Service, region: str,
          refused: dict[str, str] | None = None, inputs: ChainInputs | None = None,
          found: list[Chain] | None = None) -> list[Hole]:
    """The holes of ``region`` along the timeline recovery follows by default. ``inputs``
    and ``found``: the region's chain_inputs and catalog_chains when already read (`btar
    check` reads every region's at once, with the status)."""
    if inputs is None:
        inputs = chain_inputs(catalog, service.name, region)
    bases, runs, switches = inputs
    if found is None:
        found = chains(bases, runs, switches, None,
                       segment_end_of(catalog, service.name, region))
    window: tuple[TimeRange, ...] | None = None  # only where a hole is found
    followed = latest_timeline(switches)
    last_known: dict[str, int] = {}
    for run in runs:
        last_known[run.stream] = max(last_known.get(run.stream, run.last_seq), run.last_seq)
    result: dict[tuple[str, int], Hole] = {}
    paths: dict[str, Path] = {}  # per timeline followed: `btar check` walks every region
    for chain in found:
        timeline = followed or chain.base.stream
        path = paths.get(timeline)
        if path is None:
            path = paths[timeline] = ancestry(timeline, switches)
        streams = [step.stream for step in path]
        stream, seq = chain.base.stream, chain.base.log_start_seq
        if chain.pieces:
            stream, seq = chain.pieces[-1].stream, chain.pieces[-1].last_seq + 1
        for step, following in itertools.pairwise(path):
            if step.stream == stream and step.until == seq:
                stream = following.stream  # the chain stopped at a switch segment
        later = streams[streams.index(stream) + 1:] if stream in streams else []
        beyond = last_known.get(stream, -1) > seq or any(s in last_known for s in later)
        item_id = f"log/{stream}/{seq:010d}"
        if not beyond or (stream, seq) in result:
            continue
        if catalog.item(service.name, region, item_id) is not None:
            continue  # there, not restorable yet (being copied, failed): backlog, not a hole
        if window is None:
            window = intervals_of(found)
        resume = next((r.start for r in window if r.start > chain.end), None)
        result[(stream, seq)] = Hole(service.name, region, stream, seq,
                                     segment_name(service, stream, seq), chain.end, resume,
                                     (refused or {}).get(item_id, ""))
    return [result[k] for k in sorted(result)]


def refusals(catalog: Catalog, service: Service, since: datetime | None) -> list[Refusal]:
    """Markers the reader refused at the primary since ``since`` (None: in the last events)
    and that are still not in the catalog, newest reason per item."""
    layout = get_layout(service.layout)
    found: dict[str, Refusal] = {}
    # the errors at the primary among the service's last 500 events
    for event in catalog.recent_errors(service.name, service.region, 500):
        if since is not None and event.at < since:
            continue
        refusal = _refusal(layout, service, event)
        if refusal is not None:
            found[refusal.item_id] = refusal
    known = catalog.known_among(service.name, service.region, found)
    return [found[i] for i in sorted(found) if i not in known]


def _refusal(layout: BackupLayout, service: Service, event: EventRow) -> Refusal | None:
    key, sep, reason = event.message.partition(": ")
    if not sep:
        return None
    try:
        item_id = layout.item_id_of_marker(key)
    except CorruptBackup:  # not a marker key: another kind of error event
        return None
    return Refusal(service.name, event.region, key, item_id, reason, event.at)

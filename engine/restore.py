"""Restore planning: which base backup and which log segments restore a region to a target,
checked against the region's window (rules 5 and 6)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from engine import rules
from engine.catalog import RESTORABLE, Catalog, ItemRow
from engine.errors import BtarError, CorruptBackup, OutsideWindow, RuleViolation, UnknownName
from engine.formats.pgbackrest import wal_position
from engine.model import (
    ObjectRef,
    RegionRole,
    RestoreWindow,
    Service,
    iso,
)
from engine.timelines import branch_hint, check_timeline, timeline_view
from engine.windows import Chain, ancestry, catalog_chains, chain_inputs, intervals_of


@dataclass(frozen=True)
class PlannedSegment:
    item_id: str
    stream: str
    seq: int
    start_time: datetime
    end_time: datetime


@dataclass(frozen=True)
class RestorePlan:
    """What a fork of ``service`` in ``region`` to ``target`` needs. A copy is restored only
    where it is stored (rule 6), so ``region`` is both the source and where the fork runs."""

    service: str
    service_type: str
    layout: str
    region: str
    role: RegionRole
    #: None means "latest"
    target: datetime | None
    effective_target: datetime
    window: RestoreWindow
    base_id: str
    base_end: datetime
    segments: tuple[PlannedSegment, ...]
    histories: tuple[str, ...]
    objects: tuple[ObjectRef, ...]
    bytes_total: int
    #: for "latest" from a secondary: the primary's latest point minus this window's end
    expected_data_loss_seconds: float | None
    planned_at: datetime
    #: the timeline (stream) recovery follows: the latest unless ``timeline_asked``
    timeline: str = ""
    #: the user named the timeline (``btar fork --timeline N``)
    timeline_asked: bool = False


def window_and_chains(catalog: Catalog, service: str, region: str, role: RegionRole,
                      timeline: str | None = None) -> tuple[RestoreWindow, list[Chain]]:
    found = catalog_chains(catalog, service, region, timeline)
    return RestoreWindow(region, role, intervals_of(found)), found


def plan_restore(catalog: Catalog, service: Service, region: str, target: datetime | None,
                 now: datetime, *, source_region: str | None = None,
                 timeline: str | None = None) -> RestorePlan:
    """Plan a restore of ``service`` from the copy stored in ``region``, run in ``region``,
    along ``timeline`` (default: the latest, as recovery follows it)."""
    rules.check_restore_region(source_region or region, region)
    location = catalog.location(service.name, region)
    if location is None:
        known = [loc.region for loc in catalog.locations(service.name)]
        raise UnknownName(f"region holding backups of {service.name}", region, known)
    if timeline is not None:
        check_timeline(catalog, service.name, region, timeline)
    window, found = window_and_chains(catalog, service.name, region, location.role, timeline)
    try:
        effective = rules.check_target_in_window(window, target)
    except OutsideWindow as refusal:
        along = f" along timeline {timeline}" if timeline is not None else ""
        hint = "" if timeline is not None or target is None else branch_hint(
            timeline_view(catalog, service.name, region, location.role), target)
        raise OutsideWindow(refusal.region, refusal.target, refusal.window + along,
                            hint) from None
    chosen = max((c for c in found if c.base.end_time <= effective <= c.end),
                 key=lambda c: (c.base.end_time, c.base.item_id))
    segments = _segments_to(catalog, service.name, region, chosen, effective)
    base_row = catalog.item(service.name, region, chosen.base.item_id)
    assert base_row is not None
    objects = list(catalog.item_as_model(base_row).objects)
    histories: list[str] = []
    for history in _histories(catalog, service.name, region, chosen):
        histories.append(history.item_id)
        objects.extend(catalog.item_as_model(history).objects)
    # A day of one-minute segments is 1,440 items: their objects in a few queries, not two
    # per segment.
    refs = catalog.objects_of(service.name, region, [s.item_id for s in segments])
    for segment in segments:
        objects.extend(refs[segment.item_id])
    loss = None
    if target is None and location.role != RegionRole.PRIMARY:
        primary, _ = window_and_chains(catalog, service.name, service.region,
                                       RegionRole.PRIMARY, timeline)
        if primary.end is not None:
            loss = max(0.0, (primary.end - effective).total_seconds())
    return RestorePlan(
        service=service.name, service_type=str(service.type), layout=service.layout,
        region=region, role=location.role, target=target, effective_target=effective,
        window=window, base_id=chosen.base.item_id, base_end=chosen.base.end_time,
        segments=tuple(segments), histories=tuple(histories), objects=tuple(objects),
        bytes_total=sum(o.size for o in objects), expected_data_loss_seconds=loss,
        planned_at=now, timeline=chosen.timeline, timeline_asked=timeline is not None)


def _histories(catalog: Catalog, service: str, region: str, chain: Chain) -> list[ItemRow]:
    """The history of every timeline from the base's to the one followed: recovery reads the
    target timeline's history (and pgBackRest checks it) even when the base is already on
    that timeline."""
    _, _, switches = chain_inputs(catalog, service, region)
    path = ancestry(chain.timeline, switches)
    streams = [step.stream for step in path]
    start = streams.index(chain.base.stream) if chain.base.stream in streams else 0
    found: list[ItemRow] = []
    for stream in streams[start:]:
        row = catalog.item(service, region, f"history/{stream}")
        if row is not None and row.status in RESTORABLE:
            found.append(row)
    return found


def _segments_to(catalog: Catalog, service: str, region: str, chain: Chain,
                 target: datetime) -> list[PlannedSegment]:
    """The segments on the chain from the base up to the one that covers ``target``."""
    if target <= chain.base.end_time:
        return []
    picked: list[PlannedSegment] = []
    for piece in chain.pieces:
        covering = catalog.covering_seq(service, region, piece.stream, target)
        last = piece.last_seq if covering is None else min(piece.last_seq, covering)
        if last < piece.first_seq:
            last = piece.first_seq
        picked += [PlannedSegment(*facts) for facts in catalog.segment_facts(
            service, region, piece.stream, piece.first_seq, last)]
        if picked and picked[-1].end_time >= target:
            break
    return picked


def plan_problem(catalog: Catalog, service: Service, plan: RestorePlan) -> str | None:
    """Why a plan made earlier (and confirmed by a user) no longer holds against the catalog,
    or None when it still restores exactly what it says: every item it uses is still
    restorable in its region with the same objects, and its point is still in the window.
    A window that grew since does not invalidate it: the plan still runs to its own point."""
    if plan.service != service.name or plan.layout != service.layout:
        return f"{service.name} is no longer the service the plan was made for"
    location = catalog.location(service.name, plan.region)
    if location is None:
        return f"{plan.region} no longer holds backups of {service.name}"
    kinds = {plan.base_id: "base backup", **dict.fromkeys(plan.histories, "timeline history")}
    found: dict[str, ObjectRef] = {}
    for item_id in [plan.base_id, *plan.histories, *(s.item_id for s in plan.segments)]:
        row = catalog.item(service.name, plan.region, item_id)
        if row is None or row.status not in RESTORABLE:
            what = kinds.get(item_id, "log segment")
            state = f"it is {row.status}" if row is not None else "it is gone"
            return f"{what} {item_id} is no longer restorable in {plan.region} ({state})"
        for ref in catalog.item_as_model(row).objects:
            found[ref.key] = ref
    if found != {o.key: o for o in plan.objects}:
        return f"the objects of the plan changed in {plan.region}"
    # The plan's timeline, not the latest one: a promotion since does not change what the
    # plan restores (the fork tells recovery which timeline to follow).
    window, _ = window_and_chains(catalog, service.name, plan.region, location.role,
                                  plan.timeline or None)
    if not window.covers(plan.effective_target):
        return (f"{iso(plan.effective_target)} is no longer inside the restorable window of "
                f"{plan.region}")
    return None


class PlanChanged(RuleViolation):
    """A confirmed plan no longer holds (``reason``); nothing was run. ``replacement`` is what
    planning the same request now gives, or ``refusal`` is why nothing can be planned."""

    rule = 5

    def __init__(self, plan: RestorePlan, reason: str, replacement: RestorePlan | None,
                 refusal: BtarError | None = None) -> None:
        self.plan = plan
        self.reason = reason
        self.replacement = replacement
        self.refusal = refusal
        super().__init__(f"the confirmed plan no longer holds: {reason}; nothing was run")


class IncompleteChain(RuleViolation):
    """What a restore needs beyond the window's chain is not (yet) in the region."""

    rule = 5

    def __init__(self, region: str, what: str) -> None:
        self.region = region
        self.what = what
        super().__init__(f"{what} not in {region} yet; run `btar sync` and try again")


def supplement_consistency(catalog: Catalog, plan: RestorePlan,
                          seal: Mapping[str, Any]) -> RestorePlan:
    """What a PostgreSQL restore by its backup tool (pgBackRest, Barman Cloud) needs besides
    the window's chain: the WAL from the backup's start through its stop segment (without it
    the backup never becomes consistent), one segment past the last planned one (a commit
    record cut by a segment's end completes there), and the backups a differential or
    incremental backup refers to. ``seal`` gives the bounds (the restorer's consistency_wal)."""
    base = catalog.item(plan.service, plan.region, plan.base_id)
    assert base is not None
    try:
        _, stop = wal_position(str(seal["archive_stop"]))
        references = [str(r) for r in seal.get("references") or []]
    except (KeyError, ValueError) as error:
        raise CorruptBackup(plan.base_id, f"unreadable seal: {error}") from None
    segments = {s.item_id: s for s in plan.segments}
    consistent = catalog.log_items(plan.service, plan.region, base.stream, base.seq, stop)
    if [r.seq for r in consistent] != list(range(base.seq, stop + 1)):
        have = {r.seq for r in consistent}
        missing = [s for s in range(base.seq, stop + 1) if s not in have]
        raise IncompleteChain(plan.region, f"WAL segment(s) {missing} of backup "
                              f"{plan.base_id} (needed to make it consistent) are")
    last = max(plan.segments, key=lambda s: s.seq) if plan.segments else None
    stream, seq = (last.stream, last.seq) if last else (base.stream, stop)
    stream = _next_on_path(catalog, plan, stream, seq + 1)
    ahead = catalog.log_items(plan.service, plan.region, stream, seq + 1, seq + 1)
    if plan.target is None:
        # "latest" replays every fetched segment: one that arrived after the plan was made
        # would carry the fork past the point the plan (and its user) settled on.
        ahead = [r for r in ahead if r.start_time < plan.effective_target]
    for row in [*consistent, *ahead]:
        segments.setdefault(row.item_id, PlannedSegment(row.item_id, row.stream, row.seq,
                                                        row.start_time, row.end_time))
    ordered = sorted(segments.values(), key=lambda s: (s.seq, s.stream))
    objects = {o.key: o for o in plan.objects}
    # the files the tool rewrites in place, as mirrored into the region (engine.mirror)
    for ref in catalog.mirrored_refs(plan.service, plan.region):
        objects.setdefault(ref.key, ref)
    for segment in ordered:
        log = catalog.item(plan.service, plan.region, segment.item_id)
        assert log is not None
        for ref in catalog.item_as_model(log).objects:
            objects.setdefault(ref.key, ref)
    for label in references:
        prior = catalog.item(plan.service, plan.region, f"base/{label}")
        if prior is None or prior.status not in RESTORABLE:
            raise IncompleteChain(plan.region, f"backup {label}, which {plan.base_id} "
                                  "refers to, is")
        for ref in catalog.item_as_model(prior).objects:
            objects.setdefault(ref.key, ref)
    chosen = tuple(objects.values())
    return replace(plan, segments=tuple(ordered), objects=chosen,
                   bytes_total=sum(o.size for o in chosen))


def _next_on_path(catalog: Catalog, plan: RestorePlan, stream: str, seq: int) -> str:
    """The stream recovery reads segment ``seq`` from after ``stream``: the next timeline of
    the plan's history when ``seq`` is where that timeline branches off."""
    if not plan.timeline:
        return stream
    _, _, switches = chain_inputs(catalog, plan.service, plan.region)
    path = ancestry(plan.timeline, switches)
    for step, following in itertools.pairwise(path):
        if step.stream == stream and step.until == seq:
            return following.stream
    return stream

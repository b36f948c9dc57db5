"""Retention in the additional region: old base backups and the log segments only they need
are deleted, but never what the region's window still needs from its oldest kept base backup
on, and never the only restorable copy of a point in time (rule 7)."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from engine import rules
from engine.catalog import RESTORABLE, Catalog, ItemRow
from engine.effects import DeleteBatch, Effect, Now
from engine.errors import OnlyRestorableCopy
from engine.model import ItemKind, ItemStatus, RegionRole, RestoreWindow, Service
from engine.timelines import timelines_of
from engine.windows import (
    BaseMark,
    SegmentMark,
    StreamSwitch,
    restorable_intervals,
    window_from_catalog,
)


@dataclass(frozen=True)
class RetentionPolicy:
    """Keep at least ``keep_count`` base backups, and every one younger than ``keep_age``."""

    keep_count: int
    keep_age: timedelta | None = None


@dataclass(frozen=True)
class RetentionPlan:
    delete: tuple[str, ...]
    #: the window's start once the deletion is done (None: nothing is deleted)
    new_start: datetime | None
    reason_kept: str = ""


def plan_retention(items: list[ItemRow], policy: RetentionPolicy, now: datetime,
                   region: str, role: RegionRole,
                   others_along: Callable[[str | None], list[RestoreWindow]]) -> RetentionPlan:
    """Which items of one region can go. Pure: the decision only. ``others_along(timeline)``
    are the other regions' windows along that timeline (None: the latest)."""
    restorable = [i for i in items if i.status in RESTORABLE]
    bases = sorted((i for i in restorable if i.kind == ItemKind.BASE),
                   key=lambda i: (i.end_time, i.item_id), reverse=True)
    kept = bases[:policy.keep_count]
    if policy.keep_age is not None:
        kept += [b for b in bases[policy.keep_count:] if b.end_time >= now - policy.keep_age]
    if len(kept) == len(bases):
        return RetentionPlan((), None)
    oldest = min(kept, key=lambda b: (b.end_time, b.item_id))
    doomed = [b.item_id for b in bases if b not in kept]
    for item in restorable:
        # A log segment goes only when it ends before the oldest kept base backup and is not
        # on that backup's replay path (its stream from its start position on). Histories
        # stay: they are tiny and timelines are followed through them.
        if item.kind == ItemKind.LOG and item.end_time < oldest.end_time and not (
                item.stream == oldest.stream and item.seq >= oldest.seq):
            doomed.append(item.item_id)
    going = set(doomed)
    now_marks, then_marks = _marks(restorable), _marks(
        [i for i in restorable if i.item_id not in going])
    # What the deletion takes from the window along the latest timeline and along every
    # branch the region holds (a point on an abandoned branch is a point, rule 7).
    for timeline in (None, *timelines_of(now_marks[0], now_marks[2])):
        before = RestoreWindow(region, role, restorable_intervals(*now_marks, timeline))
        after = RestoreWindow(region, role, restorable_intervals(*then_marks, timeline))
        removed = RestoreWindow(region, role, tuple(rules.uncovered(before, [after])))
        try:
            rules.check_deletion_safe("", removed, others_along(timeline), timeline)
        except OnlyRestorableCopy as refusal:
            return RetentionPlan((), None, f"only restorable copy of {refusal.uncovered}")
    return RetentionPlan(tuple(sorted(doomed)), oldest.end_time)


def _marks(rows: list[ItemRow]) -> tuple[list[BaseMark], list[SegmentMark], list[StreamSwitch]]:
    """What windows are computed from, out of a region's restorable items."""
    bases = [BaseMark(r.end_time, r.stream, r.seq, r.item_id) for r in rows
             if r.kind == ItemKind.BASE]
    segments = [SegmentMark(r.stream, r.seq, r.end_time, r.start_time) for r in rows
                if r.kind == ItemKind.LOG]
    switches = [StreamSwitch(r.stream, r.parent, r.seq, r.start_time) for r in rows
                if r.kind == ItemKind.HISTORY]
    return bases, segments, switches


def apply_retention(catalog: Catalog, service: Service, region: str,
                    policy: RetentionPolicy) -> Generator[Effect, Any, int]:
    """Delete what the policy lets go in ``region``; returns how many items went."""
    now: datetime = yield Now()
    location = catalog.location(service.name, region)
    if location is None or region == service.region:
        return 0  # never in a primary location
    others = [loc for loc in catalog.locations(service.name) if loc.region != region]

    def others_along(timeline: str | None) -> list[RestoreWindow]:
        return [window_from_catalog(catalog, service.name, loc.region, loc.role, timeline)
                for loc in others]

    plan = plan_retention(catalog.items(service.name, region), policy, now, region,
                          location.role, others_along)
    if plan.reason_kept:
        catalog.event(now, "info", service.name, region,
                      f"retention kept old backups: {plan.reason_kept}")
    # Withdrawn first (committed), then deleted, then forgotten: an interruption anywhere
    # leaves items withdrawn, whose deletion the next pass finishes.
    catalog.withdraw_items(service.name, region, plan.delete, now, "deleted by retention")
    doomed = [row.item_id for row in catalog.items(service.name, region,
                                                   statuses=[ItemStatus.DELETING])]
    if not doomed:
        return 0
    keys = [ref.key for item_id in doomed
            for ref in sorted(catalog.item_refs(service.name, region, item_id),
                              key=lambda r: not r.is_marker)]  # markers first
    for start in range(0, len(keys), 500):
        chunk = tuple(f"{service.key_prefix}/{k}" for k in keys[start:start + 500])
        errors: tuple[str, ...] = yield DeleteBatch(region, chunk)
        if any(errors):
            catalog.event(now, "warning", service.name, region,
                          f"retention could not delete: {next(e for e in errors if e)}")
            return 0
    catalog.expire_items(service.name, region, doomed, now)
    catalog.event(now, "info", service.name, region,
                  f"retention deleted {len(doomed)} items ({len(keys)} objects); the window "
                  f"now starts at {plan.new_start}")
    return len(doomed)

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
    chain_inputs,
    chains,
    intervals_of,
    segment_end_of,
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
                   unsafe: Callable[[set[str]], str]) -> RetentionPlan:
    """Which items of one region can go. Pure: the decision only. ``unsafe(kept)`` says
    which only copy of a point in time keeping only the base backups ``kept`` would remove
    ("" when none does; see removal_check)."""
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
        # on that backup's replay path (its stream from its start position on): so it is on
        # no chain of a kept base. Histories stay: they are tiny and timelines are followed
        # through them.
        if item.kind == ItemKind.LOG and item.end_time < oldest.end_time and not (
                item.stream == oldest.stream and item.seq >= oldest.seq):
            doomed.append(item.item_id)
    refusal = unsafe({b.item_id for b in kept})
    if refusal:
        return RetentionPlan((), None, f"only restorable copy of {refusal}")
    return RetentionPlan(tuple(sorted(doomed)), oldest.end_time)


def removal_check(catalog: Catalog, service: str, region: str,
                  role: RegionRole) -> Callable[[set[str]], str]:
    """The rule 7 judge of plan_retention for one region: what keeping only some base
    backups takes from its window, along the latest timeline and along every branch it
    holds (a point on an abandoned branch is a point), is covered by another region. The
    region's window then is the chains of the kept bases (the segments deleted with the
    others are on none of them), over the log runs of the catalog."""
    bases, runs, switches = chain_inputs(catalog, service, region)
    segment_end = segment_end_of(catalog, service, region)
    others = [loc for loc in catalog.locations(service) if loc.region != region]

    def window(timeline: str | None, chosen: list[BaseMark]) -> RestoreWindow:
        return RestoreWindow(region, role, intervals_of(
            chains(chosen, runs, switches, timeline, segment_end)))

    def unsafe(kept: set[str]) -> str:
        for timeline in (None, *timelines_of(bases, switches)):
            removed = rules.uncovered(window(timeline, bases), [
                window(timeline, [b for b in bases if b.item_id in kept])])
            try:
                rules.check_deletion_safe("", RestoreWindow(region, role, tuple(removed)), [
                    window_from_catalog(catalog, service, loc.region, loc.role, timeline)
                    for loc in others], timeline)
            except OnlyRestorableCopy as refusal:
                return refusal.uncovered
        return ""

    return unsafe


def apply_retention(catalog: Catalog, service: Service, region: str,
                    policy: RetentionPolicy) -> Generator[Effect, Any, int]:
    """Delete what the policy lets go in ``region``; returns how many items went."""
    now: datetime = yield Now()
    location = catalog.location(service.name, region)
    if location is None or region == service.region:
        return 0  # never in a primary location
    plan = plan_retention(catalog.items(service.name, region), policy, now,
                          removal_check(catalog, service.name, region, location.role))
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

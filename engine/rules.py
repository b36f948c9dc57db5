"""The rules of the feature (README, "The rules it enforces") that judge a request, as pure
functions. Each refusal is its own error type; a function returns nothing (or the allowed
value) when the request is fine. Rule 3 (only complete backups) is no request: the layout
readers enforce it, an item exists only once its completion marker does; rule 4 (lag) is a
measure (engine.lag)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from engine.errors import (
    AlreadyEnabled,
    DeletionNotConfirmed,
    NoRestorableWindow,
    OnlyRestorableCopy,
    OutsideWindow,
    RegionNotQualified,
    ReplicationNotEnabled,
    UnsupportedServiceType,
    WrongRestoreRegion,
)
from engine.model import REPLICABLE_TYPES, Region, RestoreWindow, Service, TimeRange, iso
from engine.regions import get_region, qualifying_regions


def check_replicable(service: Service) -> None:
    """Rule 1: only PostgreSQL and MySQL services get an additional backup region."""
    if service.type not in REPLICABLE_TYPES:
        raise UnsupportedServiceType(service.name, str(service.type))


def offered_regions(service: Service) -> tuple[Region, ...]:
    """Rule 2: the regions that qualify as an additional region, farthest first."""
    return qualifying_regions(get_region(service.region))


def check_additional_region(service: Service, region_id: str) -> Region:
    """Rules 1 and 2: the region exists, has the service's provider and is not its primary."""
    check_replicable(service)
    primary = get_region(service.region)
    candidate = get_region(region_id)
    qualifying = [r.id for r in qualifying_regions(primary)][:5]
    if candidate.provider != primary.provider:
        raise RegionNotQualified(
            service.name, region_id,
            f"it is a {candidate.provider} region and {service.name} runs on {primary.provider}",
            qualifying)
    if candidate.id == primary.id:
        raise RegionNotQualified(service.name, region_id,
                                 "it is the primary backup region itself", qualifying)
    return candidate


def check_enable(service: Service, region_id: str, current: str | None) -> Region:
    """Rules 1, 2 and 8: enable only when no additional region is set yet."""
    region = check_additional_region(service, region_id)
    if current is not None:
        raise AlreadyEnabled(service.name, current)
    return region


def check_change(service: Service, region_id: str, current: str | None) -> Region:
    """Rule 8: a change needs a current additional region and a different new one."""
    if current is None:
        raise ReplicationNotEnabled(service.name)
    region = check_additional_region(service, region_id)
    if region.id == current:
        raise AlreadyEnabled(service.name, current)
    return region


def check_target_in_window(window: RestoreWindow, target: datetime | None) -> datetime:
    """Rule 5: the restore target (None for latest) must lie in the region's window.
    Returns the effective target time."""
    if window.end is None:
        raise NoRestorableWindow(window.region)
    if target is None:
        return window.end
    if not window.covers(target):
        raise OutsideWindow(window.region, iso(target), window.describe())
    return target


def check_restore_region(stored_in: str, requested: str) -> None:
    """Rule 6: a copy is restored only in the region where it is stored."""
    if stored_in != requested:
        raise WrongRestoreRegion(stored_in, requested)


def check_disable(service: str, *, keep: bool, delete: bool, confirmed: bool) -> None:
    """Rule 7: disabling says explicitly what happens to the copies."""
    if keep == delete:
        raise DeletionNotConfirmed(service)
    if delete and not confirmed:
        raise DeletionNotConfirmed(service)


def uncovered(window: RestoreWindow, others: Iterable[RestoreWindow]) -> list[TimeRange]:
    """The parts of ``window`` that no other window covers."""
    pieces = list(window.intervals)
    for other in others:
        for cover in other.intervals:
            next_pieces: list[TimeRange] = []
            for piece in pieces:
                if cover.end < piece.start or cover.start > piece.end:
                    next_pieces.append(piece)
                    continue
                if piece.start < cover.start:
                    next_pieces.append(TimeRange(piece.start, cover.start))
                if cover.end < piece.end:
                    next_pieces.append(TimeRange(cover.end, piece.end))
            pieces = next_pieces
    return pieces


def check_deletion_safe(service: str, window: RestoreWindow,
                        others: Iterable[RestoreWindow], timeline: str | None = None) -> None:
    """Rule 7: never delete the only restorable copy of a point in time. ``window`` and
    ``others`` are taken along one ``timeline`` (None: the latest): a point on a branch
    recovery no longer follows by default is still a point someone may restore."""
    alone = uncovered(window, others)
    if alone:
        text = ", ".join(f"{iso(r.start)} .. {iso(r.end)}" for r in alone)
        raise OnlyRestorableCopy(service, window.region,
                                 text + (f" on timeline {timeline}" if timeline else ""))


def check_not_primary(service: Service, region_id: str) -> None:
    """Never delete in a primary location."""
    if region_id == service.region:
        raise RegionNotQualified(service.name, region_id,
                                 "it is the primary backup region, where btar never deletes", [])

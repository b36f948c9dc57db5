"""What the application API answers with: statuses, lag reports, outcomes."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from engine.errors import (
    UNREACHABLE_FAULTS,
)
from engine.model import (
    RegionRole,
    RegionState,
    RestoreWindow,
)
from engine.units import short_duration

if TYPE_CHECKING:
    # In annotations only: the effects and the lag's statistics are no part of a status.
    from engine.effects import Effect
    from engine.lag import (
        LagBucket,
        LagItem,
        LagStats,
        Period,
    )

T = TypeVar("T")

#: A destination this far behind is "lagging" rather than merely "copying".
LAGGING_AFTER = timedelta(minutes=15)
DESTINATION_ROLES = (RegionRole.SECONDARY, RegionRole.PREVIOUS)


class ServiceState(StrEnum):
    """What `btar status` says of a service, in the words it shows. Why (the region and its
    fault) is kept apart, in ``ServiceStatus.state_reason``, so that no reader parses it."""

    UNSUPPORTED = "unsupported"
    DISABLED = "disabled"
    PRIMARY_UNREACHABLE = "primary unreachable"
    PRIMARY_FAILING = "primary failing"
    PAUSED = "paused"
    FAILING = "failing"
    WAITING = "waiting for first sync"
    LAGGING = "lagging"
    COPYING = "copying"
    IN_SYNC = "in sync"


#: the states that come with a reason: the region, and why it is paused or failing
REASONED_STATES = frozenset({ServiceState.PAUSED, ServiceState.FAILING})


def state_text(state: ServiceState, reason: str = "") -> str:
    """The state with its reason, as a person reads it: ``paused: <region> unreachable:
    <why>``, ``failing: <region>: <why>``, else the state's words alone."""
    return f"{state.value}: {reason}" if reason else state.value


class Driver(Protocol):
    """Carries out procedures: the live runtime, or a simulator's."""

    def now(self) -> datetime: ...

    def run(self, procedure: Generator[Effect, Any, T]) -> T: ...


@dataclass(frozen=True)
class LaneBacklog:
    """Items still to copy into a region in one lane, and their bytes."""

    items: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class Fault:
    """A location that fails for a service: its class ("unreachable", "missing", "denied",
    "unusable", "throttled" or "error"), the last reason given, and since when."""

    kind: str
    reason: str
    since: datetime

    @property
    def unreachable(self) -> bool:
        """Nothing can be read or written there (rather than some requests failing)."""
        return self.kind in UNREACHABLE_FAULTS


@dataclass(frozen=True)
class RegionStatus:
    region: str
    role: RegionRole
    state: RegionState
    reason: str
    items: dict[str, int]
    window: RestoreWindow
    #: per lane ("log", "base"): what is still to copy into this region
    backlog: dict[str, LaneBacklog] = field(default_factory=dict)
    #: the fault the replicator last saw in this region for the service, if it lasts
    fault: Fault | None = None
    #: when a listing (primary) or a copy (destination) last succeeded there
    answered_at: datetime | None = None


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    type: str
    provider: str
    primary_region: str
    additional_region: str | None
    state: ServiceState
    #: age of the oldest primary item not yet published in the additional region
    current_lag_seconds: float | None
    #: the lag measured for the item published most recently
    last_lag_seconds: float | None
    regions: list[RegionStatus] = field(default_factory=list)
    #: seconds since btar last knew the primary's newest point (its last listing); the lag
    #: counts only what is known, so during a primary outage this is what grows
    staleness_seconds: float | None = None
    #: when this status was read
    as_of: datetime | None = None
    #: why the service is paused or failing: the region and its reason ("" for the other
    #: states)
    state_reason: str = ""

    @property
    def state_with_reason(self) -> str:
        """The state followed by its reason, if it has one: ``paused: <region> ...``."""
        return state_text(self.state, self.state_reason)

    @property
    def short_state(self) -> str:
        """The state for a table whose failing regions are shown beside it: "paused" or
        "failing" without the reason, a primary outage with since when."""
        if self.primary_fault is not None:
            return self.state_line
        if any(region.fault is not None for region in self.regions):
            return self.state.value
        return self.state_with_reason

    @property
    def state_line(self) -> str:
        """The state as a person reads it: a primary outage says since when and how long."""
        fault = self.primary_fault
        if fault is None or self.additional_region is None or self.as_of is None:
            return self.state_with_reason
        lasted = short_duration((self.as_of - fault.since).total_seconds())
        return f"{self.state.value} since {fault.since.strftime('%H:%M')} UTC ({lasted})"

    @property
    def primary_fault(self) -> Fault | None:
        """The fault of the primary region, if listing it fails."""
        for region in self.regions:
            if region.role == RegionRole.PRIMARY:
                return region.fault
        return None

    @property
    def backlog(self) -> dict[str, LaneBacklog]:
        """What is still to copy into the additional region, per lane."""
        for region in self.regions:
            if region.region == self.additional_region:
                return region.backlog
        return {}


@dataclass(frozen=True)
class LagReport:
    service: str
    region: str
    period: Period
    start: datetime
    end: datetime
    current_lag_seconds: float | None
    stats: LagStats
    buckets: tuple[LagBucket, ...]
    #: the destination's items that waited or were published during the period, from which
    #: the lag over time is drawn (engine.lag.lag_series)
    items: tuple[LagItem, ...] = ()


@dataclass(frozen=True)
class DisableOutcome:
    service: str
    regions: list[str]
    mode: str  # "keep" or "delete"
    deleted_objects: int
    #: objects under the service's prefix that btar did not copy, left in place on delete
    left_objects: int = 0

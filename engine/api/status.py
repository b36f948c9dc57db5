"""What is where: status, windows, timelines, lag, backups and events."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from engine.api.fleet_facts import NO_COUNTS, FleetFacts
from engine.api.management import ManagementPart
from engine.api.values import (
    DESTINATION_ROLES,
    LAGGING_AFTER,
    Fault,
    LagReport,
    LaneBacklog,
    RegionStatus,
    ServiceState,
    ServiceStatus,
)
from engine.catalog import EventRow, ItemRow, LocationRow
from engine.copy_queue import lane_of
from engine.errors import (
    ReplicationNotEnabled,
    UnknownName,
)
from engine.model import (
    REPLICABLE_TYPES,
    RegionRole,
    RegionState,
    RestoreWindow,
    Service,
)
from engine.regions import get_region

if TYPE_CHECKING:
    # Imported where they run: a status of the fleet needs neither.
    from engine.lag import Period
    from engine.timelines import TimelineView

#: regions in a status: primary, secondary, previous, retained (as _ordered_locations)
_ROLE_ORDER = {RegionRole.PRIMARY: 0, RegionRole.SECONDARY: 1, RegionRole.PREVIOUS: 2,
               RegionRole.RETAINED: 3}


def _shown_order(location: LocationRow) -> tuple[int, str]:
    return _ROLE_ORDER[location.role], location.region


class StatusPart(ManagementPart):
    """Status, windows, lag, backups and events."""

    def windows(self, name: str) -> list[RestoreWindow]:
        """The restorable window of every region that holds this service's backups."""
        self.service(name)
        return [self.window(name, loc.region) for loc in self._ordered_locations(name)]

    def timeline_views(self, name: str) -> list[TimelineView]:
        """Per region: the window along the followed timeline, the timeline of each of its
        stretches, and every branch with its own window."""
        from engine.timelines import timeline_view

        self.service(name)
        return [timeline_view(self.catalog, name, loc.region, loc.role)
                for loc in self._ordered_locations(name)]

    def current_lag(self, name: str, region: str, now: datetime) -> float | None:
        """How far ``region`` is behind: the age of its oldest item not yet published."""
        oldest = self.catalog.oldest_unfinished(name, region)
        if oldest is not None:
            return max(0.0, (now - oldest).total_seconds())
        return 0.0 if self.catalog.status_counts(name, region) else None

    def status(self) -> list[ServiceStatus]:
        return self._statuses(FleetFacts.read(self.catalog))

    def status_and_facts(self) -> tuple[list[ServiceStatus], FleetFacts]:
        """The status of every service, and the catalog's facts it was made from (`btar
        check` judges the chains from them too: its windows are made from the chains, made
        once for both)."""
        facts = FleetFacts.read(self.catalog, chained=True)
        return self._statuses(facts), facts

    def _statuses(self, facts: FleetFacts) -> list[ServiceStatus]:
        now = self.now()
        return [self._service_status(s, now, facts) for s in self.services()]

    def status_of(self, name: str) -> ServiceStatus:
        """The status of one service."""
        service = self.service(name)
        return self._service_status(service, self.now(),
                                    FleetFacts.read(self.catalog, name))

    def _service_status(self, service: Service, now: datetime,
                        facts: FleetFacts) -> ServiceStatus:
        regions: list[RegionStatus] = []
        name = service.name
        seen = facts.reachability.get(name, {})
        locations = facts.locations.get(name, [])
        for loc in sorted(locations, key=_shown_order):
            pair = (name, loc.region)
            counts = facts.counts.get(pair, NO_COUNTS)
            backlog: dict[str, LaneBacklog] = {}
            if counts.backlog and loc.role in DESTINATION_ROLES:
                for kind, (items, size) in counts.backlog.items():
                    lane = str(lane_of(kind))
                    known = backlog.get(lane)
                    backlog[lane] = LaneBacklog(items, size) if known is None \
                        else LaneBacklog(known.items + items, known.bytes + size)
            reach = seen.get(loc.region)
            fault = Fault(reach.fault, reach.reason, reach.fault_since) \
                if reach is not None and reach.fault and reach.fault_since else None
            window = facts.window(name, loc.region, loc.role)
            regions.append(RegionStatus(loc.region, loc.role, loc.state, loc.reason,
                                        dict(counts.statuses), window,
                                        dict(sorted(backlog.items())) if len(backlog) > 1
                                        else backlog, fault,
                                        reach.ok_at if reach is not None else None))
        secondary = next((loc.region for loc in locations if loc.role == RegionRole.SECONDARY),
                         None)
        lag = facts.current_lag(name, secondary, now) if secondary else None
        listed = seen[service.region].ok_at if service.region in seen else None
        staleness = max(0.0, (now - listed).total_seconds()) \
            if secondary and listed is not None else None
        failing = next((r for r in regions if r.fault is not None
                        and r.role in DESTINATION_ROLES), None)
        primary_fault = next((r.fault for r in regions if r.role == RegionRole.PRIMARY), None)
        state, reason = ServiceState.IN_SYNC, ""
        if service.type not in REPLICABLE_TYPES:
            state = ServiceState.UNSUPPORTED
        elif secondary is None:
            state = ServiceState.DISABLED
        elif primary_fault is not None:
            state = ServiceState.PRIMARY_UNREACHABLE if primary_fault.unreachable \
                else ServiceState.PRIMARY_FAILING
        elif any(r.state == RegionState.PAUSED for r in regions):
            state = ServiceState.PAUSED
            reason = next(r.reason for r in regions if r.state == RegionState.PAUSED)
        elif failing is not None and failing.fault is not None and lag:
            state, reason = ServiceState.FAILING, f"{failing.region}: {failing.fault.reason}"
        elif not any(r.items for r in regions if r.role == RegionRole.SECONDARY):
            state = ServiceState.WAITING
        elif lag and lag > LAGGING_AFTER.total_seconds():
            state = ServiceState.LAGGING
        elif lag:
            state = ServiceState.COPYING
        return ServiceStatus(name, str(service.type), str(get_region(service.region).provider),
                             service.region, secondary, state, lag,
                             facts.last_lag.get((name, secondary)) if secondary else None,
                             regions, staleness, now, reason)

    def backups(self, name: str, region: str | None = None) -> list[ItemRow]:
        """The items (base backups and log segments) of a service, per region."""
        self.service(name)
        regions = [region] if region else [loc.region for loc in self._ordered_locations(name)]
        known = {loc.region for loc in self.catalog.locations(name)}
        for wanted in regions:
            if wanted not in known:
                raise UnknownName("region of " + name, wanted, sorted(known))
        return [row for r in regions for row in self.catalog.items(name, r)]

    def lag(self, name: str, period: Period, region: str | None = None) -> LagReport:
        """Replication lag of a service's additional region over a period."""
        from engine.lag import PERIODS, bucketize, lag_items, summarize

        self.service(name)
        region = region or self.additional_region(name)
        if region is None:
            raise ReplicationNotEnabled(name)
        now = self.now()
        start, buckets = bucketize(
            self.catalog.lag_samples(name, region, now - PERIODS[period][0], now), period, now)
        values = [lag for _, lag in self.catalog.lag_samples(name, region, start, now)]
        items = tuple(item for item in lag_items(self.catalog.lag_rows(name, region, start, now))
                      if item.available_at is None or item.available_at >= start)
        return LagReport(name, region, period, start, now, self.current_lag(name, region, now),
                         summarize(values), buckets, items)

    def events(self, limit: int = 100, service: str | None = None) -> list[EventRow]:
        return self.catalog.events(limit, service)

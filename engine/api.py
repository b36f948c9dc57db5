"""The application API: the one way the CLI, the TUI and the simulator act on btar.

No front end talks to storage or the catalog directly.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from engine import rules
from engine.alerts import AlertsConfig
from engine.catalog import Catalog, CatalogLock, EventRow, ItemRow
from engine.config import LoadedConfig, load_config
from engine.copy_queue import lane_of
from engine.cost import CostConfig
from engine.effects import DeleteBatch, Effect, FetchBatch, FetchResult, FetchTask, Now
from engine.errors import (
    UNREACHABLE_FAULTS,
    BadInput,
    BtarError,
    CorruptBackup,
    ObjectNotFound,
    RegionNotQualified,
    ReplicationNotEnabled,
    StorageError,
    UnknownName,
)
from engine.fork import (
    ForkIncomplete,
    consistency_wal,
    fetch_plan,
    lay_out,
    next_steps,
    run_restore_tools,
    write_plan_file,
)
from engine.formats import get_layout, layout_kind
from engine.formats.pgbackrest import decompress
from engine.lag import (
    PERIODS,
    LagBucket,
    LagItem,
    LagStats,
    Period,
    bucketize,
    lag_items,
    summarize,
)
from engine.listing import list_all
from engine.model import (
    REPLICABLE_TYPES,
    ItemStatus,
    Region,
    RegionRole,
    RegionState,
    RestoreWindow,
    Service,
    iso,
)
from engine.regions import get_region
from engine.replication import PassOutcome, ReplicationSettings, discover_primary
from engine.restore import (
    PlanChanged,
    RestorePlan,
    plan_problem,
    plan_restore,
    supplement_pgbackrest,
)
from engine.restore_tools import ToolOptions, ToolRun
from engine.restore_tools.pgbackrest import wal_stream_of
from engine.retention import RetentionPolicy
from engine.runtime import Clock, CopyProgress, LiveDriver, StorageRegistry
from engine.scheduler import replicate
from engine.service_jobs import Hooks, ServiceJob
from engine.storage.base import Storage
from engine.storage.locations import LocationConfig, open_location
from engine.timelines import TimelineView, timeline_view
from engine.units import short_duration
from engine.windows import window_from_catalog

T = TypeVar("T")

__all__ = [
    "Btar", "CopyProgress", "DisableOutcome", "Driver", "EventRow", "Fault", "ForkOutcome",
    "ItemRow",
    "LagReport", "LaneBacklog", "PassOutcome", "PlanChanged", "RegionStatus", "RestorePlan",
    "ServiceStatus",
]

#: A destination this far behind is "lagging" rather than merely "copying".
LAGGING_AFTER = timedelta(minutes=15)
DESTINATION_ROLES = (RegionRole.SECONDARY, RegionRole.PREVIOUS)


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
    state: str
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

    @property
    def short_state(self) -> str:
        """The state for a table whose failing regions are shown beside it: "paused" or
        "failing" without the reason, a primary outage with since when."""
        if self.primary_fault is not None:
            return self.state_line
        if any(region.fault is not None for region in self.regions):
            return self.state.split(":")[0]
        return self.state

    @property
    def state_line(self) -> str:
        """The state as a person reads it: a primary outage says since when and how long."""
        fault = self.primary_fault
        if fault is None or self.additional_region is None or self.as_of is None:
            return self.state
        lasted = short_duration((self.as_of - fault.since).total_seconds())
        return f"{self.state} since {fault.since.strftime('%H:%M')} UTC ({lasted})"

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


class Btar:
    """One btar installation: its configuration, catalog and driver."""

    def __init__(self, services: Iterable[Service], locations: dict[str, LocationConfig],
                 catalog: Catalog, driver: Driver, *,
                 settings: ReplicationSettings | None = None, actor: str = "cli",
                 alerts: AlertsConfig | None = None,
                 prices: CostConfig | None = None,
                 retention: dict[str, RetentionPolicy] | None = None,
                 registry: StorageRegistry | None = None,
                 lock: CatalogLock | None = None) -> None:
        self._services = {s.name: s for s in services}
        self._locations = locations
        self.catalog = catalog
        self.driver = driver
        self.settings = settings or ReplicationSettings()
        self.actor = actor
        #: thresholds for `btar check` and prices for `btar cost` (from the configuration)
        self.alerts = alerts or AlertsConfig()
        self.prices = prices or CostConfig()
        #: retention policy per service (none: btar never deletes by itself)
        self.retention = retention or {}
        self._registry = registry
        self._lock = lock
        now = driver.now()
        for service in self._services.values():
            if self.catalog.service(service.name) != service:
                self.catalog.upsert_service(service, now)
            if self.catalog.location(service.name, service.region) is None:
                self.catalog.set_location(service.name, service.region, RegionRole.PRIMARY,
                                          RegionState.ACTIVE, now)

    @classmethod
    def open(cls, loaded: LoadedConfig | str, *, actor: str = "cli",
             on_copy: Callable[[CopyProgress], None] | None = None,
             on_fetch: Callable[[int, int, FetchResult], None] | None = None,
             clock: Clock | None = None, exclusive: bool = False) -> Btar:
        """Open the installation a configuration file describes, with the live driver.
        ``exclusive`` (sync, deletions) first takes the catalog's lock, held until close();
        another holder makes it raise SyncAlreadyRunning."""
        if isinstance(loaded, str):
            loaded = load_config(Path(loaded))
        lock = CatalogLock(loaded.catalog_path) if exclusive else None
        try:
            config = loaded.config
            registry = StorageRegistry(
                lambda region: open_location(config.regions[region], region))
            driver = LiveDriver(registry, concurrency=config.replication.concurrency,
                                on_copy=on_copy, on_fetch=on_fetch, clock=clock)
            settings = ReplicationSettings(
                concurrency=config.replication.concurrency,
                base_streams=config.replication.base_streams,
                max_attempts=config.replication.max_attempts,
                poll_interval=config.replication.poll_interval,
                busy_poll_interval=config.replication.busy_poll_interval,
                full_listing_interval=config.replication.full_listing_interval,
                listing_settle=config.replication.listing_settle)
            return cls(loaded.services().values(), dict(config.regions),
                       Catalog.open(loaded.catalog_path), driver, settings=settings,
                       actor=actor,
                       alerts=config.alerts, prices=config.cost, retention=loaded.retention(),
                       registry=registry, lock=lock)
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()
        self.catalog.close()
        if self._lock is not None:
            self._lock.release()

    def replication_lock(self) -> CatalogLock | None:
        """Take the catalog's lock for a replication run, as `btar sync` does (release it when
        done); None when this Btar holds it already or its catalog has no file. Raises
        SyncAlreadyRunning while another process (a `btar sync` daemon) replicates."""
        if self._lock is not None or self.catalog.path is None:
            return None
        return CatalogLock(self.catalog.path)

    @property
    def poll_interval(self) -> float:
        """Longest wait between two listings of a service when syncing continuously."""
        return self.settings.poll_interval

    def storage(self, region: str) -> Storage:
        """The storage of a configured region (for drivers and tools, not front ends)."""
        if self._registry is None:
            raise BadInput("this btar has no live storage")
        return self._registry(region)

    # -- lookups -----------------------------------------------------------------------------

    def services(self) -> list[Service]:
        return [self._services[name] for name in sorted(self._services)]

    def service(self, name: str) -> Service:
        try:
            return self._services[name]
        except KeyError:
            raise UnknownName("service", name, sorted(self._services)) from None

    def additional_region(self, name: str) -> str | None:
        rows = self.catalog.locations(name, roles=[RegionRole.SECONDARY])
        return rows[0].region if rows else None

    def offered_regions(self, name: str) -> list[tuple[Region, bool]]:
        """Rule 2: the qualifying regions, farthest first, each with whether a location is
        configured for it (only those can be enabled)."""
        service = self.service(name)
        rules.check_replicable(service)
        return [(r, r.id in self._locations) for r in rules.offered_regions(service)]

    def _require_location(self, region: str) -> None:
        if region not in self._locations:
            raise BadInput(f"{region} has no backup location in [regions] of the configuration; "
                           "add one, e.g. " f'{region} = "file:///path/to/{region}"')

    # -- management --------------------------------------------------------------------------

    def enable(self, name: str, region: str) -> None:
        """Start replicating a service's backups to an additional region."""
        service = self.service(name)
        target = rules.check_enable(service, region, self.additional_region(name))
        self._require_location(target.id)
        now = self.driver.now()
        self.catalog.set_location(name, target.id, RegionRole.SECONDARY, RegionState.ACTIVE, now)
        self.catalog.reactivate_region(name, target.id, now)
        self.catalog.audit(now, self.actor, "enable", name, {"region": target.id})
        self.catalog.event(now, "info", name, target.id, "additional backup region enabled")

    def change_region(self, name: str, region: str) -> None:
        """Move the additional region; the old one keeps replicating until the new one can
        restore (rule 8)."""
        service = self.service(name)
        current = self.additional_region(name)
        target = rules.check_change(service, region, current)
        self._require_location(target.id)
        assert current is not None  # check_change refused otherwise
        now = self.driver.now()
        self.catalog.set_location(name, current, RegionRole.PREVIOUS, RegionState.ACTIVE, now)
        self.catalog.set_location(name, target.id, RegionRole.SECONDARY, RegionState.ACTIVE, now)
        self.catalog.reactivate_region(name, target.id, now)
        self.catalog.audit(now, self.actor, "change-region", name,
                           {"from": current, "to": target.id})
        self.catalog.event(now, "info", name, target.id,
                           f"additional region changed from {current}; {current} keeps "
                           "replicating until this region can restore")

    def disable(self, name: str, *, keep: bool, delete: bool, confirmed: bool) -> DisableOutcome:
        """Stop replication; keep the copies (retained) or delete them (rule 7)."""
        service = self.service(name)
        rules.check_disable(name, keep=keep, delete=delete, confirmed=confirmed)
        targets = self.catalog.locations(name, roles=DESTINATION_ROLES)
        if not targets:
            raise ReplicationNotEnabled(name)
        now = self.driver.now()
        regions = [t.region for t in targets]
        if keep:
            for region in regions:
                self.catalog.set_location(name, region, RegionRole.RETAINED, RegionState.STOPPED,
                                          now, "replication disabled; copies kept")
                self.catalog.retain_region(name, region, now)
            self.catalog.audit(now, self.actor, "disable", name,
                               {"mode": "keep", "regions": regions})
            return DisableOutcome(name, regions, "keep", 0)
        # Refresh what the primary really holds before judging what else covers each point.
        self.driver.run(discover_primary(self.catalog, get_layout(service.layout), service,
                                         self.settings, full=True))
        deleted = left = 0
        for target in targets:
            region = target.region
            rules.check_not_primary(service, region)
            self._check_not_a_primary_location(region, service)
            others = [self.window(name, r) for r in self._covering_regions(name, exclude=region)]
            rules.check_deletion_safe(name, self.window(name, region), others)
            # From here on the copies in this region are no longer restorable and no sync
            # copies into it, so an interrupted deletion never leaves the catalog promising
            # objects that are gone; running disable --delete again finishes it.
            reason = "deleting the copies (disable --delete)"
            with self.catalog.transaction():
                self.catalog.withdraw_region(name, region, now, reason)
                self.catalog.set_location(name, region, target.role, RegionState.STOPPED, now,
                                          reason)
            done, foreign = self.driver.run(self._delete_region(service, region))
            deleted, left = deleted + done, left + foreign
            self.catalog.forget_region(name, region)
            self.catalog.remove_location(name, region)
            message = f"replication disabled; {done} objects deleted"
            if foreign:
                message += (f"; {foreign} objects under {service.key_prefix}/ that btar did not "
                            "copy were left in place")
            self.catalog.event(now, "warning", name, region, message)
        self.catalog.audit(now, self.actor, "disable", name,
                           {"mode": "delete", "regions": regions, "deleted_objects": deleted,
                            "left_objects": left})
        return DisableOutcome(name, regions, "delete", deleted, left)

    def _covering_regions(self, name: str, exclude: str) -> list[str]:
        service = self.service(name)
        regions = [service.region]
        regions += [loc.region for loc in self.catalog.locations(name)
                    if loc.region not in (exclude, service.region)]
        return regions

    def _check_not_a_primary_location(self, region: str, service: Service) -> None:
        """Never delete where any service keeps its primary backups."""
        for other in self._services.values():
            if other.region == region and other.key_prefix == service.key_prefix:
                raise RegionNotQualified(
                    service.name, region,
                    f"it holds the primary backups of {other.name}; btar never deletes there",
                    [])

    def _delete_region(self, service: Service,
                       region: str) -> Generator[Effect, Any, tuple[int, int]]:
        """Delete what btar copied into ``region``: the keys its catalog records there for
        this service, and nothing else (a foreign object under the same prefix stays).
        Completion markers go first, so that an interrupted deletion never leaves a marker
        without its payload. Returns (objects deleted, objects left in place)."""
        prefix = f"{service.key_prefix}/"
        keys = [prefix + key for key in self.catalog.object_keys(service.name, region)]
        listing = yield from list_all(region, prefix, self.settings.list_page_size)
        present = {o.key for o in listing}
        left = len(present.difference(keys))
        deleted = 0
        for start in range(0, len(keys), 500):
            # Keys missing from the listing are deleted too: a listing may lag behind.
            chunk = tuple(keys[start:start + 500])
            errors: tuple[str, ...] = yield DeleteBatch(region, chunk)
            failures = [e for e in errors if e]
            if failures:
                raise StorageError(region, "", f"{len(failures)} deletions failed: {failures[0]}")
            deleted += sum(1 for key in chunk if key in present)
        yield Now()
        return deleted, left

    # -- replication -------------------------------------------------------------------------

    def replication(self, names: Iterable[str] | None = None, *, once: bool,
                    full_listing: bool = False,
                    hooks: Hooks | None = None) -> Generator[Effect, Any, list[PassOutcome]]:
        """The replication procedure of the named (default: every replicable) services, for
        a driver to run: ``once`` lists each service once and finishes its work, else it
        goes on until the driver is asked to stop. ``full_listing`` lists every primary in
        full first even when a full listing is not due."""
        wanted = list(names or [])
        chosen = [self.service(n) for n in wanted] if wanted else self.services()
        jobs = []
        for service in chosen:
            if wanted:
                rules.check_replicable(service)
            elif service.type not in REPLICABLE_TYPES:
                continue
            jobs.append(ServiceJob(service, get_layout(service.layout),
                                   self.retention.get(service.name)))
        return replicate(self.catalog, jobs, self.settings, once=once,
                         full_listing=full_listing, hooks=hooks)

    def sync(self, names: Iterable[str] | None = None, *,
             full_listing: bool = False) -> list[PassOutcome]:
        """Replicate the named (default: every replicable) services once: list each primary,
        copy and publish what the destinations lack. One outcome per service."""
        return self.driver.run(self.replication(names, once=True, full_listing=full_listing))

    # -- status ------------------------------------------------------------------------------

    def window(self, name: str, region: str) -> RestoreWindow:
        location = self.catalog.location(name, region)
        role = location.role if location else RegionRole.SECONDARY
        return window_from_catalog(self.catalog, name, region, role)

    def windows(self, name: str) -> list[RestoreWindow]:
        """The restorable window of every region that holds this service's backups."""
        self.service(name)
        return [self.window(name, loc.region) for loc in self._ordered_locations(name)]

    def timeline_views(self, name: str) -> list[TimelineView]:
        """Per region: the window along the followed timeline, the timeline of each of its
        stretches, and every branch with its own window."""
        self.service(name)
        return [timeline_view(self.catalog, name, loc.region, loc.role)
                for loc in self._ordered_locations(name)]

    def _ordered_locations(self, name: str) -> list[Any]:
        order = {RegionRole.PRIMARY: 0, RegionRole.SECONDARY: 1, RegionRole.PREVIOUS: 2,
                 RegionRole.RETAINED: 3}
        return sorted(self.catalog.locations(name), key=lambda loc: (order[loc.role], loc.region))

    def current_lag(self, name: str, region: str, now: datetime) -> float | None:
        """How far ``region`` is behind: the age of its oldest item not yet published."""
        oldest = self.catalog.oldest_unfinished(name, region)
        if oldest is not None:
            return max(0.0, (now - oldest).total_seconds())
        return 0.0 if self.catalog.status_counts(name, region) else None

    def status(self) -> list[ServiceStatus]:
        now = self.driver.now()
        return [self._service_status(s, now) for s in self.services()]

    def status_of(self, name: str) -> ServiceStatus:
        """The status of one service."""
        return self._service_status(self.service(name), self.driver.now())

    def _service_status(self, service: Service, now: datetime) -> ServiceStatus:
        regions: list[RegionStatus] = []
        seen = self.catalog.reachability(service.name)
        for loc in self._ordered_locations(service.name):
            counts = self.catalog.status_counts(service.name, loc.region)
            backlog: dict[str, LaneBacklog] = {}
            if loc.role in DESTINATION_ROLES:
                for kind, (items, size) in self.catalog.backlog(service.name,
                                                                loc.region).items():
                    lane = str(lane_of(kind))
                    known = backlog.get(lane, LaneBacklog())
                    backlog[lane] = LaneBacklog(known.items + items, known.bytes + size)
            reach = seen.get(loc.region)
            fault = Fault(reach.fault, reach.reason, reach.fault_since) \
                if reach is not None and reach.fault and reach.fault_since else None
            regions.append(RegionStatus(loc.region, loc.role, loc.state, loc.reason, counts,
                                        self.window(service.name, loc.region),
                                        dict(sorted(backlog.items())), fault,
                                        reach.ok_at if reach is not None else None))
        secondary = self.additional_region(service.name)
        lag = self.current_lag(service.name, secondary, now) if secondary else None
        listed = seen[service.region].ok_at if service.region in seen else None
        staleness = max(0.0, (now - listed).total_seconds()) \
            if secondary and listed is not None else None
        failing = next((r for r in regions if r.fault is not None
                        and r.role in DESTINATION_ROLES), None)
        primary_fault = next((r.fault for r in regions if r.role == RegionRole.PRIMARY), None)
        if service.type not in REPLICABLE_TYPES:
            state = "unsupported"
        elif secondary is None:
            state = "disabled"
        elif primary_fault is not None:
            state = "primary unreachable" if primary_fault.unreachable else "primary failing"
        elif any(r.state == RegionState.PAUSED for r in regions):
            state = "paused: " + next(r.reason for r in regions if r.state == RegionState.PAUSED)
        elif failing is not None and failing.fault is not None and lag:
            state = f"failing: {failing.region}: {failing.fault.reason}"
        elif not any(r.items for r in regions if r.role == RegionRole.SECONDARY):
            state = "waiting for first sync"
        elif lag and lag > LAGGING_AFTER.total_seconds():
            state = "lagging"
        elif lag:
            state = "copying"
        else:
            state = "in sync"
        return ServiceStatus(service.name, str(service.type),
                             str(get_region(service.region).provider), service.region,
                             secondary, state, lag,
                             self.catalog.last_lag(service.name, secondary) if secondary else None,
                             regions, staleness, now)

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
        self.service(name)
        region = region or self.additional_region(name)
        if region is None:
            raise ReplicationNotEnabled(name)
        now = self.driver.now()
        start, buckets = bucketize(
            self.catalog.lag_samples(name, region, now - PERIODS[period][0], now), period, now)
        values = [lag for _, lag in self.catalog.lag_samples(name, region, start, now)]
        items = tuple(item for item in lag_items(self.catalog.lag_rows(name, region, start, now))
                      if item.available_at is None or item.available_at >= start)
        return LagReport(name, region, period, start, now, self.current_lag(name, region, now),
                         summarize(values), buckets, items)

    def events(self, limit: int = 100, service: str | None = None) -> list[EventRow]:
        return self.catalog.events(limit, service)

    # -- restore -----------------------------------------------------------------------------

    def plan_fork(self, name: str, region: str, target: datetime | None = None, *,
                  source_region: str | None = None,
                  refresh_primary: bool = True, timeline: str | None = None) -> RestorePlan:
        """Plan a fork in ``region`` from the copy stored there, to ``target`` (None: latest),
        along ``timeline`` (None: the latest timeline, as recovery follows it).
        Refused outside the region's window (rule 5) or from another region (rule 6).
        ``refresh_primary`` lists the primary first to measure the data loss of "latest"."""
        service = self.service(name)
        rules.check_replicable(service)
        if refresh_primary and target is None and region != service.region:
            # Data loss is measured against the primary's latest point: refresh it if the
            # primary answers; during an outage the catalog's last view is what we have.
            with contextlib.suppress(StorageError):
                self.driver.run(discover_primary(self.catalog, get_layout(service.layout),
                                                 service, self.settings, full=False))
        return plan_restore(self.catalog, service, region, target, self.driver.now(),
                            source_region=source_region, timeline=timeline)

    def fork_throughput(self) -> tuple[float, bool]:
        """Bytes per second of past forks (measured), else an assumption (False)."""
        for entry in reversed(self.catalog.audit_log()):
            if entry["action"] != "fork":
                continue
            details = json.loads(entry["details"])
            if details.get("bytes_downloaded", 0) > 0 and details.get("seconds", 0) > 0:
                return details["bytes_downloaded"] / details["seconds"], True
        return ASSUMED_FORK_THROUGHPUT, False

    def check_fork_plan(self, plan: RestorePlan, name: str, region: str,
                        target: datetime | None, *,
                        source_region: str | None = None,
                        timeline: str | None = None) -> RestorePlan:
        """A plan made earlier for this request, if it still holds against the catalog (it is
        then returned unchanged, even if the window grew since); otherwise PlanChanged, with
        what planning the request now gives."""
        if (plan.service, plan.region, plan.target) != (name, region, target):
            wanted = iso(target) if target else "the latest point"
            planned = iso(plan.target) if plan.target else "the latest point"
            raise BadInput(f"the plan given restores {plan.service} in {plan.region} to "
                           f"{planned}, not {name} in {region} to {wanted}")
        service = self.service(name)
        rules.check_replicable(service)
        rules.check_restore_region(source_region or region, region)
        problem = plan_problem(self.catalog, service, plan)
        if problem is None:
            return plan
        try:
            replacement = self.plan_fork(name, region, target, source_region=source_region,
                                         refresh_primary=False,
                                         timeline=timeline or (plan.timeline
                                                               if plan.timeline_asked else None))
        except BtarError as error:
            raise PlanChanged(plan, problem, None, error) from error
        raise PlanChanged(plan, problem, replacement)

    def fork(self, name: str, region: str, target: datetime | None, into: Path, *,
             plan: RestorePlan | None = None,
             source_region: str | None = None,
             wal_fetch_command: list[str] | None = None,
             tools: ToolOptions | None = None,
             timeline: str | None = None) -> ForkOutcome:
        """Fetch and verify what a fork needs into ``into``, lay out the restore and, for real
        backups (pgbackrest layout, mariadb-backup bases), run the database's own restore
        (``tools``; see engine.restore_tools). Run it again after an interruption: verified
        files are not fetched again.

        ``plan``: the plan a user confirmed (from plan_fork). It is checked against the
        catalog first and then run exactly, to its own point; if it no longer holds,
        PlanChanged is raised before anything is written (never another plan run instead).
        Without it the fork is planned now."""
        if plan is None:
            # No listing of the primary first: during an outage its retries would only add
            # to the RTO; the data loss is measured against the catalog's last view of it.
            plan = self.plan_fork(name, region, target, source_region=source_region,
                                  refresh_primary=False, timeline=timeline)
        else:
            plan = self.check_fork_plan(plan, name, region, target,
                                        source_region=source_region, timeline=timeline)
        planned = plan
        service = self.service(name)
        plan_json = plan_as_json(plan)
        write_plan_file(plan_json, into, "fetching")
        fetched = self.driver.run(fetch_plan(plan, service.key_prefix, into))
        # The seal (Barman: backup.info) says which WAL makes the backup consistent and
        # what it refers to.
        if not fetched.failures and (bounds := consistency_wal(plan, into)) is not None:
            known = {o.key for o in plan.objects}
            plan = supplement_pgbackrest(self.catalog, plan, bounds)
            plan_json = plan_as_json(plan)
            more = self.driver.run(fetch_plan(plan, service.key_prefix, into,
                                              [o.key for o in plan.objects
                                               if o.key not in known]))
            fetched.downloaded += more.downloaded
            fetched.skipped += more.skipped
            fetched.bytes_downloaded += more.bytes_downloaded
            fetched.failures += more.failures
            fetched.finished = more.finished
        if fetched.failures:
            write_plan_file(plan_json, into, "incomplete")
            raise ForkIncomplete(fetched.failures)
        command = wal_fetch_command or ["btar", "wal-fetch", name, "--region", region]
        written = lay_out(plan, into, command)
        seconds = (fetched.finished - fetched.started).total_seconds() \
            if fetched.finished and fetched.started else 0.0
        write_plan_file(plan_json, into, "restoring")
        try:
            # barman-cloud's tools read the copy in place: they need the region's location
            restored = run_restore_tools(plan, into, replace(
                tools or ToolOptions(), location=self._locations.get(region),
                prefix=service.key_prefix))
        except BtarError:
            write_plan_file(plan_json, into, "restore failed")
            raise
        now = self.driver.now()
        details: dict[str, Any] = {
            "region": region, "target": iso(plan.target) if plan.target else "latest",
            "effective_target": iso(plan.effective_target), "base": plan.base_id,
            "timeline": plan.timeline,
            "segments": len(plan.segments), "bytes": plan.bytes_total,
            "bytes_downloaded": fetched.bytes_downloaded, "seconds": seconds,
            "into": str(into)}
        if restored is not None:
            details["restore"] = {"tool": restored.tool, "user": restored.user,
                                  "steps": {k: round(v, 3) for k, v in restored.steps},
                                  "running": restored.running, "port": restored.port}
        self.catalog.audit(now, self.actor, "fork", name, details)
        self.catalog.event(now, "info", name, region,
                           f"fork to {iso(plan.effective_target)} "
                           f"{'restored' if restored else 'laid out'} in {into}")
        write_plan_file(plan_json, into, "ready")
        return ForkOutcome(plan, fetched.downloaded, fetched.skipped,
                           fetched.bytes_downloaded, seconds, written, restored,
                           planned=planned, into=into,
                           next_steps=tuple(next_steps(plan, into, written, restored)))

    def wal_fetch(self, name: str, region: str, segment: str, destination: Path) -> None:
        """Fetch one log segment (native ``STREAM/SEQ`` or a PostgreSQL WAL file name) from
        the copy in ``region`` to ``destination``, verified (and, for the pgbackrest layout,
        decompressed: what a restore_command must deliver)."""
        service = self.service(name)
        pgbackrest = layout_kind(service.layout) == "pgbackrest"
        stream, seq = wal_stream_of(segment) if pgbackrest and "/" not in segment \
            else parse_segment_name(segment)
        row = self.catalog.item(name, region, f"log/{stream}/{seq:010d}")
        if row is None or row.status not in (ItemStatus.AVAILABLE, ItemStatus.RETAINED):
            raise ObjectNotFound(region, segment, "no such log segment in this region")
        ref = self.catalog.item_as_model(row).marker
        fetched = destination.with_name(f".{destination.name}.btar-fetch") if pgbackrest \
            else destination
        task = FetchTask(region, f"{service.key_prefix}/{ref.key}", str(fetched),
                         ref.size, ref.sha256, ref.digest)
        [result] = self.driver.run(_fetch_one(task))
        if not result.ok:
            raise StorageError(region, segment, result.error)
        if pgbackrest:
            suffix = "." + ref.key.rsplit(".", 1)[-1] if "." in ref.key.rsplit("/", 1)[-1] \
                else ""
            try:
                raw = decompress(fetched.read_bytes(), suffix)
            except ValueError as error:
                raise CorruptBackup(ref.key, str(error)) from None
            finally:
                fetched.unlink(missing_ok=True)
            temp = destination.with_name(f".{destination.name}.btar-part")
            temp.write_bytes(raw)
            temp.replace(destination)


#: used for estimates until a fork has been measured
ASSUMED_FORK_THROUGHPUT = 100 * 1024 * 1024


@dataclass(frozen=True)
class ForkOutcome:
    plan: RestorePlan
    downloaded: int
    skipped: int
    bytes_downloaded: int
    seconds: float
    written: list[str]
    #: what the database's own restore tools did (None: only fetched and laid out)
    restore: ToolRun | None = None
    #: the plan as confirmed (or made) before the run; ``plan`` adds what a pgBackRest
    #: backup's seal asked for besides (None: the same as ``plan``)
    planned: RestorePlan | None = None
    #: where the fork was laid out
    into: Path | None = None
    #: what to do with the fork now (start the database, or where its data is)
    next_steps: tuple[str, ...] = ()

    @property
    def planned_objects(self) -> int:
        """How many objects the confirmed plan listed."""
        return len((self.planned or self.plan).objects)


def _fetch_one(task: FetchTask) -> Generator[Effect, Any, tuple[FetchResult, ...]]:
    results: tuple[FetchResult, ...] = yield FetchBatch((task,))
    return results


def parse_segment_name(name: str) -> tuple[str, int]:
    """``STREAM/SEQ`` (native) or a 24-hex PostgreSQL WAL name (timeline, then segment)."""
    if "/" in name:
        stream, _, seq = name.partition("/")
        if stream and seq.isdigit():
            return stream, int(seq)
    elif len(name) == 24 and all(c in "0123456789ABCDEFabcdef" for c in name):
        return str(int(name[:8], 16)), int(name[8:], 16)
    raise BadInput(f"{name!r} is not a segment name (STREAM/SEQ or a WAL file name)")


def plan_as_json(plan: RestorePlan) -> dict[str, Any]:
    return {
        "service": plan.service, "region": plan.region, "role": str(plan.role),
        "target": iso(plan.target) if plan.target else "latest",
        "effective_target": iso(plan.effective_target),
        "window": {"start": iso(plan.window.start) if plan.window.start else None,
                   "end": iso(plan.window.end) if plan.window.end else None},
        "base_backup": plan.base_id, "base_end": iso(plan.base_end),
        "segments": {"count": len(plan.segments),
                     "first": plan.segments[0].item_id if plan.segments else None,
                     "last": plan.segments[-1].item_id if plan.segments else None},
        "histories": list(plan.histories),
        "timeline": plan.timeline, "timeline_asked": plan.timeline_asked,
        "objects": len(plan.objects), "bytes": plan.bytes_total,
        "expected_data_loss_seconds": plan.expected_data_loss_seconds,
        "planned_at": iso(plan.planned_at),
    }


"""One btar installation: its configuration, catalog, driver and storages, and lookups."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from engine import rules
from engine.api.live import LiveParts
from engine.api.values import (
    Driver,
)
from engine.catalog import Catalog, CatalogLock
from engine.config import LoadedConfig, load_config
from engine.errors import (
    BadInput,
    UnknownName,
)
from engine.model import (
    Region,
    RegionRole,
    RegionState,
    RestoreWindow,
    Service,
)
from engine.replication_settings import ReplicationSettings
from engine.windows import window_from_catalog

if TYPE_CHECKING:
    # The thresholds and the prices are pydantic models (see engine.config): made when a
    # command first asks for them, which `btar status` and `btar sync` never do.
    from engine.alerts import AlertsConfig
    from engine.clock import Clock
    from engine.cost import CostConfig
    from engine.effects import FetchResult
    from engine.retention import RetentionPolicy
    from engine.runtime import CopyProgress
    from engine.storage.base import Storage
    from engine.storage.locations import LocationConfig


class _Locations(Mapping[str, "LocationConfig"]):
    """The locations of a configuration's regions: the names known at once, each location
    made when read (without pydantic from a file read plain: engine.config)."""

    def __init__(self, loaded: LoadedConfig) -> None:
        self._loaded = loaded
        self._names = frozenset(loaded.region_names())

    def __getitem__(self, region: str) -> LocationConfig:
        return self._loaded.location(region)

    def __contains__(self, region: object) -> bool:
        return region in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded.region_names())

    def __len__(self) -> int:
        return len(self._names)


class Installation:
    """One btar installation: its configuration, catalog and driver."""

    def __init__(self, services: Iterable[Service], locations: Mapping[str, LocationConfig],
                 catalog: Catalog, driver: Driver | None = None, *,
                 settings: ReplicationSettings | None = None, actor: str = "cli",
                 alerts: AlertsConfig | None = None,
                 prices: CostConfig | None = None,
                 retention: dict[str, RetentionPolicy] | None = None,
                 live: LiveParts | None = None,
                 lock: CatalogLock | None = None,
                 loaded: LoadedConfig | None = None) -> None:
        """``driver`` runs the procedures (a simulator's, a test's); without one, ``live``
        makes the live driver when it is first asked for."""
        if (driver is None) == (live is None):
            raise ValueError("an installation runs with a driver, or with live parts")
        self._services = {s.name: s for s in services}
        self._locations = locations
        self.catalog = catalog
        self._driver = driver
        self._live = live
        self.settings = settings or ReplicationSettings()
        self.actor = actor
        self._alerts = alerts
        self._prices = prices
        self._retention = retention
        #: where the thresholds, prices and retention not given come from (else defaults)
        self._loaded = loaded
        self._lock = lock
        now = self.now()
        # Two reads for the whole configuration: a fleet of services opens at once.
        known = self.catalog.known_services()
        located = self.catalog.located()
        with self.catalog.transaction():
            for service in self._services.values():
                if known.get(service.name) != service:
                    self.catalog.upsert_service(service, now)
                if (service.name, service.region) not in located:
                    self.catalog.set_location(service.name, service.region,
                                              RegionRole.PRIMARY, RegionState.ACTIVE, now)

    @classmethod
    def open(cls, loaded: LoadedConfig | str, *, actor: str = "cli",
             on_copy: Callable[[CopyProgress], None] | None = None,
             on_fetch: Callable[[int, int, FetchResult], None] | None = None,
             clock: Clock | None = None, exclusive: bool = False) -> Self:
        """Open the installation a configuration file describes, with the live driver.
        ``exclusive`` (sync, deletions) first takes the catalog's lock, held until close();
        another holder makes it raise SyncAlreadyRunning."""
        if isinstance(loaded, str):
            loaded = load_config(Path(loaded))
        lock = CatalogLock(loaded.catalog_path) if exclusive else None
        try:
            locations = _Locations(loaded)

            def open_region(region: str) -> Storage:
                from engine.storage.locations import open_location

                return open_location(locations[region], region)

            replication = loaded.replication()
            live = LiveParts(open_region, concurrency=replication["concurrency"],
                             on_copy=on_copy, on_fetch=on_fetch, clock=clock)
            settings = ReplicationSettings(
                concurrency=replication["concurrency"],
                base_streams=replication["base_streams"],
                max_attempts=replication["max_attempts"],
                poll_interval=replication["poll_interval"],
                busy_poll_interval=replication["busy_poll_interval"],
                full_listing_interval=replication["full_listing_interval"],
                listing_settle=replication["listing_settle"])
            return cls(loaded.services().values(), locations,
                       Catalog.open(loaded.catalog_path), settings=settings,
                       actor=actor, live=live, lock=lock, loaded=loaded)
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    @property
    def driver(self) -> Driver:
        """What runs the procedures: the one given, else the live driver, made now if it
        was not yet."""
        if self._driver is None:
            assert self._live is not None
            self._driver = self._live.driver()
        return self._driver

    @driver.setter
    def driver(self, driver: Driver) -> None:
        self._driver = driver

    def now(self) -> datetime:
        """The driver's time; before a live driver is made, the clock it will be made with
        (a command that only reads the catalog never makes one)."""
        if self._driver is None and self._live is not None:
            return self._live.clock.now()
        return self.driver.now()

    @property
    def alerts(self) -> AlertsConfig:
        """Thresholds for `btar check` (from the configuration)."""
        if self._alerts is None:
            if self._loaded is not None:
                self._alerts = self._loaded.config.alerts
            else:
                from engine.alerts import AlertsConfig

                self._alerts = AlertsConfig()
        return self._alerts

    @alerts.setter
    def alerts(self, alerts: AlertsConfig) -> None:
        self._alerts = alerts

    @property
    def prices(self) -> CostConfig:
        """Prices for `btar cost` (from the configuration)."""
        if self._prices is None:
            if self._loaded is not None:
                self._prices = self._loaded.config.cost
            else:
                from engine.cost import CostConfig

                self._prices = CostConfig()
        return self._prices

    @prices.setter
    def prices(self, prices: CostConfig) -> None:
        self._prices = prices

    @property
    def retention(self) -> dict[str, RetentionPolicy]:
        """The retention policy per service (none: btar never deletes by itself)."""
        if self._retention is None:
            self._retention = self._loaded.retention() if self._loaded is not None else {}
        return self._retention

    @retention.setter
    def retention(self, retention: dict[str, RetentionPolicy]) -> None:
        self._retention = retention

    def close(self) -> None:
        if self._live is not None:
            self._live.close()
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
        if self._live is None:
            raise BadInput("this btar has no live storage")
        return self._live.registry()(region)

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

    def _ordered_locations(self, name: str) -> list[Any]:
        order = {RegionRole.PRIMARY: 0, RegionRole.SECONDARY: 1, RegionRole.PREVIOUS: 2,
                 RegionRole.RETAINED: 3}
        return sorted(self.catalog.locations(name), key=lambda loc: (order[loc.role], loc.region))

    def window(self, name: str, region: str, timeline: str | None = None) -> RestoreWindow:
        """The restorable window of a service's region (rule 5), along ``timeline``
        (default: the latest, the one recovery follows)."""
        location = self.catalog.location(name, region)
        role = location.role if location else RegionRole.SECONDARY
        return window_from_catalog(self.catalog, name, region, role, timeline)

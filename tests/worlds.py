"""A small in-memory world for engine tests: memory storages behind fault wrappers, a manual
clock, the application API over an in-memory catalog, and demo producers."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.api import Btar
from engine.catalog import Catalog
from engine.demo import DemoProducer
from engine.effects import Completions, Effect, NextCompletions
from engine.formats.native import write_stream_history
from engine.model import ItemStatus, Service, ServiceType
from engine.replication import ReplicationSettings
from engine.runtime import LiveDriver
from engine.storage.base import ListPage, Storage
from engine.storage.faults import FaultyStorage, InjectedCrash
from engine.storage.locations import MemoryLocation
from engine.storage.memory import MemoryStorage

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
REGIONS = ("aws-eu-west-1", "aws-eu-central-1", "aws-eu-north-1", "google-europe-west1")


class ManualClock:
    def __init__(self, start: datetime = T0) -> None:
        self.moment = start

    def now(self) -> datetime:
        return self.moment

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


def orders_app(layout: str, stores: Mapping[str, Storage], clock: ManualClock, *,
               enable: str | None = REGIONS[1], **settings: Any) -> Btar:
    """Service ``orders`` of ``layout`` with its primary in REGIONS[0], over ``stores`` (by
    region) as memory locations, the live driver on ``clock`` and a catalog of its own;
    ``enable``: the additional region enabled, if any; ``settings``: ReplicationSettings'
    (concurrency 2 unless given)."""
    service = Service("orders", ServiceType.POSTGRESQL, REGIONS[0], layout, "orders")
    app = Btar([service], {r: MemoryLocation(url=f"memory://{r}") for r in stores},
               Catalog.in_memory(), LiveDriver(stores.__getitem__, clock=clock),
               settings=ReplicationSettings(**{"concurrency": 2, **settings}))
    if enable is not None:
        app.enable("orders", enable)
    return app


class ListingLog(FaultyStorage):
    """A storage that keeps the (prefix, start after) of every listing page asked of it."""

    def __init__(self, inner: Storage) -> None:
        super().__init__(inner)
        self.pages: list[tuple[str, str | None]] = []

    def list_page(self, prefix: str = "", start_after: str | None = None,
                  limit: int = 1000) -> ListPage:
        self.pages.append((prefix, start_after))
        return super().list_page(prefix, start_after, limit)

    def prefixes(self) -> set[str]:
        return {prefix for prefix, _ in self.pages}


class _Died(BaseException):
    """Carries an InjectedCrash past the driver's guard, which turns a storage call's
    unexpected exception into a StorageError of that region."""


class CrashingDriver(LiveDriver):
    """LiveDriver, except that FaultyStorage's InjectedCrash takes the whole run with it, as
    the death of the process would. The driver turns a copy's exception into a failed copy,
    so it is raised again here before the procedure hears of any of the completions (the
    copies still in flight finish, unrecorded, as LiveDriver.run waits); and a list, read
    or delete that dies is let through the driver's guard."""

    def _carry_out(self, effect: Effect) -> Any:
        try:
            return super()._carry_out(effect)
        except InjectedCrash as crash:
            raise _Died(crash) from crash

    def _perform(self, effect: Effect) -> Any:
        try:
            result = super()._perform(effect)
        except _Died as died:
            raise died.args[0] from None
        if isinstance(effect, NextCompletions):
            assert isinstance(result, Completions)
            for done in result.results:
                if done.error.startswith(f"{InjectedCrash.__name__}:"):
                    raise InjectedCrash(done.error)
        return result


class World:
    def __init__(self, *, concurrency: int = 4, max_attempts: int = 3) -> None:
        self.clock = ManualClock()
        self.stores = {r: FaultyStorage(MemoryStorage(r, self.clock.now)) for r in REGIONS}
        self.services = [
            Service("orders", ServiceType.POSTGRESQL, "aws-eu-west-1"),
            Service("shop", ServiceType.MYSQL, "aws-eu-west-1"),
            Service("cache", ServiceType.REDIS, "aws-eu-west-1"),
        ]
        self.driver = CrashingDriver(self.stores.__getitem__, concurrency=concurrency,
                                     clock=self.clock)
        self.catalog = Catalog.in_memory()
        self.app = Btar(self.services, {r: MemoryLocation(url=f"memory://{r}") for r in REGIONS},
                        self.catalog, self.driver,
                        settings=ReplicationSettings(concurrency=concurrency,
                                                     max_attempts=max_attempts))
        self.producers = {
            s.name: DemoProducer(self.stores[s.region], s, last_end=self.clock.now())
            for s in self.services if s.name != "cache"
        }

    def produce(self, service: str, segments: int, *, base_first: bool = False,
                step: float = 60.0) -> None:
        """Advance the clock ``step`` seconds per segment, writing segments (and a base
        backup first when asked)."""
        producer = self.producers[service]
        if base_first:
            producer.base_backup(self.clock.now())
        for _ in range(segments):
            self.clock.advance(step)
            producer.segment(self.clock.now())

    def assert_published_items_whole(self, service: str, region: str) -> None:
        """Every item the catalog lists as available in ``region`` is there, byte for byte."""
        store = self.stores[region].inner
        for item in self.catalog.items(service, region, statuses=[ItemStatus.AVAILABLE]):
            for ref in self.catalog.item_refs(service, region, item.item_id):
                data = store.read_bytes(f"{service}/{ref.key}")
                assert hashlib.sha256(data).hexdigest() == ref.sha256, (item.item_id, ref.key)


def promoted_world(*, lose_switch_segment: bool = False) -> tuple[World, dict[str, object]]:
    """B1 on timeline 1, segments 1-4, then 5-7 (abandoned), timeline 2 from segment 5 on:
    5-7, a base B2 on timeline 2, 8-9. Returns the world and facts about it."""
    world = World()
    producer = world.producers["orders"]
    world.produce("orders", 4, base_first=True)
    at_switch, switch_end = dict(producer.state), world.clock.now()
    world.produce("orders", 3)  # timeline 1, segments 5..7: abandoned by the promotion
    abandoned_end = world.clock.now()
    world.clock.advance(120)
    promoted = world.clock.now()
    producer.stream, producer.next_seq, producer.state = "2", 5, at_switch
    producer.last_end = promoted
    store = world.stores["aws-eu-west-1"].inner
    write_stream_history(store, "orders", "2", "1", 5, promoted)
    world.produce("orders", 3)
    b2 = world.clock.now()
    world.produce("orders", 2, base_first=True)
    if lose_switch_segment:
        for info in list(store.iter_objects("orders/log/2/0000000005_")):
            store.delete(info.key)
    world.app.enable("orders", "aws-eu-central-1")
    world.app.sync(["orders"])
    return world, {"switch_end": switch_end, "abandoned_end": abandoned_end,
                   "promoted": promoted, "b2": b2}

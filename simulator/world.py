"""The simulated world: regions with in-memory storage behind fault wrappers, links with
bandwidth and latency, the catalog and the application API, all on SimPy's virtual clock.

The world is physics only (how long things take, what is reachable, what breaks); every
decision about backups is the engine's.
"""

from __future__ import annotations

import contextlib
import fnmatch
import gc
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import simpy
from simpy.core import BoundClass, EmptySchedule, StopSimulation
from simpy.events import URGENT

from engine.api import Btar
from engine.catalog import Catalog
from engine.errors import StorageError, Throttled
from engine.model import Service, TimeRange, iso
from engine.replication import ReplicationSettings
from engine.storage.faults import FaultyStorage
from engine.storage.locations import LocationConfig, MemoryLocation
from engine.storage.memory import MemoryStorage
from simulator.journal import Journal
from simulator.scenario import LoadedScenario, Scenario

#: the third collection threshold while a run loops (Python's default: 10): a full collection
#: after this many collections of the middle generation
RARE_FULL_COLLECTIONS = 1000


class _FullCollections:
    """A run keeps what it makes (the journal, every region's objects): a simulated day of a
    hundred services holds over a million objects, which each full collection walks again (a
    tenth of a second at 200,000) to free next to nothing (20 objects in four virtual hours
    of a hundred services). While runs loop, a full collection waits for some 7 million
    allocations instead of 80,000; the young generations, where the garbage is, are
    collected as usual. Replays loop in threads: the last run to end restores the
    thresholds the first one found."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._looping = 0
        self._before = gc.get_threshold()

    @contextlib.contextmanager
    def rare(self) -> Iterator[None]:
        with self._lock:
            if self._looping == 0:
                self._before = gc.get_threshold()
                first, second, third = self._before
                gc.set_threshold(first, second, max(third, RARE_FULL_COLLECTIONS))
            self._looping += 1
        try:
            yield
        finally:
            with self._lock:
                self._looping -= 1
                if self._looping == 0:
                    gc.set_threshold(*self._before)


_full_collections = _FullCollections()


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts the events it processes (for the summary)."""

    events_processed = 0

    def __init__(self, initial_time: float = 0) -> None:
        super().__init__(initial_time)
        # SimPy binds its event classes (timeout, event, process, any_of, ...) to an
        # environment from the attributes of the environment's own class only, so none of a
        # subclass's: each ``env.timeout(...)`` would make a bound method again.
        for name, value in vars(simpy.Environment).items():
            if type(value) is BoundClass:
                setattr(self, name, getattr(self, name))

    def step(self) -> None:
        self.events_processed += 1
        super().step()

    def run(self, until: float | simpy.Event | None = None) -> Any:
        """SimPy's ``run``, counting in its loop: one Python call fewer per event than
        stepping through ``step`` above (the replay steps one event at a time with that)."""
        if until is not None:
            if not isinstance(until, simpy.Event):
                at = until if isinstance(until, int) else float(until)
                if at <= self.now:
                    raise ValueError(
                        f"until ({at}) must be greater than the current simulation time")
                until = simpy.Event(self)
                until._ok = True
                until._value = None
                self.schedule(until, URGENT, at - self.now)
            elif until.callbacks is None:
                return until.value
            until.callbacks.append(StopSimulation.callback)
        step = simpy.Environment.step
        steps = 0
        try:
            with _full_collections.rare():
                while True:
                    steps += 1
                    step(self)
        except StopSimulation as stop:
            return stop.args[0]
        except EmptySchedule:
            if until is not None:
                assert not until.triggered
                raise RuntimeError(f'No scheduled events left but "until" event was not '
                                   f"triggered: {until}") from None
        finally:
            self.events_processed += steps
        return None


@dataclass
class Link:
    """The network between two regions. ``slots`` bounds the transfers in flight on it."""

    regions: tuple[str, str]
    bandwidth: float
    latency: float
    slots: simpy.Resource
    failure_rate: float = 0.0
    up: bool = True
    nominal: tuple[float, float] = (0.0, 0.0)
    #: the regions at its ends, as a copy over it is in flight between them
    ends: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self.ends = frozenset(self.regions)


@dataclass(frozen=True)
class Outage:
    """Interrupt cause: ``region`` (or the link between ``link``) went away."""

    region: str = ""
    link: tuple[str, str] = ("", "")


@dataclass(frozen=True)
class Crash:
    """Interrupt cause: the replicator process died."""


@dataclass
class Flight:
    """Something in progress that an outage of its regions or link breaks."""

    process: simpy.Process
    regions: frozenset[str]
    link: tuple[str, str] | None


@dataclass
class Corruption:
    region: str
    start: float
    end: float
    share: float
    keys: str


@dataclass
class World:
    """Everything a run touches, built from a scenario."""

    loaded: LoadedScenario
    seed: int
    env: CountingEnvironment = field(init=False)
    journal: Journal = field(init=False)
    stores: dict[str, FaultyStorage] = field(init=False)
    #: the memory behind each region's fault wrapper (ground truth, no fault applies)
    memories: dict[str, MemoryStorage] = field(init=False)
    links: dict[tuple[str, str], Link] = field(init=False)
    services: dict[str, Service] = field(init=False)
    app: Btar = field(init=False)
    #: held by a management action: one at a time
    lock: simpy.Resource = field(init=False)
    #: full object key -> size the scenario declares (drives transfer times)
    declared: dict[str, int] = field(default_factory=dict)
    throttles: dict[str, float] = field(default_factory=dict)
    corruptions: list[Corruption] = field(default_factory=list)
    flights: dict[int, Flight] = field(default_factory=dict)
    _rngs: dict[str, random.Random] = field(default_factory=dict)
    _next_flight: int = 0
    #: the virtual clock's last reading and its datetime (many effects ask at one moment)
    _now: tuple[float, datetime] = (-1.0, datetime.min)
    #: region -> its request latency (the first region of an id, as a scan would find)
    _latency: dict[str, float] = field(default_factory=dict)
    #: (source, destination) -> the link between them, as ``link`` found it (every copy asks)
    _between: dict[tuple[str, str], Link | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from simulator.interpreter import SimDriver  # the driver needs a built world

        scenario = self.scenario
        self.env = CountingEnvironment()
        self.journal = Journal(lambda: float(self.env.now))
        self.stores, self.memories = {}, {}
        for region in scenario.regions:
            memory = MemoryStorage(region.id, clock=self.now)
            store = FaultyStorage(memory)
            store.corrupt = self._corrupt_predicate(region.id)
            self.stores[region.id], self.memories[region.id] = store, memory
            self._latency.setdefault(region.id, region.request_latency)
        self.links = {}
        for spec in scenario.links:
            key = pair(*spec.between)
            self.links[key] = Link(key, spec.bandwidth, spec.latency,
                                   simpy.Resource(self.env, scenario.replicator.concurrency),
                                   nominal=(spec.bandwidth, spec.latency))
        self.services = {s.name: Service(s.name, s.type, s.region, prefix=s.name)
                         for s in scenario.services}
        locations: dict[str, LocationConfig] = {
            r.id: MemoryLocation(url=f"memory://{r.id}") for r in scenario.regions}
        replicator = scenario.replicator
        settings = ReplicationSettings(
            concurrency=replicator.concurrency, base_streams=replicator.base_streams,
            max_attempts=replicator.max_attempts, poll_interval=replicator.poll_interval,
            busy_poll_interval=replicator.busy_poll_interval or replicator.poll_interval)
        self.lock = simpy.Resource(self.env, 1)
        retention = {s.name: s.retention.policy() for s in scenario.services if s.retention}
        self.app = Btar([self.services[n] for n in sorted(self.services)], locations,
                        Catalog.in_memory(), SimDriver(self), settings=settings,
                        actor="simulator", retention=retention)

    @property
    def scenario(self) -> Scenario:
        return self.loaded.scenario

    # -- time and randomness -------------------------------------------------------------------

    def now(self) -> datetime:
        """The virtual time as a UTC datetime."""
        clock = float(self.env.now)
        if self._now[0] != clock:
            self._now = (clock, self.loaded.scenario.start + timedelta(seconds=clock))
        return self._now[1]

    def offset(self, moment: datetime) -> float:
        return (moment - self.scenario.start).total_seconds()

    def rng(self, purpose: str) -> random.Random:
        """A seeded stream per purpose: one fault's draws never shift another's."""
        if purpose not in self._rngs:
            self._rngs[purpose] = random.Random(f"{self.seed}:{purpose}")
        return self._rngs[purpose]

    # -- regions and requests ------------------------------------------------------------------

    def store(self, region: str) -> FaultyStorage:
        try:
            return self.stores[region]
        except KeyError:
            raise StorageError(f"memory://{region}", "",
                               "no such region in the scenario") from None

    def request_latency(self, region: str) -> float:
        return self._latency.get(region, 0.0)

    def check_throttle(self, region: str, key: str) -> None:
        """A share of requests to a throttled region is refused (retryable)."""
        rate = self.throttles.get(region, 0.0)
        if rate > 0 and self.rng(f"throttle:{region}").random() < rate:
            raise Throttled(self.store(region).name, key, "slow down (injected throttling)")

    def link(self, a: str, b: str) -> Link | None:
        try:
            return self._between[a, b]
        except KeyError:
            found = self._between[a, b] = self.links.get(pair(a, b))
            return found

    def physical_sha256(self, region: str, key: str) -> str | None:
        """What an object really hashes to in a region, bypassing faults (the checker's
        ground truth)."""
        memory = self.memories.get(region)
        return None if memory is None else memory.stored_sha256(key)

    # -- faults --------------------------------------------------------------------------------

    def _corrupt_predicate(self, region: str) -> Callable[[str], bool]:
        def corrupt(key: str) -> bool:
            now = float(self.env.now)
            for span in self.corruptions:
                if span.region == region and span.start <= now < span.end \
                        and fnmatch.fnmatchcase(key, span.keys):
                    return span.share >= 1.0 or self.rng(f"corrupt:{region}").random() \
                        < span.share
            return False
        return corrupt

    def fly(self, regions: frozenset[str], link: tuple[str, str] | None) -> int:
        """Register the active process as in flight over ``regions`` and ``link``."""
        process = self.env.active_process
        assert process is not None
        self._next_flight += 1
        self.flights[self._next_flight] = Flight(process, regions, link)
        return self._next_flight

    def land(self, flight: int) -> None:
        self.flights.pop(flight, None)

    def _interrupt(self, hit: Iterator[Flight], cause: Outage) -> None:
        for flight in list(hit):
            if flight.process.is_alive:
                flight.process.interrupt(cause)

    def region_down(self, region: str) -> None:
        self.stores[region].unreachable = True
        self._interrupt((f for _, f in sorted(self.flights.items()) if region in f.regions),
                        Outage(region=region))

    def region_up(self, region: str) -> None:
        self.stores[region].unreachable = False

    def link_down(self, between: tuple[str, str]) -> None:
        link = self.links[pair(*between)]
        link.up = False
        self._interrupt((f for _, f in sorted(self.flights.items()) if f.link == link.regions),
                        Outage(link=link.regions))

    def link_up(self, between: tuple[str, str]) -> None:
        self.links[pair(*between)].up = True

    # -- what the checks read ------------------------------------------------------------------

    def windows(self, service: str) -> dict[str, dict[str, object]]:
        """Every region's window of a service, as the engine computes it."""
        return {w.region: {"role": str(w.role),
                           "intervals": [[iso(r.start), iso(r.end)] for r in w.intervals]}
                for w in self.app.windows(service)}

    def union(self, service: str) -> list[TimeRange]:
        """Points some region of the service can restore, per the engine."""
        return [r for w in self.app.windows(service) for r in w.intervals]


def pair(a: str, b: str) -> tuple[str, str]:
    first, second = sorted((a, b))
    return first, second

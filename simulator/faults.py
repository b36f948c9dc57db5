"""The timeline: faults switched on and off at their times, management actions, forks and
promotions (a point-in-time restore of a primary: a new timeline).

Every fault is journaled as a ``fault`` entry with phase ``start`` and ``end`` (same ``id``),
which is what the checks read to know when the world was healthy.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import simpy

from engine.model import iso
from simulator import actions
from simulator.replicator import Replicator
from simulator.sampler import Sampler
from simulator.scenario import (
    ChangeRegion,
    Corrupt,
    Disable,
    Enable,
    Event,
    Fork,
    LinkDegrade,
    LinkDown,
    LinkUp,
    Promotion,
    RegionOutage,
    RegionRecovery,
    ReplicatorCrash,
    ReplicatorRestart,
    Throttle,
)
from simulator.world import Corruption, World, pair


class Timeline:
    """Schedules a scenario's events as SimPy processes."""

    def __init__(self, world: World, replicator: Replicator, sampler: Sampler) -> None:
        self.world = world
        self.replicator = replicator
        self.sampler = sampler
        self._faults = 0
        #: open fault id per target, so a recovery closes the outage it ends
        self._open: dict[tuple[str, ...], int] = {}

    def schedule(self, events: list[Event]) -> None:
        for index, event in enumerate(events):
            at = self.world.scenario.offset(event.at)
            self.world.env.process(self._at(at, index, event))

    def _at(self, at: float, index: int, event: Event) -> Generator[simpy.Event, Any, None]:
        yield self.world.env.timeout(at)
        name = event.name or f"timeline[{index}]"
        if isinstance(event, Disable) and event.mode == "delete":
            # `btar disable --delete` takes the catalog's lock: the operator stops the sync
            # for it and starts it again afterwards.
            was_running = yield from self.replicator.stop()
            yield from actions.management(self.world, event, name)
            if was_running:
                self.replicator.start()
        elif isinstance(event, Enable | ChangeRegion | Disable):
            yield from actions.management(self.world, event, name)
        elif isinstance(event, Fork):
            yield from actions.fork(self.world, event)
        elif isinstance(event, Promotion):
            self.promote(event, name)
        else:
            self.apply(event)

    def promote(self, event: Promotion, name: str) -> None:
        """A PITR of the service's primary: it goes on along a new timeline."""
        producer = self.sampler.producers[event.service]
        to = self.world.scenario.time(event.to) if event.to is not None else self.world.now()
        fields = {"name": name, "action": "promotion", "service": event.service,
                  "to": iso(to)}
        if producer.down:
            self.world.journal.add("action", "fail", error="the primary region is down",
                                   **fields)
            return
        producer.promote(to)
        self.world.journal.add("action", "ok", timeline=producer.stream, **fields)

    def _later(self, at: float, action: Callable[[], None]) -> None:
        def wait() -> Generator[simpy.Event, Any, None]:
            yield self.world.env.timeout(max(0.0, at - float(self.world.env.now)))
            action()
        self.world.env.process(wait())

    def _start(self, target: tuple[str, ...], kind: str, **fields: Any) -> None:
        self._faults += 1
        self._open[target] = self._faults
        self.world.journal.add("fault", "start", id=self._faults, kind=kind, **fields)

    def _end(self, target: tuple[str, ...], kind: str, **fields: Any) -> None:
        fault = self._open.pop(target, None)
        if fault is not None:
            self.world.journal.add("fault", "end", id=fault, kind=kind, **fields)

    def apply(self, event: Event) -> None:
        """Switch a fault on (and schedule its end when it has one)."""
        world = self.world
        scenario = world.scenario
        until = getattr(event, "until", None)
        end = scenario.offset(until) if until is not None else None
        if isinstance(event, RegionOutage):
            self.sampler.snapshot("outage")  # the RPO is measured at this very moment
            self._start(("region", event.region), "region_outage", region=event.region)
            world.region_down(event.region)
            if end is not None:
                self._later(end, lambda: self.apply(
                    RegionRecovery(kind="region_recovery", at=end, region=event.region)))
        elif isinstance(event, RegionRecovery):
            world.region_up(event.region)
            self._end(("region", event.region), "region_outage", region=event.region)
        elif isinstance(event, LinkDown):
            link_pair = pair(*event.between)
            self._start(("link", *link_pair), "link_down", link=list(link_pair))
            world.link_down(link_pair)
            if end is not None:
                self._later(end, lambda: self.apply(
                    LinkUp(kind="link_up", at=end, between=link_pair)))
        elif isinstance(event, LinkUp):
            link_pair = pair(*event.between)
            world.link_up(link_pair)
            self._end(("link", *link_pair), "link_down", link=list(link_pair))
        elif isinstance(event, LinkDegrade):
            self._degrade(event, end)
        elif isinstance(event, Throttle):
            self._start(("throttle", event.region), "throttle", region=event.region,
                        rate=event.rate)
            world.throttles[event.region] = event.rate

            def unthrottle() -> None:
                world.throttles[event.region] = 0.0
                self._end(("throttle", event.region), "throttle", region=event.region)
            if end is not None:
                self._later(end, unthrottle)
        elif isinstance(event, Corrupt):
            stop = end if end is not None else scenario.duration
            world.corruptions.append(Corruption(event.region, scenario.offset(event.at), stop,
                                                event.share, event.keys))
            self._start(("corrupt", event.region), "corrupt", region=event.region,
                        share=event.share, keys=event.keys)
            self._later(stop, lambda: self._end(("corrupt", event.region), "corrupt",
                                                region=event.region))
        elif isinstance(event, ReplicatorCrash):
            self._start(("replicator",), "replicator_crash")
            self.replicator.crash()
            if event.restart_after is not None:
                restart_at = float(world.env.now) + event.restart_after
                self._later(restart_at, lambda: self.apply(
                    ReplicatorRestart(kind="replicator_restart", at=restart_at)))
        elif isinstance(event, ReplicatorRestart):
            self.replicator.start()
            self._end(("replicator",), "replicator_crash")

    def _degrade(self, event: LinkDegrade, end: float | None) -> None:
        world = self.world
        link_pair = pair(*event.between)
        link = world.links[link_pair]
        if event.bandwidth is not None:
            link.bandwidth = event.bandwidth
        if event.latency is not None:
            link.latency = event.latency
        link.failure_rate = event.failure_rate
        self._start(("degrade", *link_pair), "link_degrade", link=list(link_pair),
                    bandwidth=link.bandwidth, latency=link.latency,
                    failure_rate=link.failure_rate)

        def restore() -> None:
            link.bandwidth, link.latency = link.nominal
            link.failure_rate = 0.0
            self._end(("degrade", *link_pair), "link_degrade", link=list(link_pair))
        if end is not None:
            self._later(end, restore)

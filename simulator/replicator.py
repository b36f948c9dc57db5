"""The replicator as a SimPy process: every poll interval, one engine replication pass per
service (engine.replication.replication_pass, driven by the SimPy interpreter).

A crash interrupts the process: the pass's generator is dropped mid-way, copies in flight die,
the catalog keeps whatever the engine had committed. A restart starts a fresh process.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime
from typing import Any

import simpy

from engine import replication
from engine.formats import get_layout
from engine.model import ItemStatus, RegionRole, Service
from simulator.interpreter import SimInterpreter
from simulator.world import Crash, World

#: statuses an item has once published in a destination
PUBLISHED = (ItemStatus.AVAILABLE, ItemStatus.RETAINED)


class Replicator:
    def __init__(self, world: World, interpreter: SimInterpreter) -> None:
        self.world = world
        self.interpreter = interpreter
        self.process: simpy.Process | None = None
        self.passes = 0
        #: (service, region, item, published at) already journaled
        self._reported: set[tuple[str, str, str, str]] = set()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.is_alive

    def start(self) -> None:
        if self.running:
            return
        self.world.journal.add("replicator", "start")
        self.process = self.world.env.process(self._run())

    def crash(self) -> None:
        if self.process is not None and self.process.is_alive:
            self.process.interrupt(Crash())

    def _run(self) -> Generator[simpy.Event, Any, None]:
        world = self.world
        try:
            while True:
                for service in world.app.services():
                    with world.lock.request() as turn:
                        yield turn
                        yield from self._pass(service)
                yield world.env.timeout(world.scenario.replicator.poll_interval)
        except simpy.Interrupt:
            world.journal.add("replicator", "crash")

    def _pass(self, service: Service) -> Generator[simpy.Event, Any, None]:
        world = self.world
        app = world.app
        started = world.now()
        self.passes += 1
        world.journal.add("pass", "invoke", service=service.name, number=self.passes)
        # Exactly what Btar.sync builds, looked up at call time so a test can spy on it.
        procedure = replication.replication_pass(app.catalog, get_layout(service.layout),
                                                 service, app.settings)
        try:
            outcome = yield from self.interpreter.drive(procedure)
        except simpy.Interrupt:
            world.journal.add("pass", "crash", service=service.name, number=self.passes)
            self._report_published(service, started, None)
            raise
        world.journal.add("pass", "ok", service=service.name, number=self.passes,
                          discovered=outcome.discovered, published=len(outcome.published),
                          failed=sorted(outcome.failed), copied_objects=outcome.copied_objects,
                          paused=dict(sorted(outcome.paused.items())),
                          primary_error=outcome.primary_error)
        self._report_published(service, started, outcome.published)

    def _report_published(self, service: Service, started: datetime,
                          published: list[str] | None) -> None:
        """Journal what the pass published, at the time the engine published it."""
        world = self.world
        catalog = world.app.catalog
        for location in catalog.locations(service.name):
            if location.role == RegionRole.PRIMARY:
                continue
            if published is None:  # a crashed pass: find its publications in the catalog
                rows = [r for r in catalog.items(service.name, location.region,
                                                 statuses=PUBLISHED)
                        if r.available_at is not None and r.available_at >= started]
            else:
                found = (catalog.item(service.name, location.region, i) for i in published)
                rows = [r for r in found if r is not None and r.status in PUBLISHED
                        and r.available_at is not None and r.available_at >= started]
            for row in sorted(rows, key=lambda r: (r.available_at or started, r.item_id)):
                assert row.available_at is not None
                key = (service.name, location.region, row.item_id, row.available_at.isoformat())
                if key in self._reported:
                    continue
                self._reported.add(key)
                world.journal.add("publish", "ok", service=service.name,
                                  region=location.region, item=row.item_id,
                                  published_at=round(world.offset(row.available_at), 6),
                                  lag=row.lag_seconds)

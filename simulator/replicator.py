"""The replicator as a SimPy process: the engine's replication procedure, exactly as
``btar sync`` builds it (engine.api.Btar.replication), driven by the SimPy interpreter.

A crash interrupts the process: the procedure is dropped mid-way, copies in flight die, the
catalog keeps whatever the engine had committed. A restart starts a fresh process. A stop
(what an operator does before `btar disable --delete`, which needs the catalog's lock) lets
the copies in flight finish first.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime
from typing import Any

import simpy

from engine.replication import PassOutcome
from engine.service_jobs import Hooks
from simulator.interpreter import SimInterpreter
from simulator.world import Crash, World


class Replicator:
    def __init__(self, world: World, interpreter: SimInterpreter) -> None:
        self.world = world
        self.interpreter = interpreter
        self.process: simpy.Process | None = None
        #: listing cycles that ended, over every service
        self.passes = 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.is_alive

    def start(self) -> None:
        if self.running:
            return
        self.world.journal.add("replicator", "start")
        self.interpreter.stop_requested = False
        self.process = self.world.env.process(self._run())

    def crash(self) -> None:
        if self.process is not None and self.process.is_alive:
            self.process.interrupt(Crash())

    def stop(self) -> Generator[simpy.Event, Any, bool]:
        """Ask the replicator to stop after its copies in flight and wait for it; True when
        it was running (so the caller starts it again)."""
        if not self.running:
            return False
        assert self.process is not None
        self.interpreter.stop_requested = True
        yield self.process
        return True

    def _run(self) -> Generator[simpy.Event, Any, None]:
        world = self.world
        hooks = Hooks(on_cycle=self._cycle_done, on_publish=self._published)
        try:
            yield from self.interpreter.drive(world.app.replication(once=False, hooks=hooks))
            world.journal.add("replicator", "stop")
        except simpy.Interrupt:
            world.journal.add("replicator", "crash")

    def _cycle_done(self, outcome: PassOutcome) -> None:
        self.passes += 1
        self.world.journal.add(
            "pass", "ok", service=outcome.service, number=self.passes,
            discovered=outcome.discovered, published=len(outcome.published),
            failed=sorted(outcome.failed), copied_objects=outcome.copied_objects,
            paused=dict(sorted(outcome.paused.items())), primary_error=outcome.primary_error)

    def _published(self, service: str, region: str, item: str, at: datetime,
                   lag: float) -> None:
        """Journal a publication at the moment the engine made it."""
        world = self.world
        world.journal.add("publish", "ok", service=service, region=region, item=item,
                          published_at=round(world.offset(at), 6), lag=lag)

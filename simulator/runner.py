"""One run of a scenario: build the world, replay it in virtual time, judge the journal.

A run is keyed by (seed, sha256 of the scenario file): the same pair gives the same journal,
byte for byte. ``replay_command`` is what a failing run prints.
"""

from __future__ import annotations

import sqlite3
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.catalog.store import IN_MEMORY_LIMIT
from engine.model import iso
from simulator.expectations import Verdict, judge
from simulator.faults import Timeline
from simulator.interpreter import SimInterpreter
from simulator.journal import Journal
from simulator.producer import Producer
from simulator.replicator import Replicator
from simulator.sampler import Sampler
from simulator.scenario import (
    Enable,
    ExpectRpo,
    ExpectState,
    ExpectWindow,
    ExpectWindowsRestorable,
    LoadedScenario,
)
from simulator.states import states_summary
from simulator.world import World


@dataclass
class RunResult:
    loaded: LoadedScenario
    seed: int
    journal: Journal
    verdicts: list[Verdict]
    events: int
    virtual_seconds: float
    wall_seconds: float
    #: the traceback when the run itself blew up (an engine or simulator bug)
    crashed: str | None = None

    @property
    def ok(self) -> bool:
        return self.crashed is None and all(v.holds for v in self.verdicts)

    @property
    def replay(self) -> str:
        return replay_command(self.loaded.path, self.seed)


def replay_command(path: str, seed: int) -> str:
    return f"btar simulate {path} --seed {seed}"


def build(loaded: LoadedScenario, seed: int) -> tuple[World, Replicator, Sampler, Timeline]:
    """The world of a scenario with its processes scheduled, at virtual time zero."""
    scenario = loaded.scenario
    world = World(loaded, seed)
    # The file's hash, not its path: the same file replays byte-identically from anywhere.
    world.journal.add("run", "info", scenario=scenario.name, file_sha256=loaded.sha256,
                      seed=seed, schema=scenario.schema_,
                      start=iso(scenario.start), duration=scenario.duration)
    producers: dict[str, Producer] = {}
    for spec in scenario.services:
        producers[spec.name] = Producer(world.env, world.services[spec.name], spec.schedule,
                                        world.stores[spec.region], world.journal, world.now,
                                        world.declared, scenario.offset(spec.schedule.first_base))
    probes = max((e.probes for e in scenario.expect if isinstance(e, ExpectWindowsRestorable)),
                 default=0)
    sampler = Sampler(world, producers, probes)
    replicator = Replicator(world, SimInterpreter(world))
    timeline = Timeline(world, replicator, sampler)
    # Additional regions declared on the services are enabled at the start, like a first
    # `btar enable`.
    timeline.schedule([Enable(kind="enable", at=0.0, name=f"enable {s.name}", service=s.name,
                              region=s.additional_region)
                       for s in scenario.services if s.additional_region])
    for producer in producers.values():
        producer.start()
    replicator.start()
    checked: list[float] = []
    for expectation in scenario.expect:
        if isinstance(expectation, ExpectWindow | ExpectRpo) and expectation.at is not None:
            checked.append(scenario.offset(expectation.at))
        if isinstance(expectation, ExpectState):
            # A state is judged at the very bounds too, not only at the nearest samples.
            since = scenario.offset(expectation.since)
            checked += [since, since + expectation.within]
            if expectation.until is not None:
                checked.append(scenario.offset(expectation.until))
    sampler.start(checked)
    timeline.schedule(scenario.timeline)
    return world, replicator, sampler, timeline


def run_scenario(loaded: LoadedScenario, seed: int | None = None) -> RunResult:
    """Replay a scenario and judge its expectations. ``seed`` overrides the file's."""
    chosen = loaded.scenario.seed if seed is None else seed
    began = time.perf_counter()
    world, _, sampler, _ = build(loaded, chosen)
    crashed = guarded(world, lambda: world.env.run(until=loaded.scenario.duration))
    return conclude(loaded, chosen, world, sampler, crashed,
                    world.env.events_processed, time.perf_counter() - began)


def guarded(world: World, work: Callable[[], object]) -> str | None:
    """Run ``work`` (part of a run); the traceback, journaled, when it blows up."""
    try:
        work()
    except Exception as error:  # an engine or simulator bug: the run is the finding
        if _catalog_full(error):  # not a bug: a limit of the run's size
            crashed = (f"the simulated catalog is full: SQLite holds at most "
                       f"{IN_MEMORY_LIMIT >> 20} MiB in memory; replay fewer services or a "
                       "shorter duration per scenario")
            world.journal.add("run", "crash", error=crashed)
            return crashed
        crashed = traceback.format_exc()
        world.journal.add("run", "crash", error=crashed.strip().splitlines()[-1])
        return crashed
    return None


def _catalog_full(error: BaseException | None) -> bool:
    while error is not None:
        if isinstance(error, sqlite3.OperationalError) \
                and getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            return True
        error = error.__cause__ or error.__context__
    return False


def conclude(loaded: LoadedScenario, seed: int, world: World, sampler: Sampler,
             crashed: str | None, events: int, wall_seconds: float) -> RunResult:
    """The end of a run at its duration (or its crash): the last snapshot and the verdicts."""
    if crashed is None:
        crashed = guarded(world, lambda: sampler.snapshot("end"))
    verdicts = judge(loaded.scenario, world.journal.entries) if crashed is None else \
        [Verdict(i, label, False, "not judged: the run crashed")
         for i, label in enumerate(_labels(loaded))]
    return RunResult(loaded, seed, world.journal, verdicts, events, float(world.env.now),
                     wall_seconds, crashed)


def _labels(loaded: LoadedScenario) -> list[str]:
    from simulator.expectations import label

    return [label(e) for e in loaded.scenario.expect]


def summary(result: RunResult) -> dict[str, Any]:
    """What the CLI prints and writes for a run (no wall clock inside the journal)."""
    return {
        "scenario": result.loaded.path,
        "name": result.loaded.scenario.name,
        "seed": result.seed,
        "sha256": result.loaded.sha256,
        "ok": result.ok,
        "verdicts": [{"index": v.index, "expectation": v.label, "holds": v.holds,
                      "detail": v.detail} for v in result.verdicts],
        #: per service, what btar status showed: spans of samples with one state and faults
        "states": states_summary(result.journal.entries),
        "events": result.events,
        "virtual_seconds": result.virtual_seconds,
        "wall_seconds": round(result.wall_seconds, 3),
        "crashed": result.crashed,
        "replay": result.replay,
    }

"""A run of a scenario that advances on demand, for watching it (the TUI's replay view).

``Replay`` builds the same world as :func:`simulator.runner.run_scenario` and ends the same
way (:func:`simulator.runner.conclude`), but its clock moves only when asked: ``advance``
by some virtual seconds (``env.run(until=...)`` in slices), ``step`` to the next journaled
operation. Between two moves ``snapshot`` reads what the application API (engine.api.Btar)
shows: each service's status, windows and lag, and the latest events.

Slicing does not change the run: SimPy processes the same events in the same order whatever
the slices, so the journal and the verdicts are those of ``btar simulate FILE --seed N``.
Everything about a replay must stay on the thread that created it (the world's catalog is an
in-memory SQLite connection bound to that thread).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.api import LagReport, ServiceStatus
from engine.errors import BtarError
from engine.lag import Period
from engine.model import REPLICABLE_TYPES, RestoreWindow
from simulator.expectations import Verdict
from simulator.journal import Entry
from simulator.runner import RunResult, build, conclude, guarded, replay_command
from simulator.scenario import LoadedScenario
from simulator.units import format_duration

#: journal operations worth telling the person watching (the rest is replication routine)
TIMELINE_OPS = frozenset({"fault", "action", "fork", "run"})
#: events kept in a snapshot, newest first
EVENTS_KEPT = 20


@dataclass(frozen=True)
class ReplayEvent:
    """Something that happened: a timeline entry of the scenario or an engine event."""

    t: float
    level: str
    source: str
    text: str


@dataclass(frozen=True)
class ServiceFrame:
    """One service as the application API shows it at a moment of the replay."""

    status: ServiceStatus
    windows: tuple[RestoreWindow, ...]
    lag: LagReport | None
    #: why there is no lag report
    lag_note: str = ""


@dataclass(frozen=True)
class ReplaySnapshot:
    name: str
    #: virtual seconds since the start of the scenario
    t: float
    now: datetime
    duration: float
    events_processed: int
    finished: bool
    services: tuple[ServiceFrame, ...]
    #: newest first
    events: tuple[ReplayEvent, ...]
    #: the last journaled operation, on one line
    last: str


class Replay:
    """A scenario run driven step by step; ``finished`` once it reached its duration (or
    crashed), then ``result`` holds the verdicts as ``run_scenario`` gives them."""

    def __init__(self, loaded: LoadedScenario, seed: int | None = None) -> None:
        self.loaded = loaded
        self.seed = loaded.scenario.seed if seed is None else seed
        self._began = time.perf_counter()
        self.world, _, self.sampler, _ = build(loaded, self.seed)
        self.result: RunResult | None = None
        #: ``env.run(until=...)`` calls; each one's stop event is counted by the environment
        self._runs = 0
        self._scanned = 0
        self._timeline: list[ReplayEvent] = []

    # -- where the run stands --------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.loaded.scenario.name or self.loaded.path

    @property
    def duration(self) -> float:
        return self.loaded.scenario.duration

    @property
    def now(self) -> float:
        """Virtual seconds since the start of the scenario."""
        return float(self.world.env.now)

    @property
    def finished(self) -> bool:
        return self.result is not None

    @property
    def events_processed(self) -> int:
        """Events simulated so far, not counting the stops between slices (so a finished
        replay counts what ``btar simulate`` does): SimPy processes a slice's stop event,
        then once more when the run resumes (it re-queues it); a whole run has one stop."""
        return self.world.env.events_processed - 2 * max(0, self._runs - 1)

    @property
    def replay_command(self) -> str:
        return replay_command(self.loaded.path, self.seed)

    def verdicts(self) -> list[Verdict]:
        """The verdict of each expectation; empty until the run is finished."""
        return list(self.result.verdicts) if self.result is not None else []

    # -- moving the clock ------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Run ``seconds`` more of virtual time, never past the scenario's duration."""
        if self.result is not None:
            return
        target = min(self.now + max(0.0, seconds), self.duration)
        crashed = None
        if target > self.now:
            self._runs += 1
            crashed = guarded(self.world, lambda: self.world.env.run(until=target))
        if crashed is not None or self.now >= self.duration:
            self._finish(crashed)

    def step(self) -> None:
        """Process events until the next journaled operation (or the end of the run)."""
        if self.result is not None:
            return
        env, entries = self.world.env, self.world.journal.entries
        before = len(entries)
        while len(entries) == before:
            if env.peek() >= self.duration:
                # What is due at the very end is left to run(until=duration), as in a
                # whole run.
                self.advance(self.duration - self.now)
                return
            crashed = guarded(self.world, env.step)
            if crashed is not None:
                self._finish(crashed)
                return

    def run_through(self, t: float) -> None:
        """Run to ``t`` and process what is due at ``t`` too, so a timeline event that starts
        then has started (``advance`` stops just before it); at or past the duration, run to
        the end."""
        if self.result is not None:
            return
        if t >= self.duration:
            self.advance(self.duration - self.now)
            return
        self.advance(t - self.now)
        env = self.world.env
        while self.result is None and env.peek() <= t:
            crashed = guarded(self.world, env.step)
            if crashed is not None:
                self._finish(crashed)

    def run_to_end(self) -> RunResult:
        self.advance(self.duration)
        assert self.result is not None
        return self.result

    def _finish(self, crashed: str | None) -> None:
        self.result = conclude(self.loaded, self.seed, self.world, self.sampler, crashed,
                               self.events_processed, time.perf_counter() - self._began)

    # -- what the application shows --------------------------------------------------------------

    def snapshot(self, period: Period = Period.DAY) -> ReplaySnapshot:
        """Every service's status, windows and lag over ``period``, and the latest events."""
        world = self.world
        app = world.app
        frames = []
        for status in app.status():
            lag, note = None, ""
            if status.type not in REPLICABLE_TYPES:
                note = f"{status.name} is a {status.type} service: no additional region"
            elif status.additional_region is None:
                note = "no additional region: nothing is replicated, so there is no lag"
            else:
                try:
                    lag = app.lag(status.name, period)
                except BtarError as error:
                    note = str(error)
            frames.append(ServiceFrame(status, tuple(app.windows(status.name)), lag, note))
        self._scan()
        engine_events = [ReplayEvent(world.offset(e.at), e.level, e.service,
                                     f"{e.region}: {e.message}" if e.region else e.message)
                         for e in app.events(EVENTS_KEPT)]
        events = sorted(self._timeline[-EVENTS_KEPT:] + engine_events, key=lambda e: e.t,
                        reverse=True)[:EVENTS_KEPT]
        entries = world.journal.entries
        return ReplaySnapshot(self.name, self.now, world.now(), self.duration,
                              self.events_processed, self.finished, tuple(frames),
                              tuple(events), describe_entry(entries[-1]) if entries else "")

    def _scan(self) -> None:
        entries = self.world.journal.entries
        for entry in entries[self._scanned:]:
            text = describe_timeline(entry)
            if text is not None:
                level = "error" if entry["phase"] in ("crash", "fail") else \
                    "warning" if entry["op"] == "fault" or entry["phase"] == "refused" \
                    else "info"
                self._timeline.append(ReplayEvent(entry["t"], level, "scenario", text))
        self._scanned = len(entries)


def describe_timeline(entry: Entry) -> str | None:
    """A line for a fault, an action, a fork or a crash of the run; None for routine."""
    op, phase = entry["op"], entry["phase"]
    if op not in TIMELINE_OPS or phase in ("invoke", "info", "planned"):
        return None
    if op == "fault":
        where = entry.get("region") or " <-> ".join(entry.get("link") or [])
        what = entry["kind"].replace("_", " ")
        return f"{what} {where} {'starts' if phase == 'start' else 'ends'}".replace("  ", " ")
    if op == "action":
        target = entry.get("region") or entry.get("mode") or ""
        if entry["action"] == "promotion":
            target = f"to {entry.get('to', '')}" + (
                f", now on timeline {entry['timeline']}" if "timeline" in entry else "")
        outcome = {"ok": "done", "refused": f"refused: {entry.get('message', '')}",
                   "fail": f"failed: {entry.get('error', '')}"}.get(phase, phase)
        return f"{entry['action']} {entry['service']} {target}: {outcome}"
    if op == "fork":
        if phase == "ok":
            return (f"fork {entry['name']} of {entry['service']} restored "
                    f"{entry['effective_target']} in {format_duration(entry['rto'])}")
        reason = entry.get("message") or entry.get("error") or ""
        return f"fork {entry['name']} of {entry['service']} {phase}: {reason}"
    return f"the run crashed: {entry.get('error', '')}" if phase == "crash" else None


#: the fields that say most about an entry, in the order shown (the first ones bare)
_BARE = ("service", "region", "name")
_NAMED = ("kind", "item", "key", "destination", "published", "objects", "reason", "error")


def describe_entry(entry: Entry) -> str:
    """Any journal entry on one line: operation, phase and its telling fields."""
    parts: list[Any] = [entry["op"], entry["phase"]]
    parts += [entry[f] for f in _BARE if entry.get(f) not in (None, "", [])]
    parts += [f"{f}={entry[f]}" for f in _NAMED if entry.get(f) not in (None, "", [])]
    return " ".join(str(p) for p in parts)

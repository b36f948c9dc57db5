"""The twin run: one small scenario file driven twice, by the simulator (SimPy, virtual time)
and by the real runtime (LiveDriver, wall clock, local folders, a link that takes latency +
size / bandwidth per copy stream), both running the same engine scheduler. Their lag
percentiles per service say whether the simulator's model of the engine holds.

Used by tests/simulation/test_twin_run.py (a loose check) and by the benchmark
(tests/benchmarks/run.py, case "twin": the 10 % agreement).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from engine.api import Btar
from engine.catalog import Catalog
from engine.formats.native import base_item_id, log_item_id, write_base_backup, write_log_segment
from engine.model import Service
from engine.replication import ReplicationSettings
from engine.runtime import LiveDriver, StorageRegistry
from engine.scheduler import Hooks
from engine.storage.faults import FaultyStorage
from engine.storage.local import LocalStorage
from engine.storage.locations import LocalLocation, LocationConfig
from simulator.runner import run_scenario
from simulator.scenario import LoadedScenario, Schedule, load_scenario

TWIN_SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "twin-run.btar.toml"


@dataclass(frozen=True)
class LagFigures:
    """Log-segment lags of one service: how many, median, 99th percentile (seconds)."""

    count: int
    p50: float
    p99: float


def percentile(ordered: list[float], share: float) -> float:
    """Nearest-rank percentile of sorted values."""
    rank = max(1, int(-(-share * len(ordered) // 1)))
    return ordered[min(len(ordered), rank) - 1]


def figures(lags: dict[str, list[float]]) -> dict[str, LagFigures]:
    out = {}
    for service, values in sorted(lags.items()):
        ordered = sorted(values)
        out[service] = LagFigures(len(ordered), percentile(ordered, 0.5),
                                  percentile(ordered, 0.99))
    return out


# -- the simulator ---------------------------------------------------------------------------


def simulated(loaded: LoadedScenario) -> dict[str, LagFigures]:
    """Log lags per service in the simulator: publication minus production, per item."""
    result = run_scenario(loaded)
    assert result.crashed is None, result.crashed
    produced = {(e["service"], e["item"]): e["t"] for e in result.journal.select("produce", "ok")
                if e["kind"] == "log"}
    lags: dict[str, list[float]] = {}
    for entry in result.journal.select("publish", "ok"):
        made = produced.get((entry["service"], entry["item"]))
        if made is not None:
            lags.setdefault(entry["service"], []).append(entry["published_at"] - made)
    return figures(lags)


# -- the real runtime --------------------------------------------------------------------------


class _Producer:
    """Writes each service's backups into its local primary folder on the scenario's
    schedule, in real time (the simulator's producer, on the wall clock)."""

    def __init__(self, loaded: LoadedScenario, stores: dict[str, LocalStorage],
                 began: float) -> None:
        self.loaded = loaded
        self.stores = stores
        self.began = began
        #: (service, item id) -> seconds after the start when it was complete in the primary
        self.produced: dict[tuple[str, str], float] = {}
        self.stop = threading.Event()

    def plan(self) -> list[tuple[float, str, Callable[[], str]]]:
        scenario = self.loaded.scenario
        events: list[tuple[float, str, Callable[[], str]]] = []
        for spec in scenario.services:
            service = Service(spec.name, spec.type, spec.region)
            store = self.stores[spec.region]
            events += self._logs(service, spec.schedule, store, scenario.duration)
            events += self._bases(service, spec.schedule, store, scenario.duration,
                                  scenario.offset(spec.schedule.first_base))
        return sorted(events, key=lambda e: (e[0], e[1]))

    def _logs(self, service: Service, schedule: Schedule, store: LocalStorage,
              duration: float) -> list[tuple[float, str, Callable[[], str]]]:
        events = []
        seq, at = 1, schedule.log_every
        while at < duration:
            def write(seq: int = seq, at: float = at) -> str:
                start = self._time(at - schedule.log_every)
                write_log_segment(store, service.key_prefix, "1", seq, start, self._time(at),
                                  _filler(schedule.log_size, f"{service.name}:{seq}"))
                return log_item_id("1", seq)
            events.append((at, service.name, write))
            seq, at = seq + 1, at + schedule.log_every
        return events

    def _bases(self, service: Service, schedule: Schedule, store: LocalStorage,
               duration: float, first: float) -> list[tuple[float, str, Callable[[], str]]]:
        events = []
        at = first
        while at + schedule.base_duration < duration:
            def write(began: float = at) -> str:
                backup_id = self._time(began).strftime("%Y%m%dT%H%M%SZ")
                size = max(1, schedule.base_size // schedule.base_objects)
                files = {f"part-{i}.bin": _filler(size, f"{service.name}:{backup_id}:{i}")
                         for i in range(schedule.base_objects)}
                # As the simulator's producer: the base ends at the last segment before it
                # completes and starts with the segment after the last one before it began.
                last = (began + schedule.base_duration) // schedule.log_every
                end = last * schedule.log_every
                write_base_backup(store, service.key_prefix, backup_id,
                                  self._time(min(began, end)), self._time(end), "1",
                                  int(began // schedule.log_every) + 1, files)
                return base_item_id(backup_id)
            # Written whole at the base's end: the transfer times come from the copies.
            events.append((at + schedule.base_duration, service.name, write))
            at += schedule.base_every
        return events

    def _time(self, offset: float) -> datetime:
        return self.loaded.scenario.start + timedelta(seconds=offset)

    def run(self) -> None:
        for at, service, write in self.plan():
            if self.stop.wait(max(0.0, self.began + at - time.monotonic())):
                return
            item = write()
            self.produced[(service, item)] = time.monotonic() - self.began


def _filler(size: int, seed: str) -> bytes:
    unit = (seed + "\n").encode()
    return (unit * (size // len(unit) + 1))[:size]


class _ScenarioClock:
    """Wall-clock seconds since the run began, on the scenario's calendar."""

    def __init__(self, start: datetime, began: float) -> None:
        self.start = start
        self.began = began

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.began)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def real(loaded: LoadedScenario, workdir: Path) -> dict[str, LagFigures]:
    """Log lags per service on the real runtime: local folders, copies over a link modelled
    by a FaultyStorage that sleeps latency + size / bandwidth per copy, the wall clock."""
    scenario = loaded.scenario
    replicator = scenario.replicator
    folders = {r.id: workdir / r.id for r in scenario.regions}
    primaries = {r.id: LocalStorage(folders[r.id]) for r in scenario.regions}
    links = {frozenset(link.between): link for link in scenario.links}
    services = [Service(s.name, s.type, s.region) for s in scenario.services]
    primary_of = {s.region for s in scenario.services}

    def open_region(region: str) -> FaultyStorage:
        store = FaultyStorage(LocalStorage(folders[region]))
        if region not in primary_of:
            link = next(link for pair, link in links.items() if region in pair)
            store.transfer_time = lambda size: link.latency + size / link.bandwidth
        return store

    began = time.monotonic()
    clock = _ScenarioClock(scenario.start, began)
    settings = ReplicationSettings(
        concurrency=replicator.concurrency, base_streams=replicator.base_streams,
        max_attempts=replicator.max_attempts, poll_interval=replicator.poll_interval,
        busy_poll_interval=replicator.busy_poll_interval or replicator.poll_interval)
    registry = StorageRegistry(open_region)
    driver = LiveDriver(registry, concurrency=replicator.concurrency, clock=clock)
    locations: dict[str, LocationConfig] = {
        region: LocalLocation(url=folder.as_uri()) for region, folder in folders.items()}
    app = Btar(services, locations, Catalog.open(workdir / "btar.sqlite"), driver,
               settings=settings, actor="twin run")
    for spec in scenario.services:
        if spec.additional_region:
            app.enable(spec.name, spec.additional_region)
    published: dict[tuple[str, str], float] = {}

    def on_publish(service: str, region: str, item: str, at: datetime, lag: float) -> None:
        published.setdefault((service, item), (at - scenario.start).total_seconds())

    producer = _Producer(loaded, primaries, began)
    feeding = threading.Thread(target=producer.run, name="twin-producer", daemon=True)
    feeding.start()
    stopper = threading.Timer(scenario.duration, driver.stop_requested.set)
    stopper.start()
    try:
        driver.run(app.replication(once=False, hooks=Hooks(on_publish=on_publish)))
    finally:
        stopper.cancel()
        producer.stop.set()
        feeding.join()
        registry.close()
        app.catalog.close()
    lags: dict[str, list[float]] = {}
    for (service, item), made in sorted(producer.produced.items()):
        if item.startswith("log/") and (service, item) in published:
            lags.setdefault(service, []).append(published[(service, item)] - made)
    return figures(lags)


def twin(workdir: Path, path: Path = TWIN_SCENARIO) -> tuple[dict[str, LagFigures],
                                                            dict[str, LagFigures]]:
    """(simulated, real) log-lag figures per service for one scenario file."""
    loaded = load_scenario(path)
    return simulated(loaded), real(loaded, workdir)



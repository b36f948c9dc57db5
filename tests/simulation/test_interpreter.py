"""The SimPy interpreter of engine effects: transfer times from bandwidth and latency, link
slots shared by concurrent copies, completions heard one by one, outages failing copies in
flight, crashes dropping them, a stop refusing new copies."""

from __future__ import annotations

import contextlib
import gc
import hashlib
from collections.abc import Generator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import simpy

from engine.effects import (
    Completions,
    CopyResult,
    CopyTask,
    Effect,
    ErrorKind,
    ListPage,
    NextCompletions,
    Side,
    StartCopy,
)
from engine.errors import StorageError, Throttled
from simulator.interpreter import SimInterpreter
from simulator.scenario import load_scenario
from simulator.world import RARE_FULL_COLLECTIONS, Crash, World
from tests.simulation.builders import tiny, write

PRIMARY, SECONDARY = "aws-eu-west-1", "aws-eu-central-1"
MB = 10**6


def make_world(tmp_path: Path, **options: Any) -> World:
    return World(load_scenario(write(tmp_path, tiny(**options))), seed=1)


def put(world: World, key: str, declared: int) -> CopyTask:
    data = key.encode() * 4
    world.stores[PRIMARY].inner.write(key, data)
    world.declared[key] = declared
    return CopyTask(PRIMARY, SECONDARY, key, len(data), hashlib.sha256(data).hexdigest())


def copy_all(tasks: list[CopyTask]) -> Generator[Effect, Any, tuple[CopyResult, ...]]:
    """Start every copy, then collect their completions; results in the order they came."""
    for task in tasks:
        started = yield StartCopy(task)
        assert started
    results: list[CopyResult] = []
    while len(results) < len(tasks):
        done: Completions = yield NextCompletions(None)
        assert done.results
        results += done.results
    return tuple(results)


def drive(world: World, procedure: Generator[Effect, Any, Any]) -> simpy.Process:
    interpreter = SimInterpreter(world)

    def process() -> Generator[simpy.Event, Any, Any]:
        return (yield from interpreter.drive(procedure))

    return world.env.process(process())


def value_of(process: simpy.Process) -> Any:
    """What a finished process returned."""
    return process.value


def at(world: World, seconds: float, action: Any) -> None:
    def later() -> Generator[simpy.Event, Any, None]:
        yield world.env.timeout(seconds)
        action()
    world.env.process(later())


def completions(world: World) -> list[tuple[float, str]]:
    return [(e["t"], e["phase"]) for e in world.journal.entries if e["op"] == "copy"
            and e["phase"] != "invoke"]


def test_a_copy_takes_latency_plus_declared_size_over_bandwidth(tmp_path: Path) -> None:
    world = make_world(tmp_path, bandwidth="10MB/s")
    task = put(world, "orders/a", 50 * MB)
    process = drive(world, copy_all([task]))
    world.env.run(until=100)
    [result] = value_of(process)
    assert result.ok
    assert result.sha256 == task.sha256
    assert completions(world) == [(5.05, "ok")]
    assert world.stores[SECONDARY].inner.read_bytes("orders/a") == \
        world.stores[PRIMARY].inner.read_bytes("orders/a")


def test_copies_share_the_link_slots(tmp_path: Path) -> None:
    world = make_world(tmp_path, bandwidth="10MB/s", concurrency=1)
    tasks = [put(world, f"orders/{n}", 10 * MB) for n in "ab"]
    drive(world, copy_all(tasks))
    world.env.run(until=100)
    assert completions(world) == [(1.05, "ok"), (2.1, "ok")]


def test_an_outage_fails_the_copies_in_flight_as_unreachable(tmp_path: Path) -> None:
    world = make_world(tmp_path, bandwidth="1MB/s")
    task = put(world, "orders/big", 100 * MB)
    process = drive(world, copy_all([task]))
    at(world, 30, lambda: world.region_down(SECONDARY))
    world.env.run(until=200)
    [result] = value_of(process)
    assert (result.ok, result.error_kind, result.failed_side) == \
        (False, ErrorKind.UNREACHABLE, Side.DESTINATION)
    assert completions(world) == [(30.0, "fail")]
    assert "orders/big" not in [o.key for o in world.stores[SECONDARY].inner.iter_objects()]


def test_a_down_link_or_a_failing_one_fails_fast(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    task = put(world, "orders/a", MB)
    world.link_down((SECONDARY, PRIMARY))
    process = drive(world, copy_all([task]))
    world.env.run(until=10)
    assert value_of(process)[0].error_kind == ErrorKind.UNREACHABLE
    world.link_up((PRIMARY, SECONDARY))
    link = world.link(PRIMARY, SECONDARY)
    assert link is not None
    link.failure_rate = 1.0
    process = drive(world, copy_all([task]))
    world.env.run(until=20)
    assert value_of(process)[0].error_kind == ErrorKind.OTHER


def test_a_crash_drops_the_procedure_and_its_copies(tmp_path: Path) -> None:
    world = make_world(tmp_path, bandwidth="1MB/s")
    tasks = [put(world, f"orders/{n}", 100 * MB) for n in "ab"]
    closed: list[bool] = []

    def procedure() -> Generator[Effect, Any, None]:
        try:
            yield from copy_all(tasks)
        finally:
            closed.append(True)

    interpreter = SimInterpreter(world)

    def process() -> Generator[simpy.Event, Any, None]:
        with contextlib.suppress(simpy.Interrupt):
            yield from interpreter.drive(procedure())

    running = world.env.process(process())
    at(world, 10, lambda: running.interrupt(Crash()))
    world.env.run(until=300)
    assert closed == [True]
    assert sorted(p for _, p in completions(world)) == ["cancel", "cancel"]
    assert not list(world.stores[SECONDARY].inner.iter_objects())


def test_completions_come_one_by_one_as_copies_end(tmp_path: Path) -> None:
    world = make_world(tmp_path, bandwidth="10MB/s")
    small, big = put(world, "orders/small", 10 * MB), put(world, "orders/big", 50 * MB)
    heard: list[tuple[float, tuple[str, ...]]] = []

    def procedure() -> Generator[Effect, Any, None]:
        for task in (big, small):
            assert (yield StartCopy(task))
        while len(heard) < 2:
            done: Completions = yield NextCompletions(None)
            heard.append((world.env.now, tuple(r.task.key for r in done.results)))

    drive(world, procedure())
    world.env.run(until=100)
    # The small copy is heard of when it ends, not when the big one does.
    assert heard == [(pytest.approx(1.05), ("orders/small",)),
                     (pytest.approx(5.05), ("orders/big",))]


def test_a_wait_for_completions_ends_at_its_timeout(tmp_path: Path) -> None:
    world = make_world(tmp_path, bandwidth="1MB/s")
    task = put(world, "orders/big", 100 * MB)
    heard: list[tuple[float, int]] = []

    def procedure() -> Generator[Effect, Any, None]:
        done: Completions = yield NextCompletions(7.0)  # nothing in flight: the timeout
        heard.append((world.env.now, len(done.results)))
        assert (yield StartCopy(task))
        done = yield NextCompletions(3.0)  # in flight, not done by then
        heard.append((world.env.now, len(done.results)))
        done = yield NextCompletions(None)
        heard.append((world.env.now, len(done.results)))
        done = yield NextCompletions(None)  # nothing in flight, no timeout: at once
        heard.append((world.env.now, len(done.results)))

    drive(world, procedure())
    world.env.run(until=300)
    assert heard == [(7.0, 0), (10.0, 0), (pytest.approx(107.05), 1),
                     (pytest.approx(107.05), 0)]


def test_a_stop_refuses_new_copies_and_lets_those_in_flight_finish(tmp_path: Path) -> None:
    world = make_world(tmp_path, bandwidth="10MB/s")
    first, second = put(world, "orders/a", 50 * MB), put(world, "orders/b", 10 * MB)
    interpreter = SimInterpreter(world)
    seen: list[Any] = []

    def procedure() -> Generator[Effect, Any, None]:
        seen.append((yield StartCopy(first)))
        done: Completions = yield NextCompletions(1.0)
        seen.append((done.results, done.stop_requested))
        seen.append((yield StartCopy(second)))
        done = yield NextCompletions(None)
        seen.append(([r.ok for r in done.results], done.stop_requested))

    def process() -> Generator[simpy.Event, Any, None]:
        yield from interpreter.drive(procedure())

    def stop() -> None:
        interpreter.stop_requested = True

    world.env.process(process())
    at(world, 0.5, stop)
    world.env.run(until=100)
    assert seen == [True, ((), True), False, ([True], True)]
    assert [o.key for o in world.stores[SECONDARY].inner.iter_objects()] == ["orders/a"]


def test_throttled_requests_are_thrown_into_the_procedure(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    world.throttles[PRIMARY] = 1.0

    def procedure() -> Generator[Effect, Any, str]:
        try:
            yield ListPage(PRIMARY, "orders/")
        except StorageError as error:
            return type(error).__name__
        return "listed"

    process = drive(world, procedure())
    world.env.run(until=1)
    assert value_of(process) == Throttled.__name__
    assert [e["phase"] for e in world.journal.entries if e["op"] == "list"] == \
        ["invoke", "fail"]


def test_the_application_api_runs_on_virtual_time(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    world.env.run(until=3600)
    assert world.app.driver.now() == world.scenario.start + timedelta(hours=1)
    world.region_down(PRIMARY)
    with pytest.raises(StorageError):
        world.app.driver.run(_list_primary())


def _list_primary() -> Generator[Effect, Any, Any]:
    return (yield ListPage(PRIMARY, "orders/"))


def test_full_collections_are_rare_while_runs_loop_and_as_before_after(tmp_path: Path) -> None:
    """Also when a run loops inside another one's (replays loop in threads): the thresholds
    come back when the last one ends."""
    outer, inner = make_world(tmp_path), make_world(tmp_path)
    before = gc.get_threshold()
    rare = (before[0], before[1], max(before[2], RARE_FULL_COLLECTIONS))
    seen: list[tuple[int, ...]] = []

    def look(world: World, then: World | None) -> Generator[simpy.Event, Any, None]:
        yield world.env.timeout(1)
        seen.append(gc.get_threshold())
        if then is not None:
            then.env.run(until=2)
            seen.append(gc.get_threshold())

    outer.env.process(look(outer, inner))
    inner.env.process(look(inner, None))
    outer.env.run(until=5)
    assert seen == [rare, rare, rare]
    assert gc.get_threshold() == before

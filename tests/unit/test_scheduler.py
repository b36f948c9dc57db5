"""What waits for what in the replication scheduler (engine.scheduler), driven step by step:
requests (lists, reads) are answered at once, copies are started as the scheduler asks and
told back one at a time in the order they started, so every ordering below is exact."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import pytest

import engine.scheduler
from engine.copy_queue import DestinationQueue
from engine.effects import (
    Completions,
    CopyResult,
    Effect,
    NextCompletions,
    RequestDone,
    StartCopy,
    StartRequest,
    drive,
)
from engine.errors import StorageError
from engine.formats import get_layout
from engine.model import UNFINISHED, ItemStatus, RegionRole
from engine.replication import ReplicationSettings
from engine.scheduler import replicate
from engine.service_jobs import Hooks, ServiceJob
from engine.transfer import execute_copy
from tests.worlds import World

SECONDARY = "aws-eu-central-1"


@dataclass
class StepDriver:
    """Carries out every effect at once, except that finished copies are told one at a
    time. ``log`` records starts and publications in the order they happened."""

    world: World
    log: list[str] = field(default_factory=list)
    finished: deque[CopyResult] = field(default_factory=deque)
    most_in_flight: dict[str, int] = field(default_factory=dict)
    requests: list[RequestDone] = field(default_factory=list)

    def perform(self, effect: Effect) -> Any:
        if isinstance(effect, StartCopy):
            task = effect.task
            self.log.append(f"start {task.key}")
            stores = self.world.stores
            self.finished.append(execute_copy(stores[task.source], stores[task.destination],
                                              task))
            for kind in ("base", "log"):
                flying = sum(1 for r in self.finished if f"/{kind}/" in r.task.key)
                self.most_in_flight[kind] = max(self.most_in_flight.get(kind, 0), flying)
            return True
        if isinstance(effect, StartRequest):
            try:
                done = RequestDone(effect.ticket, self.world.driver._perform(effect.request))
            except StorageError as error:
                done = RequestDone(effect.ticket, error=error)
            self.requests.append(done)
            return None
        if isinstance(effect, NextCompletions):
            # Requests are answered at once; copies one at a time, oldest first.
            requests, self.requests = tuple(self.requests), []
            if requests:
                return Completions((), requests=requests)
            return Completions((self.finished.popleft(),) if self.finished else ())
        return self.world.driver._perform(effect)

    def published(self, service: str, region: str, item: str, *_: Any) -> None:
        self.log.append(f"publish {service}/{item}")

    def run(self, services: list[str], concurrency: int) -> None:
        jobs = [ServiceJob(self.world.app.service(name), get_layout("native"))
                for name in services]
        settings = ReplicationSettings(concurrency=concurrency)
        drive(replicate(self.world.catalog, jobs, settings, once=True,
                        hooks=Hooks(on_publish=self.published)), self.perform)


def started(log: list[str]) -> list[str]:
    return [line.split(" ", 1)[1] for line in log if line.startswith("start ")]


def test_log_segments_go_before_an_older_base_backup() -> None:
    world = World()
    world.produce("orders", 3, base_first=True)
    world.app.enable("orders", SECONDARY)
    step = StepDriver(world)
    step.run(["orders"], concurrency=1)
    keys = started(step.log)
    assert ["/log/" in k for k in keys[:3]] == [True, True, True], keys
    assert all("/base/" in k for k in keys[3:]), keys
    assert keys[-1].endswith("manifest.json"), keys  # the completion marker last


def test_each_item_is_published_the_moment_its_copy_verifies() -> None:
    world = World()
    world.produce("orders", 3)
    world.app.enable("orders", SECONDARY)
    step = StepDriver(world)
    step.run(["orders"], concurrency=1)
    kinds = [line.split(" ")[0] for line in step.log]
    assert kinds == ["start", "publish"] * 3, step.log


def test_services_take_turns_in_the_log_lane() -> None:
    world = World()
    world.produce("orders", 3)
    world.produce("shop", 3)
    for name in ("orders", "shop"):
        world.app.enable(name, SECONDARY)
    step = StepDriver(world)
    step.run(["orders", "shop"], concurrency=1)
    owners = [key.split("/")[0] for key in started(step.log)]
    assert owners == ["orders", "shop"] * 3, owners


def test_base_backups_leave_streams_to_the_log_lane() -> None:
    world = World()
    for _ in range(3):  # three bases of two payload objects each
        world.produce("orders", 1, base_first=True)
    world.app.enable("orders", SECONDARY)
    step = StepDriver(world)
    step.run(["orders"], concurrency=4)  # bases may hold 4 - 4 // 4 = 3
    assert step.most_in_flight["base"] == 3
    assert step.most_in_flight["log"] >= 1
    world.assert_published_items_whole("orders", SECONDARY)


def test_base_streams_setting() -> None:
    assert ReplicationSettings(concurrency=1).base_stream_limit == 1
    assert ReplicationSettings(concurrency=4).base_stream_limit == 3
    assert ReplicationSettings(concurrency=12).base_stream_limit == 9
    assert ReplicationSettings(concurrency=8, base_streams=2).base_stream_limit == 2
    assert ReplicationSettings(concurrency=8, base_streams=20).base_stream_limit == 8


def test_backlog_per_lane_in_status_while_the_destination_is_down() -> None:
    world = World()
    world.produce("orders", 3, base_first=True)
    world.app.enable("orders", SECONDARY)
    world.stores[SECONDARY].unreachable = True
    world.app.sync(["orders"])
    backlog = world.app.status_of("orders").backlog
    assert backlog["log"].items == 3
    assert backlog["base"].items == 1
    sizes = {row.item_id: row.size for row in world.catalog.items("orders", SECONDARY)}
    assert backlog["log"].bytes + backlog["base"].bytes == sum(sizes.values()) > 0
    world.stores[SECONDARY].unreachable = False
    world.app.sync(["orders"])
    assert world.app.status_of("orders").backlog == {}


def test_a_bug_in_one_services_cycle_does_not_stop_the_others(
        monkeypatch: pytest.MonkeyPatch) -> None:
    world = World()
    world.produce("orders", 2)
    world.produce("shop", 2)
    for name in ("orders", "shop"):
        world.app.enable(name, SECONDARY)
    real = engine.scheduler.discover_primary

    def broken(catalog: Any, layout: Any, service: Any, *args: Any, **kwargs: Any) -> Any:
        if service.name == "shop":
            raise RuntimeError("a reader's bug")
        return real(catalog, layout, service, *args, **kwargs)

    monkeypatch.setattr(engine.scheduler, "discover_primary", broken)
    orders, shop = world.app.sync()
    assert len(orders.published) == 2
    assert shop.unexpected == "unexpected RuntimeError in the listing cycle: a reader's bug"
    assert "Traceback" in shop.unexpected_detail
    assert any("a reader's bug" in e.message for e in world.app.events(10, "shop"))


def test_an_item_failed_in_an_earlier_run_is_queued_to_be_tried_again() -> None:
    world = World(max_attempts=1)
    world.produce("orders", 2)
    world.app.enable("orders", SECONDARY)
    world.stores[SECONDARY].corrupt = lambda key: "0000000001" in key
    [first] = world.app.sync(["orders"])
    assert first.failed == ["log/1/0000000001"]
    # Queued from the catalog as pending: in its lane once, so that a listing's "one more
    # try for what was given up" cannot queue it a second time.
    queue = DestinationQueue(world.app.service("orders"), SECONDARY, RegionRole.SECONDARY)
    queue.add(world.catalog.items("orders", SECONDARY, statuses=UNFINISHED))
    assert {i: w.row.status for i, w in queue.items.items()} == {
        "log/1/0000000001": ItemStatus.PENDING}
    world.stores[SECONDARY].corrupt = lambda key: False
    step = StepDriver(world)
    step.run(["orders"], concurrency=1)
    assert [line.split(" ")[0] for line in step.log] == ["start", "publish"]
    world.assert_published_items_whole("orders", SECONDARY)

"""Incremental listing of a primary (engine.listing): a pass with nothing new costs a few short
listing requests whatever the history, and nothing new is missed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from engine.copy_queue import DestinationQueue
from engine.effects import Effect, ListPage
from engine.errors import Unreachable
from engine.formats import get_layout
from engine.formats.native import write_stream_history
from engine.location_faults import FaultBook
from engine.model import RegionRole
from engine.replication import PassOutcome
from engine.scheduler import replicate
from engine.service_jobs import ServiceJob, ServiceRun
from engine.storage.base import ListPage as ListPageResult
from tests.worlds import T0, World

PRIMARY, SECONDARY = "aws-eu-west-1", "aws-eu-central-1"


def counted_pass(world: World, *, full: bool = False) -> tuple[list[ListPage], int]:
    """One listing cycle of "orders" (the scheduler run once, its copies finished); the
    ListPage effects it made of the primary and the objects they returned."""
    seen: list[ListPage] = []
    returned = 0
    driver = world.driver
    real = driver._perform

    def perform(effect: Effect) -> Any:
        nonlocal returned
        result = real(effect)
        if isinstance(effect, ListPage) and effect.region == PRIMARY:
            seen.append(effect)
            returned += len(result.objects)
        return result

    service = world.app.service("orders")
    job = ServiceJob(service, get_layout(service.layout))
    driver._perform = perform  # type: ignore[method-assign]
    try:
        driver.run(replicate(world.catalog, [job], world.app.settings, once=True,
                             full_listing=full))
    finally:
        del driver._perform
    return seen, returned


@pytest.mark.parametrize("segments", [20, 400])
def test_a_pass_with_nothing_new_lists_a_few_empty_pages(segments: int) -> None:
    world = World()
    world.produce("orders", segments, base_first=True)
    world.app.enable("orders", SECONDARY)
    world.app.sync(["orders"])
    world.clock.advance(5)
    pages, returned = counted_pass(world)
    # base/ and log/, each after its cursor, nothing returned. log/1/ stands at the same key
    # as log/ (one stream), so log/'s page serves it too.
    assert [page.prefix for page in pages] == ["orders/base/", "orders/log/"]
    assert all(page.start_after for page in pages)
    assert returned == 0


def test_new_items_are_listed_alone_and_copied() -> None:
    world = World()
    world.produce("orders", 30, base_first=True)
    world.app.enable("orders", SECONDARY)
    world.app.sync(["orders"])
    world.produce("orders", 3, base_first=True)
    pages, returned = counted_pass(world)
    assert len(pages) == 2
    assert returned <= 3 + 4  # the new segments and base backup, each listed once
    primary = {i.item_id for i in world.catalog.items("orders", PRIMARY)}
    secondary = {i.item_id for i in world.catalog.items("orders", SECONDARY)}
    assert primary == secondary


def test_a_full_listing_comes_when_due_and_on_request() -> None:
    world = World()
    world.produce("orders", 10, base_first=True)
    world.app.enable("orders", SECONDARY)
    world.app.sync(["orders"])
    first = world.catalog.last_full_listing("orders")
    world.clock.advance(1)
    pages, _ = counted_pass(world, full=True)
    assert [p.prefix for p in pages] == ["orders/"]
    assert world.catalog.last_full_listing("orders") == world.clock.now() != first
    world.clock.advance(world.app.settings.full_listing_interval + 1)
    pages, _ = counted_pass(world)
    assert [p.prefix for p in pages] == ["orders/"]


def test_a_new_stream_that_sorts_after_the_others_is_found_incrementally() -> None:
    world = World()
    world.produce("orders", 5, base_first=True)
    world.app.enable("orders", SECONDARY)
    world.app.sync(["orders"])
    producer = world.producers["orders"]
    # A promotion: stream 2 continues stream 1 from the next seq on.
    write_stream_history(world.stores[PRIMARY].inner, "orders", "2", "1", producer.next_seq,
                         world.clock.now())
    producer.stream = "2"
    world.produce("orders", 3)
    pages, _ = counted_pass(world)
    assert all(page.start_after for page in pages)  # no full listing
    assert {i.stream for i in world.catalog.items("orders", SECONDARY)} >= {"1", "2"}
    assert world.app.window("orders", SECONDARY).end == world.clock.now()
    # Its first segment starts the stream, so the new area's cursor is past all three, and
    # log/'s with it: log/'s page serves log/2/. log/1/ ended behind log/'s cursor and is
    # listed on its own (a late segment of the old stream is found at once). The history
    # file sorts after the stream's segments (it is written before them) and moves no
    # cursor, so log/'s page shows it each time: one object, however long the stream grows.
    world.clock.advance(world.app.settings.listing_settle)
    pages, returned = counted_pass(world)
    assert [p.prefix for p in pages] == ["orders/base/", "orders/log/", "orders/log/1/"]
    assert returned == 1
    world.produce("orders", 20)
    counted_pass(world)
    world.clock.advance(5)
    pages, returned = counted_pass(world)
    assert (len(pages), returned) == (3, 1)


def test_an_area_gets_a_request_of_its_own_only_when_its_holder_would_miss_keys() -> None:
    from engine.listing import _covered

    one_stream = {"base/": "base/b1/manifest.json", "log/": "log/1/0005",
                  "log/1/": "log/1/0005", "log/2/": ""}
    assert [a for a in one_stream if not _covered(a, one_stream[a], one_stream)] == [
        "base/", "log/"]
    # log/ held back by a gap in stream 1: still before every key the streams lack.
    held = one_stream | {"log/": "log/1/0003"}
    assert not _covered("log/", held["log/"], held)
    assert _covered("log/2/", "log/2/0009", held)
    # log/ moved on to stream 2: a late key of stream 1 would sort before its cursor.
    moved = {"log/": "log/2/0008", "log/1/": "log/1/0005", "log/2/": "log/2/0008"}
    assert not _covered("log/1/", moved["log/1/"], moved)
    assert _covered("log/2/", moved["log/2/"], moved)



def test_idle_services_share_the_answer_of_their_destination() -> None:
    """FaultBook.look_at, stepped by hand: an answer stands for every service replicating to
    that region for one poll interval; a look under way or a failed one vouches for none."""
    world = World()
    book = FaultBook(world.catalog, fresh=10)
    runs = {name: ServiceRun(ServiceJob(world.app.service(name), get_layout("native")),
                             PassOutcome(name)) for name in ("orders", "shop", "cache")}
    queues = {name: DestinationQueue(run.job.service, SECONDARY, RegionRole.SECONDARY)
              for name, run in runs.items()}

    def look(name: str, at: float, answer: Exception | None = None) -> bool:
        """Did ``name`` make its own request?"""
        steps = book.look_at(queues[name], runs[name], T0 + timedelta(seconds=at))
        try:
            effect = next(steps)
        except StopIteration:
            return False
        assert isinstance(effect, ListPage)
        assert effect.region == SECONDARY
        try:
            effect = steps.throw(answer) if answer else steps.send(ListPageResult((), None))
            steps.send(T0 + timedelta(seconds=at))  # the time, asked for after a failure
        except StopIteration:
            pass
        return True

    assert look("orders", 0)
    assert not look("shop", 4)  # orders' answer stands
    assert queues["shop"].answered
    # Past half its time, one look renews it while the others still take it.
    renewal = book.look_at(queues["cache"], runs["cache"], T0 + timedelta(seconds=6))
    assert isinstance(next(renewal), ListPage)
    assert not look("shop", 7)
    with pytest.raises(StopIteration):
        renewal.send(ListPageResult((), None))
    assert not look("shop", 10)  # the renewed answer (of second 6) stands
    assert look("cache", 17)  # both too old by then
    queues["shop"].fault = "throttled"  # a fault of its own: it looks for itself
    assert look("shop", 18)
    queues["shop"].fault = ""
    assert look("orders", 30, Unreachable(SECONDARY, "", "down"))
    assert queues["orders"].paused
    assert look("shop", 31, Unreachable(SECONDARY, "", "down"))  # a failed look vouches
    assert queues["shop"].paused                                    # for no one
    steps = book.look_at(queues["cache"], runs["cache"], T0 + timedelta(seconds=32))
    assert isinstance(next(steps), ListPage)
    queues["shop"] = DestinationQueue(runs["shop"].job.service, SECONDARY, RegionRole.SECONDARY)
    assert look("shop", 33)  # a look under way vouches for no one either

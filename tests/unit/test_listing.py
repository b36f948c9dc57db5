"""Incremental listing of a primary (engine.listing): a pass with nothing new costs a few short
listing requests whatever the history, and nothing new is missed."""

from __future__ import annotations

from typing import Any

import pytest

from engine.effects import Effect, ListPage
from engine.formats import get_layout
from engine.formats.native import write_stream_history
from engine.scheduler import replicate
from engine.service_jobs import ServiceJob
from tests.worlds import World

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
    # base/, log/ and log/1/: one request each, each after its cursor, nothing returned.
    assert len(pages) == 3
    assert all(page.start_after for page in pages)
    assert returned == 0


def test_new_items_are_listed_alone_and_copied() -> None:
    world = World()
    world.produce("orders", 30, base_first=True)
    world.app.enable("orders", SECONDARY)
    world.app.sync(["orders"])
    world.produce("orders", 3, base_first=True)
    pages, returned = counted_pass(world)
    assert len(pages) == 3
    assert returned <= 3 + 4 * 2  # the new segments and base backup, some listed twice
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
    # Its first segment starts the stream, so the new area's cursor is past all three. The
    # history file sorts after the stream's segments (it is written before them) and moves
    # no cursor, so the pages of log/ and of the stream show it each time: two objects,
    # however long the stream grows.
    world.clock.advance(world.app.settings.listing_settle)
    pages, returned = counted_pass(world)
    assert (len(pages), returned) == (4, 2)
    world.produce("orders", 20)
    counted_pass(world)
    world.clock.advance(5)
    pages, returned = counted_pass(world)
    assert (len(pages), returned) == (4, 2)

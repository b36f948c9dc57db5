"""A full listing keeps the primary's item ids between full listings (FullListingMemo, read
by engine.replication._judged) and reads them again whenever anything but its own passes may
have changed them: another connection, a deletion by this one, a row added another way. A
segment whose row went away is found again by the next full listing."""

from __future__ import annotations

import pytest

import engine.catalog.items as catalog_items
from engine.formats import get_layout
from engine.listing import FullListingMemo
from engine.model import ItemKind, ItemStatus
from engine.replication import discover_primary
from tests.unit.test_catalog import log_item
from tests.worlds import World

PRIMARY, SECONDARY = "aws-eu-west-1", "aws-eu-central-1"


def full_listing(world: World, memo: FullListingMemo) -> None:
    service = world.app.service("orders")
    world.driver.run(discover_primary(world.catalog, get_layout(service.layout), service,
                                      world.app.settings, full=True, memo=memo))


def primary_ids(world: World) -> set[str]:
    return {row.item_id for row in world.catalog.items("orders", PRIMARY)}


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The services whose every item id a full listing read from the catalog."""
    seen: list[str] = []
    real = catalog_items.ItemsPart.listed_statuses

    def counted(self: catalog_items.ItemsPart, service: str,
                region: str) -> tuple[set[str], dict[str, str]]:
        seen.append(service)
        return real(self, service, region)

    monkeypatch.setattr(catalog_items.ItemsPart, "listed_statuses", counted)
    return seen


def test_the_ids_are_kept_and_told_of_what_each_pass_adds(reads: list[str]) -> None:
    world, memo = World(), FullListingMemo()
    world.produce("orders", 5, base_first=True)
    full_listing(world, memo)
    world.produce("orders", 3)
    full_listing(world, memo)
    world.produce("orders", 2)
    full_listing(world, memo)
    assert reads == ["orders"]  # the first full listing only
    assert memo.known == primary_ids(world)
    assert len(primary_ids(world)) == 1 + 10


def test_another_connection_writing_makes_them_read_again(
        reads: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    world, memo = World(), FullListingMemo()
    world.produce("orders", 3, base_first=True)
    full_listing(world, memo)
    version = world.catalog.data_version()
    monkeypatch.setattr(world.catalog, "data_version", lambda: version + 1)
    full_listing(world, memo)
    assert reads == ["orders", "orders"]


def test_a_row_added_another_way_makes_them_read_again(reads: list[str]) -> None:
    world, memo = World(), FullListingMemo()
    world.produce("orders", 3, base_first=True)
    full_listing(world, memo)
    world.catalog.add_items("orders", PRIMARY, [(log_item(1, stream="9"), None)],
                            ItemStatus.AVAILABLE, world.clock.now())
    world.produce("orders", 1)
    full_listing(world, memo)
    assert reads == ["orders", "orders"]
    assert memo.known == primary_ids(world)


def test_rows_this_connection_deleted_are_found_again(reads: list[str]) -> None:
    """The primary's rows dropped and as many others recorded: the count holds, and only the
    count of deletions tells the kept ids are stale. Kept, they would hide every segment."""
    world, memo = World(), FullListingMemo()
    world.produce("orders", 4, base_first=True)
    full_listing(world, memo)
    listed = primary_ids(world)
    world.catalog.forget_region("orders", PRIMARY)
    world.catalog.add_items("orders", PRIMARY,
                            [(log_item(seq, stream="9"), None) for seq in range(len(listed))],
                            ItemStatus.AVAILABLE, world.clock.now())
    assert world.catalog.item_count("orders", PRIMARY) == len(listed)
    full_listing(world, memo)
    assert reads == ["orders", "orders"]
    assert listed <= primary_ids(world)
    segments = world.catalog.items("orders", PRIMARY, kind=ItemKind.LOG,
                                   statuses=[ItemStatus.AVAILABLE])
    assert {row.stream for row in segments} == {"1"}  # the ones recorded another way: gone

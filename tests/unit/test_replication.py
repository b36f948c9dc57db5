from __future__ import annotations

import pytest

from engine.api import ServiceState
from engine.errors import DeletionNotConfirmed, OnlyRestorableCopy, ReplicationNotEnabled
from engine.model import ItemStatus, RegionRole, RegionState
from engine.storage.faults import InjectedCrash
from tests.worlds import World

PRIMARY, SECONDARY, THIRD = "aws-eu-west-1", "aws-eu-central-1", "aws-eu-north-1"


def keys(world: World, region: str) -> dict[str, bytes]:
    store = world.stores[region].inner
    return {o.key: store.read_bytes(o.key) for o in store.iter_objects("orders/")}


def test_sync_copies_byte_identical_with_same_layout() -> None:
    world = World()
    world.produce("orders", 5, base_first=True)
    world.app.enable("orders", SECONDARY)
    [outcome] = world.app.sync(["orders"])
    assert outcome.discovered == 6
    assert len(outcome.published) == 6
    assert keys(world, SECONDARY) == keys(world, PRIMARY)
    primary, secondary = world.app.windows("orders")
    assert secondary.role == RegionRole.SECONDARY
    assert secondary.intervals == primary.intervals
    assert secondary.end == world.clock.now()


def test_incomplete_base_backup_is_not_copied() -> None:
    world = World()
    world.produce("orders", 1, base_first=True)
    store = world.stores[PRIMARY].inner
    store.write("orders/base/next/data/part-0.json", b"{}")  # payload, no manifest yet
    world.app.enable("orders", SECONDARY)
    world.app.sync(["orders"])
    assert not any("base/next" in k for k in keys(world, SECONDARY))


def test_payload_before_marker_and_marker_last() -> None:
    world = World(concurrency=1)
    world.produce("orders", 0, base_first=True)
    world.app.enable("orders", SECONDARY)
    world.app.sync(["orders"])
    copied = [a["key"] for a in world.catalog.copy_attempts("orders", SECONDARY)]
    assert copied[-1].endswith("manifest.json")
    assert all("data/" in k for k in copied[:-1])


def test_interrupted_sync_resumes_and_never_publishes_early() -> None:
    world = World(concurrency=4)
    for _ in range(3):
        world.produce("orders", 4, base_first=True)
    world.app.enable("orders", SECONDARY)
    world.stores[SECONDARY].crash_after = 7
    with pytest.raises(InjectedCrash):
        world.app.sync(["orders"])
    world.assert_published_items_whole("orders", SECONDARY)
    done_before = {a["key"] for a in world.catalog.copy_attempts("orders", SECONDARY) if a["ok"]}
    assert done_before
    world.stores[SECONDARY].crash_after = None
    world.app.sync(["orders"])
    world.assert_published_items_whole("orders", SECONDARY)
    assert keys(world, SECONDARY) == keys(world, PRIMARY)
    attempts = world.catalog.copy_attempts("orders", SECONDARY)
    recopied = [a["key"] for a in attempts[len(done_before):] if a["key"] in done_before]
    assert recopied == []


def test_corrupted_copy_is_never_published_and_is_repaired() -> None:
    world = World()
    world.produce("orders", 3, base_first=True)
    world.app.enable("orders", SECONDARY)
    world.stores[SECONDARY].corrupt = lambda key: key.endswith("part-1.json")
    [outcome] = world.app.sync(["orders"])
    bases = world.catalog.items("orders", SECONDARY, kind=None)
    base = next(i for i in bases if i.item_id.startswith("base/"))
    assert base.status == ItemStatus.FAILED
    assert base.item_id in outcome.failed
    assert world.app.window("orders", SECONDARY).end is None  # no base backup, no window
    world.stores[SECONDARY].corrupt = lambda key: False
    world.app.sync(["orders"])
    world.assert_published_items_whole("orders", SECONDARY)
    assert world.app.window("orders", SECONDARY).end == world.clock.now()


def test_unreachable_secondary_pauses_then_resumes_by_itself() -> None:
    world = World()
    world.produce("orders", 2, base_first=True)
    world.app.enable("orders", SECONDARY)
    world.stores[SECONDARY].unreachable = True
    [outcome] = world.app.sync(["orders"])
    assert SECONDARY in outcome.paused
    location = world.catalog.location("orders", SECONDARY)
    assert location is not None
    assert location.state == RegionState.PAUSED
    status = next(s for s in world.app.status() if s.name == "orders")
    assert status.state is ServiceState.PAUSED
    assert status.state_reason.startswith(f"{SECONDARY} unreachable")
    world.app.sync(["orders"])  # still down: stays paused, no crash
    world.stores[SECONDARY].unreachable = False
    world.app.sync(["orders"])
    location = world.catalog.location("orders", SECONDARY)
    assert location is not None
    assert location.state == RegionState.ACTIVE
    assert keys(world, SECONDARY) == keys(world, PRIMARY)


def test_unreachable_primary_is_reported_not_paused() -> None:
    world = World()
    world.produce("orders", 1, base_first=True)
    world.app.enable("orders", SECONDARY)
    world.stores[PRIMARY].unreachable = True
    [outcome] = world.app.sync(["orders"])
    assert "injected outage" in outcome.primary_error
    location = world.catalog.location("orders", SECONDARY)
    assert location is not None
    assert location.state == RegionState.ACTIVE


def test_lag_is_secondary_available_minus_primary_completion() -> None:
    world = World()
    world.produce("orders", 2, base_first=True)
    world.app.enable("orders", SECONDARY)
    world.clock.advance(90)
    world.app.sync(["orders"])
    items = world.catalog.items("orders", SECONDARY)
    newest = max(items, key=lambda i: i.completed_at)
    assert newest.lag_seconds == pytest.approx(90.0)
    report = world.app.lag("orders", __import__("engine.lag").lag.Period.HOUR)
    assert report.stats.count == len(items)
    assert report.stats.max == pytest.approx(90.0 + 120.0)
    assert report.current_lag_seconds == 0.0


def test_window_moves_with_each_log_segment() -> None:
    world = World()
    world.produce("orders", 2, base_first=True)
    world.app.enable("orders", SECONDARY)
    world.app.sync(["orders"])
    first_end = world.app.window("orders", SECONDARY).end
    world.produce("orders", 1)
    world.app.sync(["orders"])
    assert world.app.window("orders", SECONDARY).end == world.clock.now() != first_end


def test_change_region_keeps_old_until_new_can_restore() -> None:
    world = World()
    world.produce("orders", 2, base_first=True)
    world.app.enable("orders", SECONDARY)
    world.app.sync(["orders"])
    world.app.change_region("orders", THIRD)
    assert world.catalog.location("orders", SECONDARY).role == RegionRole.PREVIOUS  # type: ignore[union-attr]
    # The new region fails at first: the old one must keep replicating meanwhile.
    world.stores[THIRD].unreachable = True
    world.produce("orders", 1)
    world.app.sync(["orders"])
    assert world.app.window("orders", SECONDARY).end == world.clock.now()
    assert world.catalog.location("orders", SECONDARY).role == RegionRole.PREVIOUS  # type: ignore[union-attr]
    world.stores[THIRD].unreachable = False
    world.app.sync(["orders"])
    old = world.catalog.location("orders", SECONDARY)
    assert old is not None
    assert old.role == RegionRole.RETAINED
    assert world.app.window("orders", THIRD).end == world.clock.now()
    assert world.app.window("orders", SECONDARY).end is not None  # retained, still listed
    retained = world.catalog.items("orders", SECONDARY)
    assert {i.status for i in retained} == {ItemStatus.RETAINED}


def test_disable_keep_retains_and_stops() -> None:
    world = World()
    world.produce("orders", 2, base_first=True)
    world.app.enable("orders", SECONDARY)
    world.app.sync(["orders"])
    outcome = world.app.disable("orders", keep=True, delete=False, confirmed=False)
    assert outcome.regions == [SECONDARY]
    world.produce("orders", 3)
    world.app.sync(["orders"])
    assert world.app.window("orders", SECONDARY).end < world.clock.now()  # type: ignore[operator]
    assert {i.status for i in world.catalog.items("orders", SECONDARY)} == {ItemStatus.RETAINED}
    assert world.app.additional_region("orders") is None
    with pytest.raises(ReplicationNotEnabled):
        world.app.disable("orders", keep=True, delete=False, confirmed=False)
    world.app.enable("orders", SECONDARY)  # enabling again picks up the kept copies
    assert {i.status for i in world.catalog.items("orders", SECONDARY)} == {ItemStatus.AVAILABLE}
    world.app.sync(["orders"])
    assert world.app.window("orders", SECONDARY).end == world.clock.now()


def test_disable_delete_needs_confirmation_and_spares_the_primary() -> None:
    world = World()
    world.produce("orders", 2, base_first=True)
    world.app.enable("orders", SECONDARY)
    world.app.sync(["orders"])
    before = keys(world, PRIMARY)
    with pytest.raises(DeletionNotConfirmed):
        world.app.disable("orders", keep=False, delete=True, confirmed=False)
    outcome = world.app.disable("orders", keep=False, delete=True, confirmed=True)
    assert outcome.deleted_objects == len(before)
    assert keys(world, SECONDARY) == {}
    assert keys(world, PRIMARY) == before
    assert [a["action"] for a in world.catalog.audit_log("orders")] == ["enable", "disable"]


def test_disable_delete_refused_when_secondary_is_the_only_copy() -> None:
    world = World()
    world.produce("orders", 2, base_first=True)
    world.app.enable("orders", SECONDARY)
    world.app.sync(["orders"])
    # The primary's retention removes the old base backup: only the secondary restores it.
    store = world.stores[PRIMARY].inner
    for info in list(store.iter_objects("orders/base/")):
        store.delete(info.key)
    world.produce("orders", 1, base_first=True)
    with pytest.raises(OnlyRestorableCopy) as refused:
        world.app.disable("orders", keep=False, delete=True, confirmed=True)
    assert refused.value.exit_code == 3
    assert keys(world, SECONDARY)  # nothing was deleted


def test_services_that_are_not_replicable_are_skipped() -> None:
    world = World()
    world.produce("orders", 1, base_first=True)
    assert world.app.sync() == [] or all(o.service != "cache" for o in world.app.sync())

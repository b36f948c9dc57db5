"""Deletion safety: `disable --delete` removes only what btar itself copied into the region (the
keys its catalog records there), completion markers first, and an interrupted deletion never
leaves the catalog promising copies that are gone."""

from __future__ import annotations

import pytest

from engine.effects import DeleteBatch
from engine.model import ItemStatus, RegionState
from engine.storage.faults import InjectedCrash
from tests.worlds import World

PRIMARY, SECONDARY = "aws-eu-west-1", "aws-eu-central-1"


def keys(world: World, region: str, prefix: str = "orders/") -> set[str]:
    return {o.key for o in world.stores[region].inner.iter_objects(prefix)}


def synced() -> World:
    world = World()
    world.produce("orders", 4, base_first=True)
    world.produce("shop", 2, base_first=True)
    world.app.enable("orders", SECONDARY)
    world.app.enable("shop", SECONDARY)
    world.app.sync()
    return world


def test_a_foreign_object_under_the_same_prefix_is_left_and_counted() -> None:
    world = synced()
    store = world.stores[SECONDARY].inner
    copied = keys(world, SECONDARY)
    foreign = {"orders/README.txt", "orders/base/handmade/data/x.json",
               "orders/base/handmade/manifest.json", "orders/log/1/notes.txt"}
    for key in foreign:
        store.write(key, b"not btar's")
    shop_before = keys(world, SECONDARY, "shop/")
    outcome = world.app.disable("orders", keep=False, delete=True, confirmed=True)
    assert outcome.deleted_objects == len(copied)
    assert outcome.left_objects == len(foreign)
    assert keys(world, SECONDARY) == foreign
    assert keys(world, SECONDARY, "shop/") == shop_before  # another service: untouched
    assert keys(world, PRIMARY)  # the primary: untouched
    [event] = [e for e in world.catalog.events(service="orders")
               if "replication disabled" in e.message]
    assert f"{len(copied)} objects deleted" in event.message
    assert f"{len(foreign)} objects under orders/ that btar did not copy" in event.message
    audit = world.catalog.audit_log("orders")[-1]
    assert '"left_objects": 4' in audit["details"]


def test_when_the_catalog_and_the_storage_disagree_only_catalogued_keys_go() -> None:
    world = synced()
    store = world.stores[SECONDARY].inner
    copied = sorted(keys(world, SECONDARY))
    # Storage lost one of btar's copies behind its back, and holds an object the catalog
    # never recorded for this region (copied by hand from the primary: same bytes, same key).
    store.delete(copied[0])
    world.produce("orders", 1)
    new_segment = sorted(keys(world, PRIMARY) - set(copied))[0]
    store.write(new_segment, world.stores[PRIMARY].inner.read_bytes(new_segment))
    # And the catalog records a copy in flight (pending: copied, not yet verified) whose
    # object is there: btar copied it, so it goes too.
    outcome = world.app.disable("orders", keep=False, delete=True, confirmed=True)
    assert outcome.deleted_objects == len(copied) - 1  # the lost one was not there to delete
    assert outcome.left_objects == 1
    assert keys(world, SECONDARY) == {new_segment}
    assert world.catalog.items("orders", SECONDARY) == []
    assert world.catalog.location("orders", SECONDARY) is None


def test_an_object_copied_by_an_interrupted_pass_is_btars_and_is_deleted() -> None:
    world = synced()
    world.produce("orders", 3)
    world.stores[SECONDARY].crash_after = 1  # the pass dies after one more copy
    with pytest.raises(InjectedCrash):
        world.app.sync(["orders"])
    world.stores[SECONDARY].crash_after = None
    outcome = world.app.disable("orders", keep=False, delete=True, confirmed=True)
    assert outcome.left_objects == 0
    assert keys(world, SECONDARY) == set()


class DiesOnSecondDelete:
    """A driver wrapper: the process dies in the middle of deleting."""

    def __init__(self, world: World) -> None:
        self.inner = world.driver
        self.batches = 0

    def now(self):  # type: ignore[no-untyped-def]
        return self.inner.now()

    def run(self, procedure):  # type: ignore[no-untyped-def]
        def guarded():  # type: ignore[no-untyped-def]
            result = None
            while True:
                try:
                    effect = procedure.send(result)
                except StopIteration as stop:
                    return stop.value
                if isinstance(effect, DeleteBatch):
                    self.batches += 1
                    if self.batches == 2:
                        raise InjectedCrash("killed while deleting")
                result = yield effect
        return self.inner.run(guarded())


def test_an_interrupted_deletion_promises_nothing_and_finishes_when_run_again() -> None:
    world = World()
    world.produce("orders", 600, base_first=True)  # more than one batch of 500 deletions
    world.app.enable("orders", SECONDARY)
    world.app.sync(["orders"])
    world.app.driver = DiesOnSecondDelete(world)  # type: ignore[assignment]
    with pytest.raises(InjectedCrash):
        world.app.disable("orders", keep=False, delete=True, confirmed=True)
    remaining = keys(world, SECONDARY)
    assert remaining  # half done
    # The catalog promises nothing in that region any more...
    assert not world.catalog.items("orders", SECONDARY, statuses=[ItemStatus.AVAILABLE])
    assert world.app.window("orders", SECONDARY).end is None
    # ...markers went first: no manifest is left without its payload...
    assert not any(k.endswith("manifest.json") for k in remaining)
    location = world.catalog.location("orders", SECONDARY)
    assert location is not None
    assert location.state == RegionState.STOPPED
    # ...a sync does not copy into it again...
    world.app.driver = world.driver
    [outcome] = world.app.sync(["orders"])
    assert outcome.copied_objects == 0
    assert keys(world, SECONDARY) == remaining
    # ...and disable --delete again finishes the job.
    world.app.disable("orders", keep=False, delete=True, confirmed=True)
    assert keys(world, SECONDARY) == set()
    assert world.catalog.location("orders", SECONDARY) is None

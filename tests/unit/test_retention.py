"""Retention in the additional region: old backups go, what the window needs and the only
copy of a point in time stay, and nothing expired is ever copied again. Retention judges only
after a full listing of the primary, so the passes here list in full."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from engine.config import parse_config
from engine.errors import ConfigError
from engine.model import ItemKind, ItemStatus
from engine.retention import RetentionPolicy
from engine.storage.faults import InjectedCrash
from tests.worlds import World

PRIMARY, SECONDARY = "aws-eu-west-1", "aws-eu-central-1"


def keys(world: World, region: str) -> set[str]:
    return {o.key for o in world.stores[region].inner.iter_objects("orders/")}


def three_generations(policy: RetentionPolicy) -> World:
    world = World()
    world.app.retention = {"orders": policy}
    world.app.enable("orders", SECONDARY)
    for _ in range(3):
        world.produce("orders", 4, base_first=True)
        world.app.sync(["orders"], full_listing=True)
    return world


def test_keep_count_deletes_old_backups_and_only_their_segments() -> None:
    world = three_generations(RetentionPolicy(keep_count=1))
    primary = keys(world, PRIMARY)
    [outcome] = world.app.sync(["orders"], full_listing=True)
    bases = world.catalog.items("orders", SECONDARY, kind=ItemKind.BASE,
                                statuses=[ItemStatus.AVAILABLE])
    assert len(bases) == 1
    window = world.app.window("orders", SECONDARY)
    assert window.start == bases[0].end_time
    assert window.end == world.clock.now()
    assert keys(world, PRIMARY) == primary  # never in the primary
    left = keys(world, SECONDARY)
    assert left < primary
    assert not any(f"/{b.item_id}/" in k for b in
                   world.catalog.items("orders", SECONDARY, statuses=[ItemStatus.EXPIRED])
                   if b.kind == ItemKind.BASE for k in left)
    world.assert_published_items_whole("orders", SECONDARY)
    # The next pass copies nothing back.
    [again] = world.app.sync(["orders"], full_listing=True)
    assert again.copied_objects == 0
    assert keys(world, SECONDARY) == left
    assert outcome.retired == 0  # the deletion happened in the last pass of the fixture


def test_keep_age_keeps_young_backups() -> None:
    world = three_generations(RetentionPolicy(keep_count=1, keep_age=timedelta(hours=1)))
    bases = world.catalog.items("orders", SECONDARY, kind=ItemKind.BASE,
                                statuses=[ItemStatus.AVAILABLE])
    assert len(bases) == 3  # all three are younger than an hour (4 minutes apart)


def test_the_only_copy_of_a_point_in_time_is_kept() -> None:
    world = World()
    world.app.enable("orders", SECONDARY)
    for _ in range(3):
        world.produce("orders", 4, base_first=True)
    world.app.sync(["orders"], full_listing=True)
    # The primary's own retention removed its two oldest backups and their segments.
    store = world.stores[PRIMARY].inner
    newest = max(o.key.split("/")[2] for o in store.iter_objects("orders/base/"))
    for info in list(store.iter_objects("orders/")):
        if "/base/" in info.key and f"/{newest}/" not in info.key:
            store.delete(info.key)
    world.app.retention = {"orders": RetentionPolicy(keep_count=1)}
    before = keys(world, SECONDARY)
    world.app.sync(["orders"], full_listing=True)
    assert keys(world, SECONDARY) == before
    assert any("only restorable copy" in e.message for e in world.app.events(service="orders"))


def test_an_interrupted_deletion_is_finished_by_the_next_pass() -> None:
    world = three_generations(RetentionPolicy(keep_count=3))
    world.app.retention = {"orders": RetentionPolicy(keep_count=1)}

    calls = {"n": 0}
    real_delete = world.stores[SECONDARY].inner.delete

    def crash_after_two(key: str) -> None:
        calls["n"] += 1
        if calls["n"] > 2:
            raise InjectedCrash("killed mid-deletion")
        real_delete(key)

    world.stores[SECONDARY].inner.delete = crash_after_two  # type: ignore[method-assign]
    with pytest.raises(InjectedCrash):
        world.app.sync(["orders"], full_listing=True)
    # Nothing withdrawn counts as restorable; everything still available is whole.
    world.assert_published_items_whole("orders", SECONDARY)
    assert world.catalog.items("orders", SECONDARY, statuses=[ItemStatus.DELETING])
    world.stores[SECONDARY].inner.delete = real_delete  # type: ignore[method-assign]
    world.app.sync(["orders"], full_listing=True)
    assert not world.catalog.items("orders", SECONDARY, statuses=[ItemStatus.DELETING])
    world.assert_published_items_whole("orders", SECONDARY)
    assert world.app.window("orders", SECONDARY).end == world.clock.now()


def test_retention_config(tmp_path: Path) -> None:
    base = {"regions": {PRIMARY: "file:///tmp/a"},
            "services": [{"name": "orders", "type": "postgresql", "region": PRIMARY,
                          "retention": {"keep_count": 7, "keep_age": "14d"}}]}
    config = parse_config(base, "btar.toml")
    retention = config.services[0].retention
    assert retention is not None
    assert retention.policy() == RetentionPolicy(7, timedelta(days=14))
    base["services"][0]["retention"] = {"keep_count": 0}  # type: ignore[index]
    with pytest.raises(ConfigError) as bad:
        parse_config(base, "btar.toml")
    assert "services[0].retention.keep_count" in str(bad.value)


def test_retention_waits_for_a_full_listing() -> None:
    """An incremental listing cannot see what left the primary, so it never deletes."""
    world = three_generations(RetentionPolicy(keep_count=1))
    world.produce("orders", 4, base_first=True)
    world.app.sync(["orders"], full_listing=True)
    world.produce("orders", 4, base_first=True)
    before = keys(world, SECONDARY)
    [outcome] = world.app.sync(["orders"])
    assert outcome.retired == 0
    assert keys(world, SECONDARY) >= before
    [outcome] = world.app.sync(["orders"], full_listing=True)
    assert outcome.retired > 0

"""Faults from storage, one test per kind, through engine.storage.faults.FaultyStorage: btar
retries, pauses a region with a reason, resumes by itself, and never publishes (or leaves under
a real key) anything that did not verify. After every pass the secondary is checked from the
bytes up (sound()).
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from engine.api import ServiceState
from engine.formats import get_layout
from engine.model import ItemStatus, RegionState
from engine.replication import ReplicationSettings, discover_primary
from tests.worlds import World

PRIMARY, SECONDARY = "aws-eu-west-1", "aws-eu-central-1"


def objects(world: World, region: str) -> dict[str, bytes]:
    store = world.stores[region].inner
    return {o.key: store.read_bytes(o.key) for o in store.iter_objects("orders/")}


def sound(world: World) -> None:
    """What must hold whatever the storage did: published items are whole and verified, the
    secondary holds only byte-identical copies of primary objects (nothing unverified stays
    under a real key), and no completion marker without its whole payload."""
    world.assert_published_items_whole("orders", SECONDARY)
    primary, secondary = objects(world, PRIMARY), objects(world, SECONDARY)
    for key, data in secondary.items():
        assert primary.get(key) == data, f"{key} in the secondary is not the primary's"
    for key, data in secondary.items():
        if key.endswith("/manifest.json"):
            folder = key.rsplit("/", 1)[0]
            for entry in json.loads(data)["objects"]:
                payload = secondary.get(f"{folder}/{entry['key']}")
                assert payload is not None, f"{key} published without {entry['key']}"
                assert hashlib.sha256(payload).hexdigest() == entry["sha256"]
    for item in world.catalog.items("orders", SECONDARY, statuses=[ItemStatus.AVAILABLE]):
        attempts = [a for a in world.catalog.copy_attempts("orders", SECONDARY)
                    if a["ok"] and a["key"].startswith(item.item_id)]
        assert all(a["verified_by"] for a in attempts)


def available(world: World, region: str = SECONDARY) -> set[str]:
    return {i.item_id for i in world.catalog.items("orders", region,
                                                    statuses=[ItemStatus.AVAILABLE])}


def everything_copied(world: World) -> None:
    sound(world)
    assert objects(world, SECONDARY) == objects(world, PRIMARY)
    assert available(world) == available(world, PRIMARY)
    assert world.app.window("orders", SECONDARY).end == world.app.window("orders", PRIMARY).end


def started(segments: int = 6, **settings: int) -> World:
    world = World(**settings)
    world.produce("orders", segments, base_first=True)
    world.app.enable("orders", SECONDARY)
    return world


def test_throttling_is_retried_after_a_backoff_within_the_pass() -> None:
    world = started(concurrency=4)
    secondary = world.stores[SECONDARY]
    secondary.throttle_next = 3
    before = world.clock.now()
    [outcome] = world.app.sync(["orders"])
    assert secondary.injected == {"throttle": 3}
    assert not outcome.failed
    assert not outcome.paused
    assert world.clock.now() - before >= timedelta(seconds=1)  # it backed off
    everything_copied(world)
    refused = [a for a in world.catalog.copy_attempts("orders", SECONDARY) if not a["ok"]]
    assert len(refused) == 2  # the third slowed down the first look at the destination
    assert all("slow down" in a["error"] for a in refused)


def test_throttling_that_outlasts_the_attempts_fails_items_and_the_next_pass_copies() -> None:
    world = started()
    secondary = world.stores[SECONDARY]
    secondary.throttle_next = 10_000
    [outcome] = world.app.sync(["orders"])
    assert outcome.failed
    assert not outcome.published
    assert not outcome.paused  # slowing down is not an outage
    location = world.catalog.location("orders", SECONDARY)
    assert location is not None
    assert location.state == RegionState.ACTIVE
    failed = world.catalog.items("orders", SECONDARY, statuses=[ItemStatus.FAILED])
    assert failed
    assert all("failed 3 times" in i.reason for i in failed)
    sound(world)
    secondary.throttle_next = 0
    world.app.sync(["orders"])
    everything_copied(world)


def test_a_timeout_pauses_the_region_with_a_reason_and_it_resumes_by_itself() -> None:
    world = started()
    world.stores[SECONDARY].timeout_next = 1
    [outcome] = world.app.sync(["orders"])
    assert "timed out" in outcome.paused[SECONDARY]
    location = world.catalog.location("orders", SECONDARY)
    assert location is not None
    assert location.state == RegionState.PAUSED
    assert "timed out" in location.reason
    status = next(s for s in world.app.status() if s.name == "orders")
    assert status.state is ServiceState.PAUSED
    assert status.state_reason.startswith(f"{SECONDARY} unreachable: ")
    assert "timed out" in status.state_reason
    assert status.state_with_reason == f"paused: {status.state_reason}"
    paused = world.catalog.items("orders", SECONDARY, statuses=[ItemStatus.PAUSED])
    assert paused
    assert all("timed out" in i.reason for i in paused)
    sound(world)
    [outcome] = world.app.sync(["orders"])
    assert not outcome.paused
    assert any("resuming" in e.message for e in world.catalog.events(service="orders"))
    everything_copied(world)


def test_a_connection_reset_mid_read_leaves_no_partial_object() -> None:
    world = started()
    primary = world.stores[PRIMARY]
    reset = next(k for k in objects(world, PRIMARY) if k.endswith("part-1.json"))
    primary.reset_reads = lambda key: key == reset
    [outcome] = world.app.sync(["orders"])
    assert primary.injected == {"reset": 1}
    assert "connection reset" in outcome.primary_error  # the source failed: nothing paused
    assert reset not in objects(world, SECONDARY)  # half an object never lands
    assert not any(i.startswith("base/") for i in available(world))
    sound(world)
    primary.reset_reads = lambda key: False
    world.app.sync(["orders"])
    everything_copied(world)


def test_a_copy_that_claims_success_over_wrong_bytes_is_never_published() -> None:
    """A server-side copy whose provider checksum says "identical to the source" while the
    bytes differ: only the SHA-256 the primary recorded publishes, and the wrong bytes are
    removed (a log segment is its own completion marker)."""
    world = started()
    secondary = world.stores[SECONDARY]
    keys = sorted(objects(world, PRIMARY))
    lied = {next(k for k in keys if k.endswith("part-0.json")),
            next(k for k in keys if "/log/" in k)}
    secondary.lie_on_copy = lambda key: key in lied
    [outcome] = world.app.sync(["orders"])
    assert secondary.injected["lie"] == 2 * 3  # every attempt lied
    assert len(outcome.failed) == 2
    for key in lied:
        assert key not in objects(world, SECONDARY)
    assert any("removed the unverified copy" in e.message
               for e in world.catalog.events(service="orders"))
    sound(world)
    secondary.lie_on_copy = lambda key: False
    world.app.sync(["orders"])
    everything_copied(world)


def test_a_corrupted_streamed_copy_is_removed_and_repaired() -> None:
    world = started()
    segment = next(k for k in objects(world, PRIMARY) if "/log/" in k)
    world.stores[SECONDARY].corrupt = lambda key: key == segment
    world.app.sync(["orders"])
    assert segment not in objects(world, SECONDARY)
    sound(world)
    world.stores[SECONDARY].corrupt = lambda key: False
    world.app.sync(["orders"])
    everything_copied(world)


def test_a_listing_that_omits_a_new_key_once_only_delays_it() -> None:
    """Missed by a full listing: found by the next full one (a cursor may pass it)."""
    world = started()
    keys = sorted(objects(world, PRIMARY))
    omitted = {next(k for k in keys if k.endswith("manifest.json")),
               next(k for k in keys if "/log/1/0000000003_" in k)}
    world.stores[PRIMARY].omit_once = set(omitted)
    world.app.sync(["orders"])
    assert world.stores[PRIMARY].injected == {"omit": 2}
    assert not any(k in omitted for k in objects(world, SECONDARY))
    sound(world)
    world.app.sync(["orders"], full_listing=True)
    everything_copied(world)


def test_a_segment_missed_by_an_incremental_listing_is_found_by_the_next_one() -> None:
    """Archivers upload in parallel: segment 9 may be listed before segment 8 lands. The
    cursor stops before 9, so the next incremental pass finds 8."""
    world = started()
    world.app.sync(["orders"])
    world.produce("orders", 3)
    primary = world.stores[PRIMARY].inner
    late = next(k for k in objects(world, PRIMARY) if "/log/1/0000000008_" in k)
    data = primary.read_bytes(late)
    primary.delete(late)  # still uploading
    world.clock.advance(300)  # 9 is old by then: age alone must not settle it
    full_at = world.catalog.last_full_listing("orders")
    world.app.sync(["orders"])
    assert late not in objects(world, SECONDARY)
    primary.write(late, data)
    world.app.sync(["orders"])
    assert world.catalog.last_full_listing("orders") == full_at  # no full listing needed
    everything_copied(world)


def test_a_listing_that_omits_a_known_key_once_does_not_drop_it_for_good() -> None:
    """Bug found: an item missing from one primary listing was marked gone for good and never
    copied, leaving a permanent hole in the secondary's window."""
    world = started()
    world.stores[SECONDARY].unreachable = True
    world.app.sync(["orders"])  # discovered in the primary; the secondary is down
    segment = next(k for k in objects(world, PRIMARY) if "/log/1/0000000004_" in k)
    world.stores[PRIMARY].omit_once = {segment}
    world.app.sync(["orders"], full_listing=True)  # the listing misses it: it looks gone
    item = world.catalog.item("orders", PRIMARY, "log/1/0000000004")
    assert item is not None
    assert item.status == ItemStatus.FAILED
    world.stores[SECONDARY].unreachable = False
    world.produce("orders", 2)
    world.app.sync(["orders"], full_listing=True)
    item = world.catalog.item("orders", PRIMARY, "log/1/0000000004")
    assert item is not None
    assert item.status == ItemStatus.AVAILABLE
    everything_copied(world)
    assert len(world.app.window("orders", SECONDARY).intervals) == 1  # no hole


def lacking(world: World, region: str) -> list[str]:
    """What a long-running replicator's next look at ``region`` queues: the available primary
    rows past the region's copy mark that it has no row of (as Scheduler._refill asks)."""
    catalog = world.catalog
    return [row.item_id for row in catalog.add_missing(
        "orders", PRIMARY, region, world.clock.now(),
        since_rowid=catalog.copy_mark("orders", region))]


def look(world: World, region: str) -> None:
    """A first look at ``region``: every available primary row is queued there."""
    world.catalog.add_missing("orders", PRIMARY, region, world.clock.now())
    world.catalog.set_copy_mark("orders", region)


def test_a_key_listed_again_is_queued_where_no_row_of_it_exists() -> None:
    """A region that first looked while an item seemed gone has no row of it, and past its
    first look only rows after its copy mark are checked: the relisting must take the mark
    back (Catalog.recheck_copies), or that region would never copy the item."""
    world = started()
    world.app.sync(["orders"])
    segment = next(k for k in objects(world, PRIMARY) if "/log/1/0000000004_" in k)
    world.stores[PRIMARY].omit_once = {segment}
    world.app.sync(["orders"], full_listing=True)  # the listing misses it: it looks gone
    third = "aws-eu-north-1"
    look(world, third)
    assert world.catalog.item("orders", third, "log/1/0000000004") is None
    world.app.sync(["orders"], full_listing=True)  # listed again
    assert lacking(world, third) == ["log/1/0000000004"]


def test_new_rows_after_a_region_is_forgotten_are_not_passed_over() -> None:
    """SQLite gives a new row the largest rowid left plus one: once the newest rows are
    deleted, a copy mark above that must come down, or the next primary rows would sit at or
    below it and no incremental look would queue them."""
    world = started()
    world.app.sync(["orders"])
    catalog, third = world.catalog, "aws-eu-north-1"
    look(world, third)  # rows of another region, newer than SECONDARY's mark
    look(world, SECONDARY)
    catalog.forget_region("orders", third)
    world.produce("orders", 1)
    world.driver.run(discover_primary(catalog, get_layout("native"),
                                      world.app.service("orders"), ReplicationSettings(),
                                      full=False))
    assert lacking(world, SECONDARY) == ["log/1/0000000007"]


def test_a_region_unreachable_for_a_while_pauses_then_catches_up() -> None:
    world = started(segments=10, concurrency=2)
    secondary = world.stores[SECONDARY]
    secondary.outage_after = 5  # goes away in the middle of the pass
    [outcome] = world.app.sync(["orders"])
    assert "injected outage" in outcome.paused[SECONDARY]
    assert 0 < len(outcome.published) < 11
    sound(world)
    for _ in range(3):  # passes during the outage: no crash, nothing new, still paused
        world.produce("orders", 1)
        [outcome] = world.app.sync(["orders"])
        assert SECONDARY in outcome.paused
        assert not outcome.published
        sound(world)
    lag_during = world.app.current_lag("orders", SECONDARY, world.clock.now())
    assert lag_during is not None
    assert lag_during > 0
    secondary.unreachable = False
    world.app.sync(["orders"])
    location = world.catalog.location("orders", SECONDARY)
    assert location is not None
    assert location.state == RegionState.ACTIVE
    everything_copied(world)
    assert world.app.current_lag("orders", SECONDARY, world.clock.now()) == 0.0


def test_the_primary_unreachable_for_a_while_is_reported_and_pauses_nothing() -> None:
    world = started()
    world.stores[PRIMARY].unreachable = True
    [outcome] = world.app.sync(["orders"])
    assert "injected outage" in outcome.primary_error
    assert not outcome.paused
    assert not objects(world, SECONDARY)
    world.stores[PRIMARY].unreachable = False
    world.app.sync(["orders"])
    everything_copied(world)

"""Windows, restore plans and forks on the in-memory world, including the demo's key-value
data reconstructed exactly at random targets."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from engine.errors import NoRestorableWindow, OutsideWindow, UnknownName, WrongRestoreRegion
from engine.fork import ForkIncomplete
from engine.formats.native import write_stream_history
from engine.model import ItemStatus, parse_iso
from engine.storage.memory import MemoryStorage
from tests.worlds import World

PRIMARY, SECONDARY = "aws-eu-west-1", "aws-eu-central-1"


def truth(store: MemoryStorage, service: str, moment: datetime) -> dict[str, object]:
    """The key-value state at ``moment``, straight from every primary segment's records."""
    state: dict[str, object] = {}
    records = []
    for info in store.iter_objects(f"{service}/log/"):
        if info.key.endswith(".log"):
            for line in store.read_bytes(info.key).decode().splitlines():
                records.append(json.loads(line))
    for record in sorted(records, key=lambda r: r["t"]):
        if parse_iso(record["t"]) <= moment:
            state[record["key"]] = record["value"]
    return state


@pytest.fixture
def world() -> World:
    w = World()
    for _ in range(3):
        w.produce("orders", 6, base_first=True)
    w.app.enable("orders", SECONDARY)
    w.app.sync(["orders"])
    return w


def test_fork_reconstructs_the_exact_state_at_random_targets(world: World,
                                                             tmp_path: Path) -> None:
    window = world.app.window("orders", SECONDARY)
    assert window.start is not None
    assert window.end is not None
    rng = random.Random(20261126)
    span = (window.end - window.start).total_seconds()
    targets = [window.start, window.end] + [
        window.start + timedelta(seconds=rng.uniform(0, span)) for _ in range(8)]
    for index, target in enumerate(targets):
        outcome = world.app.fork("orders", SECONDARY, target, tmp_path / f"f{index}")
        state = json.loads((tmp_path / f"f{index}" / "state.json").read_text())
        assert state == truth(world.stores[PRIMARY].inner, "orders", target), target
        assert outcome.plan.base_end <= target
        if outcome.plan.segments:
            assert outcome.plan.segments[-1].end_time >= target


def test_latest_fork_uses_window_end_and_reports_data_loss(world: World) -> None:
    world.produce("orders", 3)  # the primary moves on; the secondary has not synced yet
    plan = world.app.plan_fork("orders", SECONDARY)
    assert plan.effective_target == world.app.window("orders", SECONDARY).end
    assert plan.expected_data_loss_seconds == pytest.approx(180.0)
    assert plan.bytes_total == sum(o.size for o in plan.objects)


@pytest.mark.parametrize("offset", [timedelta(seconds=1), timedelta(hours=5)])
def test_targets_past_the_window_are_refused_naming_it(world: World,
                                                       offset: timedelta) -> None:
    end = world.app.window("orders", SECONDARY).end
    assert end is not None
    with pytest.raises(OutsideWindow) as refused:
        world.app.plan_fork("orders", SECONDARY, end + offset)
    assert refused.value.exit_code == 3
    assert "restorable window of aws-eu-central-1" in str(refused.value)


def test_target_before_the_first_base_is_refused(world: World) -> None:
    start = world.app.window("orders", SECONDARY).start
    assert start is not None
    with pytest.raises(OutsideWindow):
        world.app.plan_fork("orders", SECONDARY, start - timedelta(microseconds=1))


def test_region_without_a_complete_base_has_no_window() -> None:
    world = World()
    world.produce("orders", 3)  # segments only, no base backup yet
    world.app.enable("orders", SECONDARY)
    world.app.sync(["orders"])
    with pytest.raises(NoRestorableWindow):
        world.app.plan_fork("orders", SECONDARY)


def test_fork_runs_only_where_the_copy_is_stored(world: World) -> None:
    with pytest.raises(WrongRestoreRegion):
        world.app.plan_fork("orders", SECONDARY, source_region=PRIMARY)
    with pytest.raises(UnknownName):
        world.app.plan_fork("orders", "aws-eu-north-1")


def test_a_missing_segment_ends_the_window_until_the_next_base(tmp_path: Path) -> None:
    world = World()
    world.produce("orders", 4, base_first=True)
    world.app.enable("orders", SECONDARY)
    world.stores[SECONDARY].corrupt = lambda key: "/0000000003_" in key
    world.app.sync(["orders"])
    window = world.app.window("orders", SECONDARY)
    third = next(i for i in world.catalog.items("orders", SECONDARY)
                 if i.item_id == "log/1/0000000003")
    assert third.status == ItemStatus.FAILED
    second_end = next(i.end_time for i in world.catalog.items("orders", SECONDARY)
                      if i.item_id == "log/1/0000000002")
    assert window.end == second_end
    world.produce("orders", 2, base_first=True)  # a new base after the gap
    world.app.sync(["orders"])
    window = world.app.window("orders", SECONDARY)
    assert len(window.intervals) == 2
    assert window.intervals[0].end == second_end
    assert window.end == world.clock.now()
    with pytest.raises(OutsideWindow):  # inside the gap
        world.app.plan_fork("orders", SECONDARY, second_end + timedelta(seconds=30))
    world.stores[SECONDARY].corrupt = lambda key: False
    world.app.sync(["orders"])  # the failed copy is repaired: the gap closes
    assert len(world.app.window("orders", SECONDARY).intervals) == 1


def test_timeline_switch_is_followed_only_through_its_history(tmp_path: Path) -> None:
    world = World()
    producer = world.producers["orders"]
    world.produce("orders", 3, base_first=True)
    # A promotion: timeline 2 continues timeline 1 from seq 4 on.
    switch_time = world.clock.now()
    producer.stream = "2"
    world.produce("orders", 3)
    world.app.enable("orders", SECONDARY)
    world.app.sync(["orders"])
    before_history = world.app.window("orders", SECONDARY)
    assert before_history.end == switch_time  # without the history file, timeline 2 is foreign
    write_stream_history(world.stores[PRIMARY].inner, "orders", "2", "1", 4, switch_time)
    world.app.sync(["orders"])
    window = world.app.window("orders", SECONDARY)
    assert window.end == world.clock.now()
    plan = world.app.plan_fork("orders", SECONDARY)
    assert [s.stream for s in plan.segments] == ["1", "1", "1", "2", "2", "2"]
    assert plan.histories == ("history/2",)
    outcome = world.app.fork("orders", SECONDARY, None, tmp_path / "tl")
    state = json.loads((tmp_path / "tl" / "state.json").read_text())
    assert state == truth(world.stores[PRIMARY].inner, "orders", world.clock.now())
    assert (tmp_path / "tl" / "wal" / "2" / "history.json").is_file()
    assert outcome.plan.effective_target == world.clock.now()


def test_binlog_index_gap_for_mysql(tmp_path: Path) -> None:
    world = World()
    world.produce("shop", 2, base_first=True)
    world.producers["shop"].next_seq += 1  # binlog index 3 never appears
    world.produce("shop", 2)
    world.app.enable("shop", SECONDARY)
    world.app.sync(["shop"])
    window = world.app.window("shop", SECONDARY)
    assert window.end == world.clock.now() - timedelta(minutes=2)
    outcome = world.app.fork("shop", SECONDARY, None, tmp_path / "my")
    replay = json.loads((tmp_path / "my" / "replay.json").read_text())
    assert replay["binlogs"] == ["binlogs/1/0000000001.log", "binlogs/1/0000000002.log"]
    assert outcome.plan.service_type == "mysql"


def test_interrupted_fork_resumes_without_fetching_again(world: World, tmp_path: Path) -> None:
    into = tmp_path / "resume"
    target = world.app.window("orders", SECONDARY).end
    world.stores[SECONDARY].fail_reads = lambda key: key.endswith(("0000000004", "part-1.json")) \
        or "/0000000005_" in key
    with pytest.raises(ForkIncomplete) as incomplete:
        world.app.fork("orders", SECONDARY, target, into)
    assert "run the same fork again" in str(incomplete.value)
    assert json.loads((into / "fork.json").read_text())["state"] == "incomplete"
    world.stores[SECONDARY].fail_reads = lambda key: False
    outcome = world.app.fork("orders", SECONDARY, target, into)
    assert outcome.skipped > 0
    assert outcome.downloaded == len(outcome.plan.objects) - outcome.skipped
    assert outcome.downloaded <= 2
    assert json.loads((into / "fork.json").read_text())["state"] == "ready"
    fork_audit = [a for a in world.catalog.audit_log("orders") if a["action"] == "fork"]
    assert len(fork_audit) == 1


def test_wal_fetch_serves_a_verified_segment(world: World, tmp_path: Path) -> None:
    world.app.wal_fetch("orders", SECONDARY, "1/5", tmp_path / "seg")
    world.app.wal_fetch("orders", SECONDARY, "000000010000000000000006", tmp_path / "seg6")
    assert (tmp_path / "seg").read_bytes().startswith(b'{"key"')
    assert (tmp_path / "seg6").is_file()

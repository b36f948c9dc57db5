"""Timelines: windows along the history recovery follows (the latest timeline by default),
branches restorable only when asked for, plans that carry every history from the base's
timeline to the target's, and holes reported with the window they cut (native layout on the
in-memory world; the pgBackRest reader's side is in test_pgbackrest_timelines)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from engine.errors import OnlyRestorableCopy, OutsideWindow, UnknownName
from engine.findings import chain_findings
from engine.formats.native import write_stream_history
from engine.model import ItemStatus, RegionRole, TimeRange, iso, parse_iso
from engine.operations import chain_problems
from engine.retention import RetentionPolicy
from engine.storage.memory import MemoryStorage
from engine.timelines import label
from engine.windows import (
    BaseMark,
    PathStep,
    SegmentMark,
    StreamSwitch,
    ancestry,
    latest_timeline,
    restorable_intervals,
)
from tests.worlds import World, promoted_world

PRIMARY, SECONDARY = "aws-eu-west-1", "aws-eu-central-1"


def t(minutes: int) -> datetime:
    return datetime.fromisoformat("2026-11-01T12:00:00+00:00") + timedelta(minutes=minutes)


# -- pure windows ---------------------------------------------------------------------------

SWITCH = StreamSwitch("2", "1", 5, t(30))
SEGMENTS = [*(SegmentMark("1", s, t(s)) for s in range(0, 10)),      # 1/5..1/9 abandoned
            *(SegmentMark("2", s, t(30 + s)) for s in range(5, 9))]


def test_the_latest_timeline_is_followed_and_its_ancestors_only_up_to_the_switch() -> None:
    bases = [BaseMark(t(0), "1", 0)]
    assert latest_timeline([SWITCH]) == "2"
    assert ancestry("2", [SWITCH]) == (PathStep("1", 5, t(30)), PathStep("2"))
    assert restorable_intervals(bases, SEGMENTS, [SWITCH]) == (TimeRange(t(0), t(38)),)
    assert restorable_intervals(bases, SEGMENTS, [SWITCH], "1") == (TimeRange(t(0), t(9)),)
    assert restorable_intervals(bases, SEGMENTS) == (TimeRange(t(0), t(9)),)  # no history


def test_a_base_on_the_abandoned_part_of_a_branch_is_not_on_the_latest_timeline() -> None:
    abandoned = BaseMark(t(7), "1", 7)
    assert restorable_intervals([abandoned], SEGMENTS, [SWITCH]) == ()
    assert restorable_intervals([abandoned], SEGMENTS, [SWITCH], "1") == (TimeRange(t(7), t(9)),)
    on_two = BaseMark(t(36), "2", 7)
    assert restorable_intervals([on_two], SEGMENTS, [SWITCH]) == (TimeRange(t(36), t(38)),)
    assert restorable_intervals([on_two], SEGMENTS, [SWITCH], "1") == ()


def test_a_missing_switch_segment_ends_the_chain_at_the_parent() -> None:
    without = [s for s in SEGMENTS if (s.stream, s.seq) != ("2", 5)]
    bases = [BaseMark(t(0), "1", 0)]
    assert restorable_intervals(bases, without, [SWITCH]) == (TimeRange(t(0), t(4)),)


def test_grandchildren_follow_the_whole_history() -> None:
    switches = [SWITCH, StreamSwitch("3", "2", 7, t(40))]
    segments = [*SEGMENTS, *(SegmentMark("3", s, t(40 + s)) for s in range(7, 9))]
    assert latest_timeline(switches) == "3"
    assert [s.stream for s in ancestry("3", switches)] == ["1", "2", "3"]
    bases = [BaseMark(t(0), "1", 0)]
    assert restorable_intervals(bases, segments, switches) == (TimeRange(t(0), t(48)),)
    assert restorable_intervals(bases, segments, switches, "2") == (TimeRange(t(0), t(38)),)


def test_the_latest_of_failovers_between_server_ids_is_the_leaf() -> None:
    # MySQL server ids are not in time order: 7, then 3, then 2.
    switches = [StreamSwitch("3", "7", 5, t(10)), StreamSwitch("2", "3", 9, t(20))]
    assert latest_timeline(switches) == "2"
    assert [s.stream for s in ancestry("2", switches)] == ["7", "3", "2"]
    # Two point-in-time restores off timeline 1: the higher number, as PostgreSQL picks.
    assert latest_timeline([SWITCH, StreamSwitch("3", "1", 7, t(50))]) == "3"


def test_intervals_are_labelled_with_their_timeline_at_the_switch() -> None:
    path = ancestry("2", [SWITCH])
    labelled = label([TimeRange(t(0), t(38))], path)
    assert [(r.start, r.end, r.timeline) for r in labelled] == [
        (t(0), t(30), "1"), (t(30), t(38), "2")]


# -- the world: a promotion in the native layout ---------------------------------------------

def branch_truth(store: MemoryStorage, moment: datetime, timeline: str) -> dict[str, object]:
    """The key-value state at ``moment`` along a timeline: timeline 2 reads timeline 1 only
    before segment 5."""
    state: dict[str, object] = {}
    records = []
    for info in store.iter_objects("orders/log/"):
        if not info.key.endswith(".log"):
            continue
        stream, name = info.key.split("/")[2:4]
        seq = int(name.split("_")[0])
        if timeline == "2" and stream == "1" and seq >= 5:
            continue
        if stream != "1" and stream != timeline:
            continue
        records += [json.loads(line) for line in store.read_bytes(info.key).decode().splitlines()]
    for record in sorted(records, key=lambda r: r["t"]):
        if parse_iso(record["t"]) <= moment:
            state[record["key"]] = record["value"]
    return state


def test_windows_follow_the_latest_timeline_and_show_the_branch() -> None:
    world, facts = promoted_world()
    [_, secondary] = world.app.timeline_views("orders")
    assert secondary.window.role == RegionRole.SECONDARY
    assert secondary.followed == "2"
    assert secondary.window.end == world.clock.now()
    assert [r.timeline for r in secondary.intervals] == ["1", "2"]
    assert secondary.intervals[1].start == facts["promoted"]
    branch = secondary.branch("1")
    assert branch is not None
    assert not branch.followed
    assert branch.intervals[-1].end == facts["abandoned_end"]
    assert world.app.window("orders", SECONDARY).end == world.clock.now()


def test_forks_follow_the_latest_timeline_unless_told(tmp_path: Path) -> None:
    world, facts = promoted_world()
    store = world.stores[PRIMARY].inner
    latest = world.app.fork("orders", SECONDARY, None, tmp_path / "latest")
    # From B2, a base already on timeline 2: its history still travels with the plan.
    assert latest.plan.base_id.startswith("base/")
    assert latest.plan.base_end == facts["b2"]
    assert latest.plan.histories == ("history/2",)
    assert latest.plan.timeline == "2"
    assert not latest.plan.timeline_asked
    state = json.loads((tmp_path / "latest" / "state.json").read_text())
    assert state == branch_truth(store, world.clock.now(), "2")
    conf = (tmp_path / "latest" / "data" / "postgresql.auto.conf").read_text()
    assert "recovery_target_timeline = '2'" in conf

    on_branch = facts["switch_end"] + (facts["abandoned_end"] - facts["switch_end"]) / 2
    assert isinstance(on_branch, datetime)
    default = world.app.fork("orders", SECONDARY, on_branch, tmp_path / "default")
    assert default.plan.timeline == "2"
    assert json.loads((tmp_path / "default" / "state.json").read_text()) == \
        branch_truth(store, on_branch, "2")
    asked = world.app.fork("orders", SECONDARY, on_branch, tmp_path / "asked", timeline="1")
    assert (asked.plan.timeline, asked.plan.timeline_asked, asked.plan.histories) == \
        ("1", True, ())
    assert {s.stream for s in asked.plan.segments} == {"1"}
    assert json.loads((tmp_path / "asked" / "state.json").read_text()) == \
        branch_truth(store, on_branch, "1")
    assert branch_truth(store, on_branch, "1") != branch_truth(store, on_branch, "2")


def test_a_point_past_a_branch_is_refused_along_it() -> None:
    world, facts = promoted_world()
    after = facts["abandoned_end"] + timedelta(seconds=30)
    assert isinstance(after, datetime)
    with pytest.raises(OutsideWindow, match="along timeline 1"):
        world.app.plan_fork("orders", SECONDARY, after, timeline="1")
    with pytest.raises(UnknownName, match="timeline"):
        world.app.plan_fork("orders", SECONDARY, None, timeline="7")


def test_a_lost_switch_segment_is_a_hole_with_the_window_it_cuts() -> None:
    world, facts = promoted_world(lose_switch_segment=True)
    window = world.app.window("orders", SECONDARY)
    assert window.intervals[0].end == facts["switch_end"]
    holes, refused = chain_findings(world.app, "orders")
    assert refused == []
    assert {(h.region, h.stream, h.seq) for h in holes} == {(PRIMARY, "2", 5), (SECONDARY, "2", 5)}
    hole = next(h for h in holes if h.region == SECONDARY)
    assert hole.cut_from == facts["switch_end"]
    assert hole.cut_to == facts["b2"]
    problems = chain_problems(world.app, "orders")
    assert [p.check for p in problems] == ["hole", "hole"]
    assert "segment 2/0000000005" in problems[0].message


def test_no_hole_in_a_whole_history() -> None:
    world, _ = promoted_world()
    assert chain_findings(world.app, "orders") == ([], [])


def test_segments_of_a_new_timeline_after_its_history_are_listed_incrementally() -> None:
    # The history is written (and settles) before the timeline's first segment, which sorts
    # before it: no cursor may pass the segments still to come.
    world = World()
    world.produce("orders", 5, base_first=True)
    world.app.enable("orders", SECONDARY)
    world.app.sync(["orders"])
    producer = world.producers["orders"]
    write_stream_history(world.stores[PRIMARY].inner, "orders", "2", "1", producer.next_seq,
                         world.clock.now())
    world.clock.advance(world.app.settings.listing_settle + 1)
    world.app.sync(["orders"])
    world.clock.advance(world.app.settings.listing_settle + 1)
    world.app.sync(["orders"])
    last = world.catalog.last_full_listing("orders")
    producer.stream = "2"
    world.produce("orders", 2)
    world.app.sync(["orders"])
    assert world.catalog.last_full_listing("orders") == last  # incremental passes only
    assert world.app.window("orders", SECONDARY).end == world.clock.now()


def test_a_server_id_change_is_a_timeline_for_mysql(tmp_path: Path) -> None:
    # A failover to a server with another id: binlogs of server 2 continue server 1's from
    # index 4 on; server 1's binlogs 4 and 5 (written before it was fenced) are abandoned.
    world = World()
    producer = world.producers["shop"]
    world.produce("shop", 3, base_first=True)
    at_switch = dict(producer.state)
    world.produce("shop", 2)
    on_old = world.clock.now() - timedelta(seconds=30)
    world.clock.advance(60)
    producer.stream, producer.next_seq, producer.state = "2", 4, at_switch
    producer.last_end = world.clock.now()
    write_stream_history(world.stores[PRIMARY].inner, "shop", "2", "1", 4, world.clock.now())
    world.produce("shop", 3)
    world.app.enable("shop", SECONDARY)
    world.app.sync(["shop"])
    latest = world.app.fork("shop", SECONDARY, None, tmp_path / "latest")
    replay = json.loads((tmp_path / "latest" / "replay.json").read_text())
    assert replay["binlogs"] == [f"binlogs/1/{n:010d}.log" for n in (1, 2, 3)] + \
        [f"binlogs/2/{n:010d}.log" for n in (4, 5, 6)]
    assert latest.plan.histories == ("history/2",)
    old = world.app.fork("shop", SECONDARY, on_old, tmp_path / "old", timeline="1")
    replay = json.loads((tmp_path / "old" / "replay.json").read_text())
    assert replay["binlogs"] == [f"binlogs/1/{n:010d}.log" for n in (1, 2, 3, 4, 5)]
    assert old.plan.timeline == "1"


# -- rule 7 along every branch: a point on an abandoned branch is a point ----------------------

def lose_the_abandoned_branch_at_the_primary(world: World) -> None:
    """The primary's own cleanup removed timeline 1's segments past the switch (5..7)."""
    store = world.stores[PRIMARY].inner
    for info in list(store.iter_objects("orders/log/1/")):
        if int(info.key.split("/")[3].split("_")[0]) >= 5:
            store.delete(info.key)


def test_disable_delete_refuses_to_remove_the_only_copy_of_a_branch() -> None:
    world, facts = promoted_world()
    lose_the_abandoned_branch_at_the_primary(world)
    with pytest.raises(OnlyRestorableCopy, match="on timeline 1") as refusal:
        world.app.disable("orders", keep=False, delete=True, confirmed=True)
    assert refusal.value.uncovered.startswith(iso(facts["switch_end"]))  # type: ignore[arg-type]
    assert world.app.window("orders", SECONDARY, "1").end == facts["abandoned_end"]


def test_disable_delete_goes_ahead_while_the_primary_holds_every_branch() -> None:
    world, _ = promoted_world()
    outcome = world.app.disable("orders", keep=False, delete=True, confirmed=True)
    assert outcome.deleted_objects > 0


def test_retention_keeps_the_only_copy_of_a_branch() -> None:
    world, _ = promoted_world()
    world.app.retention = {"orders": RetentionPolicy(keep_count=1)}
    lose_the_abandoned_branch_at_the_primary(world)
    world.app.sync(["orders"], full_listing=True)
    assert world.catalog.items("orders", SECONDARY, statuses=[ItemStatus.EXPIRED]) == []
    kept = [e.message for e in world.app.events(service="orders")
            if "retention kept" in e.message]
    assert kept
    assert "on timeline 1" in kept[-1]


def test_retention_deletes_an_old_branch_the_primary_still_holds() -> None:
    world, _ = promoted_world()
    world.app.retention = {"orders": RetentionPolicy(keep_count=1)}
    world.app.sync(["orders"], full_listing=True)
    expired = {r.item_id for r in world.catalog.items("orders", SECONDARY,
                                                      statuses=[ItemStatus.EXPIRED])}
    assert {"log/1/0000000005", "log/1/0000000007"} <= expired

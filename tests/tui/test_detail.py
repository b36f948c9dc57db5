"""The service detail: backups per region, windows on a time axis, lag chart, events."""

from __future__ import annotations

from datetime import timedelta

from rich.text import Text
from textual.widgets import DataTable, Select, Static

from btar_tui.app import BtarApp
from btar_tui.bridge import Bridge
from btar_tui.screens.detail import DetailScreen
from btar_tui.views import load_detail
from btar_tui.widgets.lag_chart import LagChart
from btar_tui.widgets.window_axis import WindowAxis, bar_cells, render_windows
from engine.api import Branch
from engine.lag import Period
from engine.model import RegionRole, RestoreWindow, TimeRange
from engine.timelines import TimelineRange
from tests.tui.conftest import DEMO_NOW, SIZE, AppPilot, make_app, run_async, settle
from tests.worlds import promoted_world


def cell_text(value: object) -> str:
    return value.plain if isinstance(value, Text) else str(value)


async def open_detail(pilot: AppPilot, app: BtarApp, downs: int) -> DetailScreen:
    await settle(pilot)
    await pilot.press(*["down"] * downs, "enter")
    await settle(pilot)
    screen = app.screen
    assert isinstance(screen, DetailScreen)
    return screen


@run_async
async def test_backups_per_region_windows_lag_and_events(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_detail(pilot, app, 2)
        table = screen.query_one("#backups", DataTable)
        labels = [c.label.plain for c in table.ordered_columns]
        assert labels == ["ITEM", "END (UTC)", "SIZE", "aws-eu-west-1", "aws-eu-central-1"]
        assert table.row_count == 39  # 3 base backups + 36 segments, newest first
        first = [cell_text(c) for c in table.get_row_at(0)]
        assert first[0] == "base/20260115T120000Z"
        assert first[3:] == ["available", "available"]
        info = str(screen.query_one("#item-info", Static).render())
        assert "aws-eu-central-1: available, lag 60s" in info

        axis = screen.query_one(WindowAxis).render().plain.splitlines()
        assert axis[0].startswith("aws-eu-west-1 primary")
        assert axis[1].startswith("aws-eu-central-1 secondary")
        assert "█" * 20 in axis[1]
        assert "·" not in axis[1]
        assert "01-15 09:00:00" in axis[2]
        assert "01-15 12:00:00" in axis[2]

        chart = screen.query_one(LagChart)
        assert chart.report is not None
        assert chart.report.stats.count == 39
        assert chart.report.stats.p50 == 60.0
        await pilot.press("p")  # day -> week
        await settle(pilot)
        assert chart.period == Period.WEEK
        assert screen.period == Period.WEEK
        assert chart.report.period == Period.WEEK
        await pilot.press("m")
        assert screen.query_one("#lag-metric", Select).value == "max"

        events = screen.query_one("#events", DataTable)
        messages = [cell_text(events.get_row_at(i)[3]) for i in range(events.row_count)]
        assert "additional backup region enabled" in messages


@run_async
async def test_unsupported_service_explains_why_there_is_no_lag(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_detail(pilot, app, 3)
        assert screen.service == "sessions"
        stats = str(screen.query_one("#lag-stats", Static).render())
        assert "redis service" in stats
        assert "rule 1" in stats


@run_async
async def test_detail_shows_copy_progress_during_a_sync(bridge: Bridge) -> None:
    app = make_app(bridge)
    shown: list[bool] = []
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_detail(pilot, app, 2)
        box = screen.query_one("#copy-progress")
        app.sync_signal.subscribe(screen, lambda view: shown.append(bool(box.display)))
        await pilot.press("s")
        await settle(pilot)
        table = screen.query_one("#backups", DataTable)
        assert table.row_count == 39
        assert not box.display  # hidden again once the sync is over
    assert True in shown


def test_window_axis_shows_gaps_and_regions_without_a_window() -> None:
    start = DEMO_NOW - timedelta(hours=3)
    full = RestoreWindow("aws-eu-west-1", RegionRole.PRIMARY,
                         (TimeRange(start, DEMO_NOW),))
    # A gap of one minute in three hours is far narrower than a column: it must still show.
    gapped = RestoreWindow("aws-eu-central-1", RegionRole.SECONDARY, (
        TimeRange(start, start + timedelta(minutes=90)),
        TimeRange(start + timedelta(minutes=91), DEMO_NOW)))
    empty = RestoreWindow("aws-eu-north-1", RegionRole.PREVIOUS)
    bar = bar_cells(gapped, start, DEMO_NOW, 40)
    assert "·" in bar
    assert bar.startswith("█")
    assert bar.endswith("█")
    lines = render_windows([full, gapped, empty], 80).plain.splitlines()
    assert len(lines) == 4
    assert "·" not in lines[0]
    assert "no restorable point" in lines[2]


def test_window_axis_shows_each_branch_recovery_does_not_follow() -> None:
    start = DEMO_NOW - timedelta(hours=3)
    switch = start + timedelta(hours=1)
    secondary = RestoreWindow("aws-eu-central-1", RegionRole.SECONDARY,
                              (TimeRange(start, DEMO_NOW),))
    abandoned = Branch("1", "", None, None, False,
                       (TimelineRange(start, switch + timedelta(minutes=20), "1"),))
    followed = Branch("2", "1", 5, switch, True, (TimelineRange(start, DEMO_NOW, "2"),))
    lines = render_windows([secondary], 80, {"aws-eu-central-1": [abandoned, followed]}
                           ).plain.splitlines()
    assert len(lines) == 3  # the region, its abandoned branch, the axis
    assert lines[1].startswith("  timeline 1")
    bar = lines[1].split()[-1]
    assert bar.startswith("█")
    assert bar.endswith("·")  # it ends 20 minutes past the switch
    assert "timeline 2" not in "\n".join(lines)  # the followed one is the region's own bar
    assert render_windows([secondary], 80, {}).plain.count("\n") == 1


def test_the_detail_reads_the_branches_of_each_region() -> None:
    world, facts = promoted_world()
    data = load_detail(world.app, "orders", Period.DAY)
    assert [w.region for w in data.windows] == ["aws-eu-west-1", "aws-eu-central-1"]
    branch = next(b for b in data.branches["aws-eu-central-1"] if b.timeline == "1")
    assert not branch.followed
    assert branch.intervals[-1].end == facts["abandoned_end"]
    assert data.windows[1] == world.app.window("orders", "aws-eu-central-1")

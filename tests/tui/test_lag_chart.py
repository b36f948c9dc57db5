"""The lag chart: the lag over time (published and still waiting), so that an outage is a
rising line; the same percentiles as `btar lag`; a time axis fitted to the data with dates
when it crosses days; labels that never wrap; a chart as tall as the room it is given."""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import cast

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import Static, TabbedContent

from btar_tui.bridge import Bridge
from btar_tui.clock import FixedClock
from btar_tui.format import duration
from btar_tui.screens.detail import DetailScreen
from btar_tui.widgets.lag_chart import (
    SHADE,
    SOLID,
    LagChart,
    LagPlot,
    plot_columns,
    render_plot,
)
from engine.api import LagReport
from engine.cli.status import cmd_lag
from engine.demo import demo_producers
from engine.lag import LagItem, Period, bucketize, summarize
from simulator.replay import Replay
from simulator.scenario import load_scenario
from tests.simulation.builders import SCENARIOS
from tests.tui.conftest import APP_NOW, DEMO_NOW, SIZE, AppPilot, make_app, run_async, settle

SECONDARY = "aws-eu-central-1"
STEP = timedelta(minutes=10)


def secondary_outage(bridge: Bridge, steps: int = 12, *, recover: bool = False) -> datetime:
    """The synced demo world, then the secondary of orders away while orders keeps producing
    a log segment every 10 minutes (each synced a minute later: nothing can be published);
    with ``recover`` the secondary comes back and a last sync catches up. Returns now."""
    root = bridge.config_dir
    clock = cast(FixedClock, bridge.clock)
    shutil.move(root / "regions" / SECONDARY, root / "away")
    orders = next(p for p in demo_producers(root, bridge.config_path)
                  if p.service.name == "orders")
    orders.resume()
    for step in range(1, steps + 1):
        moment = DEMO_NOW + step * STEP
        key = orders.segment(moment)
        stamp = moment.timestamp()
        os.utime(Path(str(orders.storage.root)) / key, (stamp, stamp))  # completed then
        clock.moment = moment + timedelta(minutes=1)
        bridge.call(lambda b: b.sync())
    if recover:
        shutil.move(root / "away", root / "regions" / SECONDARY)
        clock.moment += timedelta(minutes=5)
        bridge.call(lambda b: b.sync())
    return clock.moment


async def open_lag_tab(pilot: AppPilot) -> DetailScreen:
    await settle(pilot)
    await pilot.press("down", "down", "enter")  # orders
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, DetailScreen)
    screen.query_one(TabbedContent).active = "lag-tab"
    await settle(pilot)
    return screen


def plot_lines(screen: DetailScreen | App[None]) -> list[str]:
    plot = screen.query_one(LagPlot)
    rendered = plot.render()
    return rendered.plain.split("\n")


def shade_heights(lines: list[str], start: int) -> list[int]:
    """Per column (from ``start``), how many rows the shade (or the bar) reaches."""
    rows = lines[:-1]  # the last line is the time axis
    width = max(len(line) for line in rows)
    heights = []
    for column in range(start, width):
        cells = [row[column] if column < len(row) else " " for row in rows]
        filled = [i for i, cell in enumerate(cells) if cell != " "]
        heights.append(len(rows) - filled[0] if filled else 0)
    return heights


# --- an outage on screen ----------------------------------------------------------------------


@run_async
async def test_an_outage_of_the_secondary_is_a_rising_line(synced: Bridge) -> None:
    now = secondary_outage(synced, 12)
    status = synced.call(lambda b: b.status_of("orders"))
    assert status.current_lag_seconds == (now - (DEMO_NOW + STEP)).total_seconds()  # 1.9 h
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_lag_tab(pilot)
        chart = screen.query_one(LagChart)
        assert isinstance(chart.report, LagReport)
        plotted = plot_columns(chart.report, "p50", 71)
        assert plotted is not None
        # The last column ends now: its pending lag is the current lag.
        assert plotted.end == now
        assert plotted.columns[-1].pending == status.current_lag_seconds
        # Nothing was published during the outage, yet the chart rises all along.
        assert all(c.published is None for c in plotted.columns[2:])
        pending = [c.pending or 0.0 for c in plotted.columns]
        assert pending[-1] == max(pending) == plotted.peak
        assert all(a <= b for a, b in itertools.pairwise(pending))

        lines = plot_lines(screen)
        heights = shade_heights(lines, 7)
        assert heights[-1] == len(lines) - 1  # the current lag is the top of the chart
        assert heights[0] == 1  # the 39 items published at 12:01, 60 s late: a low bar
        rising = heights[1:]
        assert all(a <= b for a, b in itertools.pairwise(rising))
        assert rising[0] < rising[len(rising) // 2] < rising[-1]
        assert SHADE in lines[0]
        assert lines[0].startswith("  111m┤")
        stats = str(screen.query_one("#lag-stats", Static).render())
        assert "current lag 111m" in stats
        assert "39 items published" in stats  # before the outage, in the last day


@run_async
async def test_the_catch_up_after_an_outage_shows_as_published_lags(synced: Bridge) -> None:
    now = secondary_outage(synced, 12, recover=True)
    assert synced.call(lambda b: b.status_of("orders")).current_lag_seconds == 0.0
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_lag_tab(pilot)
        chart = screen.query_one(LagChart)
        assert chart.report is not None
        plotted = plot_columns(chart.report, "max", 71)
        assert plotted is not None
        assert plotted.end == now
        last = plotted.columns[-1]
        assert last.pending == 0.0
        # The first segment of the outage waited from 12:10 to the catch-up at 14:06.
        assert last.published == (now - (DEMO_NOW + STEP)).total_seconds()
        await pilot.press("m")  # max: the catch-up column is the peak
        await settle(pilot)
        lines = plot_lines(screen)
        assert lines[0].rstrip().endswith(SOLID)
        assert lines[0].startswith("  116m┤")


# --- one percentile definition ----------------------------------------------------------------


@run_async
async def test_btar_lag_and_the_chart_give_the_same_p99(synced: Bridge) -> None:
    secondary_outage(synced, 12, recover=True)
    out = io.StringIO()
    args = argparse.Namespace(service="orders", period="day", region=None, json=True,
                              csv=False)
    assert synced.call(lambda b: cmd_lag(b, args, out)) == 0
    printed = json.loads(out.getvalue())["stats"]
    text = io.StringIO()
    args.json = False
    synced.call(lambda b: cmd_lag(b, args, text))
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_lag_tab(pilot)
        chart = screen.query_one(LagChart)
        report = chart.report
        assert isinstance(report, LagReport)
        assert report.stats.count == printed["count"] == 51
        assert report.stats.p99 == printed["p99"] == 2 * 3600.0 - 600.0 + 360.0
        assert report.stats.p50 == printed["p50"]
        # The chart's items give the same figures as the samples `btar lag` reads.
        lags = [i.lag_seconds for i in report.items
                if i.available_at is not None and report.start <= i.available_at]
        assert summarize([v for v in lags if v is not None]) == report.stats
        stats = str(screen.query_one("#lag-stats", Static).render())
        assert f"p99 {duration(printed['p99'])}" in stats
        assert f"p99 {duration(printed['p99'])}" in text.getvalue()


# --- the time axis and the size of the chart --------------------------------------------------


def lag_view(items: list[LagItem], period: Period, now: datetime) -> LagReport:
    """A lag report as Btar.lag gives it (samples: the published items), with its items."""
    samples = [(i.available_at, i.lag_seconds or 0.0) for i in items
               if i.available_at is not None]
    start, buckets = bucketize(samples, period, now)
    waiting = [i.completed_at for i in items if i.waiting_at(now)]
    current = (now - min(waiting)).total_seconds() if waiting else 0.0
    return LagReport("orders", SECONDARY, period, start, now, current,
                     summarize([lag for at, lag in samples if at >= start]), buckets,
                     items=tuple(items))


def every(start: datetime, end: datetime, step: timedelta, lag: timedelta) -> list[LagItem]:
    items, moment = [], start
    while moment + lag <= end:
        items.append(LagItem(moment, moment + lag))
        moment += step
    return items


def axis_of(report: LagReport, width: int = 78, height: int = 12) -> str:
    return render_plot(report, "p50", width, height).plain.split("\n")[-1]


def test_the_time_axis_has_dates_when_the_span_crosses_days() -> None:
    now = datetime(2026, 1, 15, 6, 0, tzinfo=DEMO_NOW.tzinfo)
    items = every(now - timedelta(days=2, hours=3), now, STEP, timedelta(minutes=2))
    axis = axis_of(lag_view(items, Period.WEEK, now))
    assert axis.startswith("    0s└2026-01-13 03:00")
    assert axis.endswith("2026-01-15 06:00 UTC")


def test_within_a_day_the_date_is_written_once_and_seconds_are_shown() -> None:
    items = every(APP_NOW - timedelta(hours=3), APP_NOW, STEP, timedelta(minutes=1))
    axis = axis_of(lag_view(items, Period.DAY, APP_NOW))
    assert axis.startswith("    0s└2026-01-15 09:01:00")
    assert axis.endswith(" 12:01:00 UTC")


def test_a_12_hour_history_on_a_year_is_drawn_over_its_12_hours() -> None:
    """The user test: a 12 h replay on the year period drew one bar at the edge, and both
    ends said `12-06 07:38:36`."""
    now = datetime(2026, 12, 6, 7, 38, 36, tzinfo=DEMO_NOW.tzinfo)
    items = every(now - timedelta(hours=12), now, STEP, timedelta(minutes=3))
    report = lag_view(items, Period.YEAR, now)
    plotted = plot_columns(report, "p50", 71)
    assert plotted is not None
    assert plotted.start == now - timedelta(hours=12)
    assert sum(1 for c in plotted.columns if c.published) > 60  # bars all across
    axis = axis_of(report)
    assert "2026-12-05 19:38" in axis
    assert axis.endswith("2026-12-06 07:38 UTC")


def test_the_replay_of_a_secondary_outage_is_a_rising_line() -> None:
    """The replay's lag report carries the destination's items as the live one does: five
    hours into the six-hour outage of scenarios/secondary-long-outage.btar.toml (an item
    every 10 min, nothing published since 2 h), the chart rises to the current lag."""
    replay = Replay(load_scenario(SCENARIOS / "secondary-long-outage.btar.toml"))
    replay.run_through(7 * 3600.0)
    frame = next(f for f in replay.snapshot().services if f.status.name == "orders")
    report = frame.lag
    assert report is not None
    assert report.items
    current = report.current_lag_seconds
    assert current is not None
    assert 5 * 3600 - 600 <= current <= 5 * 3600
    plotted = plot_columns(report, "p50", 71)
    assert plotted is not None
    assert plotted.columns[-1].pending == current
    pending = [c.pending or 0.0 for c in plotted.columns]
    outage = [v for i, v in enumerate(pending)
              if plotted.start + (plotted.end - plotted.start) * (i + 1) / 71
              >= report.end - timedelta(seconds=current - 600)]
    assert outage == sorted(outage)
    assert outage[-1] == max(pending)
    lines = render_plot(report, "p50", 78, 12).plain.split("\n")
    assert lines[0].startswith(f"{duration(plotted.peak):>6}┤")


def test_no_line_is_wider_than_the_chart() -> None:
    now = datetime(2026, 1, 15, 6, 0, tzinfo=DEMO_NOW.tzinfo)
    items = every(now - timedelta(days=20), now, timedelta(hours=1), timedelta(days=2))
    items.append(LagItem(now - timedelta(days=300), None))  # a lag of months
    for period in Period:
        report = lag_view(items, period, now)
        for width in (5, 12, 20, 33, 40, 60, 78, 120):
            for height in (1, 2, 4, 12):
                lines = render_plot(report, "max", width, height).plain.split("\n")
                assert all(len(line) <= width for line in lines), (period, width, height)
                assert len(lines) <= height


class ChartApp(App[None]):
    def __init__(self, report: LagReport | None) -> None:
        super().__init__()
        self.report = report

    def compose(self) -> ComposeResult:
        yield LagChart(id="lag")

    def on_mount(self) -> None:
        self.query_one(LagChart).show(self.report, "no lag report")


def screen_lines(app: App[None]) -> list[str]:
    return [line.text for line in app.screen._compositor.render_strips()]


@run_async
async def test_the_labels_do_not_wrap_at_80_columns(synced: Bridge) -> None:
    now = datetime(2026, 1, 15, 6, 0, tzinfo=DEMO_NOW.tzinfo)
    items = every(now - timedelta(days=6), now, timedelta(hours=2), timedelta(hours=30))
    app = ChartApp(lag_view(items, Period.WEEK, now))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        plot = app.query_one(LagPlot)
        lines = plot_lines(app)
        assert len(lines) == plot.size.height  # one line per row: nothing wrapped
        assert all(len(line) <= plot.size.width for line in lines)
        shown = screen_lines(app)
        axis = next(line for line in shown if "└" in line)
        assert "2026-01-09 06:00" in axis
        assert "2026-01-15 06:00 UTC" in axis
        assert shown[shown.index(axis) + 1].startswith("orders → ")  # then the statistics
        labels = [line[:7] for line in lines[:-1] if "┤" in line]
        assert labels[0] == " 30.0h┤"
    # And in the detail screen at 80x24.
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_lag_tab(pilot)
        plot = screen.query_one(LagPlot)
        lines = plot_lines(screen)
        assert len(lines) == plot.size.height
        assert all(len(line) <= plot.size.width for line in lines)
        assert lines[-1].startswith("    0s└2026-01-15 12:00:00")
        assert lines[-1].endswith("12:01:00 UTC")


@run_async
async def test_the_chart_fills_the_height_it_is_given(synced: Bridge) -> None:
    for size in (SIZE, (80, 40)):
        app = make_app(synced)
        async with app.run_test(size=size) as pilot:
            screen = await open_lag_tab(pilot)
            chart = screen.query_one(LagChart)
            plot = screen.query_one(LagPlot)
            stats = screen.query_one("#lag-stats", Static)
            footer_top = size[1] - 1
            assert chart.region.bottom == footer_top  # down to the footer
            assert stats.region.bottom == footer_top  # the statistics last
            assert plot.region.bottom == stats.region.y
            controls = screen.query_one("#lag-controls")
            assert plot.region.y == controls.region.bottom + 1  # a blank line between
            assert plot.size.height >= (10 if size == SIZE else 26)
            lines = plot_lines(screen)
            assert len(lines) == plot.size.height
            # The demo: every item completed at 12:00 and was published at 12:01 (60 s):
            # the shade rises to the top of the chart, the last column is the bar.
            assert lines[0].startswith("   60s┤")
            assert lines[0].rstrip().endswith(SOLID)
            assert all(line.rstrip().endswith(SOLID) for line in lines[:-1])
            heights = shade_heights(lines, 7)
            assert heights[-1] == plot.size.height - 1
            assert heights[:-1] == sorted(heights[:-1])


def test_the_plot_text_is_plain_characters() -> None:
    report = lag_view(every(APP_NOW - timedelta(hours=1), APP_NOW, STEP, timedelta(minutes=4)),
                      Period.HOUR, APP_NOW)
    rendered = render_plot(report, "p50", 40, 6)
    assert isinstance(rendered, Text)
    assert not rendered.plain.endswith("\n")

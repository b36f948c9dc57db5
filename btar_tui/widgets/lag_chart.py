"""The replication lag over a selectable period: how far the destination was behind over
time, and the statistics `btar lag` prints.

Each column of the chart is a slice of time. Solid bars (█) are the lags of the items
published in the slice (p50 or max, the metric picker); the shade above them (░) is the
pending lag at the end of the slice: the age of the oldest item not yet published then. An
outage publishes nothing, so it shows as rising shade; the last column ends now, its shade
is the current lag. The time axis is fitted to the part of the period that has data (a
12-hour history on a month is drawn over its 12 hours).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Label, Select, Static

from btar_tui.format import duration
from engine.api import LagReport
from engine.lag import LagStats, Period, fit_range, lag_series

METRICS = ("p50", "max")
#: eighths of a cell, for the top of a published bar
EIGHTHS = "▁▂▃▄▅▆▇"
SOLID, SHADE = "█", "░"
#: the width of a lag label: engine durations are at most 6 cells ("364.9d")
LABEL_WIDTH = 6


@dataclass(frozen=True)
class Column:
    """What one column of the chart shows (seconds; None: nothing)."""

    published: float | None
    pending: float | None


@dataclass(frozen=True)
class Plotted:
    """The columns of a chart and the time span they cover."""

    start: datetime
    end: datetime
    columns: tuple[Column, ...]

    @property
    def peak(self) -> float:
        return max((v for c in self.columns for v in (c.published, c.pending) if v is not None),
                   default=0.0)


def _metric(stats: LagStats, metric: str) -> float | None:
    return stats.p50 if metric == "p50" else stats.max


def plot_columns(report: LagReport, metric: str, width: int) -> Plotted | None:
    """``width`` columns over the part of the report's period that has data, computed from
    the destination's items (engine.lag.lag_series), or None if nothing waited or was
    published in it."""
    if width < 1:
        return None
    fitted = fit_range(report.items, report.start, report.end)
    if fitted is None:
        return None
    series = lag_series(report.items, fitted[0], fitted[1], width)
    return Plotted(series.start, series.end, tuple(
        Column(_metric(p.published, metric), p.pending) for p in series.points))


def time_labels(start: datetime, end: datetime) -> tuple[str, str]:
    """The labels of both ends of the time axis (UTC): full dates with hours and minutes when
    the span crosses days, else the date once and seconds."""
    if start.date() != end.date():
        return start.strftime("%Y-%m-%d %H:%M"), end.strftime("%Y-%m-%d %H:%M UTC")
    return start.strftime("%Y-%m-%d %H:%M:%S"), end.strftime("%H:%M:%S UTC")


@dataclass(frozen=True)
class PlotStyles:
    published: Style | str = "green"
    pending: Style | str = "yellow"
    axis: Style | str = "dim"


def render_plot(report: LagReport | None, metric: str, width: int, height: int,
                styles: PlotStyles | None = None) -> Text:
    """The chart in ``width`` x ``height`` cells: a lag axis on the left, a time axis on the
    last line. Every line is at most ``width`` cells: nothing wraps."""
    styles = styles or PlotStyles()
    text = Text(no_wrap=True, overflow="crop")
    if report is None or width < 1 or height < 1:
        return text
    rows = height - 1
    # The lag axis: labels right-aligned, then a tick; the plot takes the rest of the width.
    plot_width = width - LABEL_WIDTH - 1
    plotted = plot_columns(report, metric, plot_width) if plot_width >= 4 else None
    if plotted is None or rows < 1:
        text.append("nothing waited or was published in this period"[:width], styles.axis)
        return text
    top = plotted.peak or 1.0
    labels = {rows - 1: duration(plotted.peak) if plotted.peak else ""}
    if rows >= 4:  # and one in the middle, at the top of its row
        labels[rows // 2 - 1] = duration(top * (rows // 2) / rows)
    label_width = LABEL_WIDTH
    for row in reversed(range(rows)):
        label = labels.get(row, "")
        text.append(label.rjust(label_width) + ("┤" if label else "│"), styles.axis)
        for column in plotted.columns:
            text.append(*_cell(column, row, rows, top, styles))
        text.append("\n")
    text.append("0s".rjust(label_width) + "└", styles.axis)
    text.append(_time_axis(plotted.start, plotted.end, plot_width), styles.axis)
    return text


def _cell(column: Column, row: int, rows: int, top: float,
          styles: PlotStyles) -> tuple[str, Style | str]:
    """The character of ``column`` in ``row`` (0 is the bottom row)."""
    eighths = 0
    if column.published is not None:
        eighths = round(column.published / top * rows * 8)
        if column.published > 0:
            eighths = max(1, eighths)  # a published lag is never invisible
    if eighths >= (row + 1) * 8:
        return SOLID, styles.published
    if eighths > row * 8:
        return EIGHTHS[eighths - row * 8 - 1], styles.published
    shaded = round((column.pending or 0.0) / top * rows)
    if shaded > row:
        return SHADE, styles.pending
    return " ", ""


def _time_axis(start: datetime, end: datetime, width: int) -> str:
    left, right = time_labels(start, end)
    if len(left) + len(right) + 1 > width:
        right = right.removesuffix(" UTC")
    if len(left) + len(right) + 1 > width:
        return left[:width]
    return left + " " * (width - len(left) - len(right)) + right


class LagPlot(Widget):
    """The chart itself: drawn for the size it is given."""

    COMPONENT_CLASSES = {"lag-plot--published", "lag-plot--pending", "lag-plot--axis"}
    DEFAULT_CSS = """
    LagPlot { height: 1fr; min-height: 4; text-wrap: nowrap; text-overflow: clip; }
    LagPlot > .lag-plot--published { color: $success; }
    LagPlot > .lag-plot--pending { color: $warning; }
    LagPlot > .lag-plot--axis { color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.report: LagReport | None = None
        self.metric = METRICS[0]

    def show(self, report: LagReport | None, metric: str) -> None:
        self.report, self.metric = report, metric
        self.refresh()

    def render(self) -> Text:
        styles = PlotStyles(*(self.get_component_rich_style(f"lag-plot--{part}")
                              for part in ("published", "pending", "axis")))
        return render_plot(self.report, self.metric, self.size.width, self.size.height,
                           styles)


class LagChart(Vertical):
    """Period and metric pickers, the chart, and the period's statistics."""

    DEFAULT_CSS = """
    LagChart { height: 1fr; }
    LagChart #lag-controls { height: 1; }
    LagChart #lag-controls Label { padding: 0 1 0 0; }
    LagChart #lag-period { width: 14; margin-right: 2; }
    LagChart #lag-metric { width: 10; margin-right: 2; }
    LagChart #lag-legend { width: 1fr; color: $text-muted; text-wrap: nowrap;
                           text-overflow: ellipsis; }
    LagChart LagPlot { margin: 1 0 0 0; }
    LagChart #lag-stats { height: auto; }
    """

    class PeriodChanged(Message):
        """The user picked another period: the owner reloads the lag report."""

        def __init__(self, period: Period) -> None:
            super().__init__()
            self.period = period

    def __init__(self, *, id: str | None = None, period: Period = Period.DAY) -> None:
        super().__init__(id=id)
        self.period = period
        self.metric = METRICS[0]
        self.report: LagReport | None = None
        self._note = ""

    def compose(self) -> ComposeResult:
        with Horizontal(id="lag-controls"):
            yield Label("period")
            yield Select([(p.value, p) for p in Period], value=self.period, allow_blank=False,
                         compact=True, id="lag-period")
            yield Label("metric")
            yield Select([(m, m) for m in METRICS], value=self.metric, allow_blank=False,
                         compact=True, id="lag-metric")
            yield Static(self._legend(), id="lag-legend")
        yield LagPlot(id="lag-plot")
        yield Static("", id="lag-stats")

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.id == "lag-period" and isinstance(event.value, Period):
            if event.value != self.period:
                self.period = event.value
                self.post_message(self.PeriodChanged(event.value))
        elif event.select.id == "lag-metric" and isinstance(event.value, str):
            self.metric = event.value
            self._draw()

    def set_period(self, period: Period) -> None:
        """Select ``period`` (from a key binding); the Select posts the change."""
        self.query_one("#lag-period", Select).value = period

    def toggle_metric(self) -> None:
        select = self.query_one("#lag-metric", Select)
        select.value = METRICS[(METRICS.index(self.metric) + 1) % len(METRICS)]

    def show(self, report: LagReport | None, note: str = "") -> None:
        self.report = report
        self._note = note
        self._draw()

    def _legend(self) -> str:
        return (f"[$success]{SOLID}[/] published ({self.metric})  "
                f"[$warning]{SHADE}[/] waiting")

    def _draw(self) -> None:
        report = self.report
        self.query_one(LagPlot).show(report, self.metric)
        self.query_one("#lag-legend", Static).update(self._legend())
        stats = self.query_one("#lag-stats", Static)
        if report is None:
            stats.update(self._note or "no lag report")
            return
        stats.update(stats_line(report))


def stats_line(report: LagReport) -> str:
    """The current lag and the period's statistics: the same figures as `btar lag` (one
    percentile definition, engine.lag.percentile, over the items published in the period)."""
    s = report.stats
    head = (f"{report.service} → {report.region}: current lag "
            f"{duration(report.current_lag_seconds)} · last {report.period.value}: ")
    if not s.count:
        return head + "no item published"
    return (head + f"{s.count} items published · p50 {duration(s.p50)} · "
            f"p95 {duration(s.p95)} · p99 {duration(s.p99)} · max {duration(s.max)}")

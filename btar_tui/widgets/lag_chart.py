"""The replication lag over a selectable period: a sparkline of bucket p50 or max."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Label, Select, Sparkline, Static

from btar_tui.format import duration, when
from engine.api import LagReport
from engine.lag import Period

METRICS = ("p50", "max")


class LagChart(Vertical):
    """Period and metric pickers, the sparkline, and the period's statistics."""

    DEFAULT_CSS = """
    LagChart { height: auto; }
    LagChart #lag-controls { height: 1; }
    LagChart #lag-controls Label { padding: 0 1 0 0; }
    LagChart #lag-period { width: 14; margin-right: 2; }
    LagChart #lag-metric { width: 10; }
    LagChart Sparkline { height: 5; margin: 1 0 0 0; }
    LagChart #lag-axis { color: $text-muted; }
    """

    class PeriodChanged(Message):
        """The user picked another period: the owner reloads the lag report."""

        def __init__(self, period: Period) -> None:
            super().__init__()
            self.period = period

    def __init__(self, *, id: str | None = None, period: Period = Period.DAY) -> None:
        super().__init__(id=id)
        self.period = period
        self.metric = "p50"
        self.report: LagReport | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="lag-controls"):
            yield Label("period")
            yield Select([(p.value, p) for p in Period], value=self.period, allow_blank=False,
                         compact=True, id="lag-period")
            yield Label("metric")
            yield Select([(m, m) for m in METRICS], value=self.metric, allow_blank=False,
                         compact=True, id="lag-metric")
        yield Sparkline([], id="lag-sparkline")
        yield Static("", id="lag-axis")
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

    def _draw(self) -> None:
        report = self.report
        sparkline = self.query_one(Sparkline)
        axis = self.query_one("#lag-axis", Static)
        stats = self.query_one("#lag-stats", Static)
        if report is None:
            sparkline.data = []
            axis.update("")
            stats.update(getattr(self, "_note", "") or "no lag report")
            return
        values = [(b.stats.p50 if self.metric == "p50" else b.stats.max) or 0.0
                  for b in report.buckets]
        sparkline.data = values
        left, right = when(report.start), when(report.end)
        width = max(len(left) + len(right) + 1, sparkline.size.width or 60)
        axis.update(left + " " * (width - len(left) - len(right)) + right)
        s = report.stats
        peak = max(values) if values else 0.0
        stats.update(
            f"{report.service} → {report.region}, last {report.period.value}: "
            f"current {duration(report.current_lag_seconds)} · {s.count} items · "
            f"p50 {duration(s.p50)} · p95 {duration(s.p95)} · p99 {duration(s.p99)} · "
            f"max {duration(s.max)} · chart peak {duration(peak)}"
            if s.count else
            f"{report.service} → {report.region}: no item published in the last "
            f"{report.period.value}; current lag {duration(report.current_lag_seconds)}")

"""Replay a scenario file in the simulator and watch it on the widgets of live mode: the
services table, the windows of the highlighted service on a time axis, its lag chart and the
latest events; play at a speed (virtual seconds per wall second) or move by one journaled
event or one virtual minute; at the end, the verdict of each expectation and the command that
replays the run exactly."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static
from textual.worker import get_current_worker

from btar_tui import workers
from btar_tui.format import duration
from btar_tui.messages import (
    ActionFailed,
    ReplayAdvanced,
    ReplayFinished,
    ReplayInvalid,
    ReplayStarted,
)
from btar_tui.replay_driver import DEFAULT_SPEED, SPEEDS, ReplayControl, drive_replay
from btar_tui.screens.services import COLUMNS, row_cells
from btar_tui.widgets.lag_chart import LagChart
from btar_tui.widgets.window_axis import WindowAxis
from engine.lag import Period
from simulator.replay import ReplayEvent, ReplaySnapshot, ServiceFrame

PERIODS = list(Period)
LEVEL_STYLES = {"warning": "yellow", "error": "bold red", "info": ""}


def clock(seconds: float) -> str:
    """Virtual time since the start: T+hh:mm:ss (with days past 24 h)."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"T+{f'{days}d ' if days else ''}{hours:02d}:{minutes:02d}:{secs:02d}"


def speed_label(speed: float) -> str:
    return f"{speed:g}x"


def status_line(snapshot: ReplaySnapshot, speed: float, state: str) -> Text:
    share = snapshot.t / snapshot.duration if snapshot.duration else 1.0
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(clock(snapshot.t), style="bold")
    text.append(f" of {clock(snapshot.duration)[2:]} ({share:.0%}) · ")
    text.append(snapshot.now.strftime("%m-%d %H:%M:%S"))
    text.append(f" UTC · {speed_label(speed)} · ")
    text.append(state, style={"playing": "green", "paused": "yellow",
                              "finished": "bold"}.get(state, ""))
    text.append(f" · {snapshot.events_processed} events")
    return text


def event_line(event: ReplayEvent) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(clock(event.t) + " ", style="dim")
    text.append(f"{event.source} ", style="bold")
    text.append(event.text, style=LEVEL_STYLES.get(event.level, ""))
    return text


def events_text(snapshot: ReplaySnapshot) -> Text:
    """The operation that just ran, then the two newest events."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("last op ", style="dim")
    text.append(snapshot.last or "-")
    for event in snapshot.events[:2]:
        text.append("\n")
        text.append_text(event_line(event))
    return text


def verdicts_text(message: ReplayFinished) -> Text:
    """The outcome and the replay command first (they must show without scrolling), then
    each expectation's verdict."""
    text = Text()
    failed = sum(1 for v in message.verdicts if not v.holds)
    total = len(message.verdicts)
    if message.crashed:
        text.append("the run crashed; nothing was judged", style="bold red")
    elif failed:
        text.append(f"{failed} of {total} expectations fail", style="bold red")
    else:
        text.append(f"all {total} expectations hold", style="bold green")
    text.append(f" · {message.events} events, virtual {duration(message.virtual_seconds)}, "
                f"wall {message.wall_seconds:.1f} s\n", style="dim")
    text.append("replay: ", style="bold")
    text.append(message.command + "\n", style="cyan")
    if message.crashed:
        text.append("CRASH ", style="bold red")
        text.append(message.crashed.strip().splitlines()[-1] + "\n")
    for verdict in message.verdicts:
        text.append("PASS " if verdict.holds else "FAIL ",
                    style="green" if verdict.holds else "bold red")
        text.append(f"expect[{verdict.index}] {verdict.label}", style="bold")
        text.append(f": {verdict.detail}\n")
    return text


def invalid_text(message: ReplayInvalid) -> Text:
    text = Text()
    text.append(f"invalid scenario {message.path}: nothing was run\n", style="bold red")
    for problem in message.problems:
        text.append(problem + "\n")
    return text


class ReplayScreen(Screen[None]):
    """One replay; the worker runs until the screen goes away."""

    BINDINGS = [
        Binding("space", "toggle_play", "Play"),
        Binding("n", "next_event", "Step"),
        Binding("m", "next_minute", "+1m"),
        Binding("plus,equals_sign", "faster", "Faster", key_display="+"),
        Binding("minus", "slower", "Slower", key_display="-"),
        Binding("e", "to_end", "End"),
        Binding("v", "toggle_verdicts", "Verdicts"),
        Binding("p", "next_period", "Lag period", show=False),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, path: str, seed: int | None = None) -> None:
        super().__init__(id="replay-screen")
        self.path = path
        self.seed = seed
        self.control = ReplayControl(DEFAULT_SPEED)
        self.snapshot: ReplaySnapshot | None = None
        self.finished: ReplayFinished | None = None
        self.invalid: ReplayInvalid | None = None
        self.command = ""
        self.selected: str | None = None

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(f"loading {self.path}…", id="replay-status")
        yield DataTable(id="replay-services", cursor_type="row", zebra_stripes=True)
        with Vertical(id="replay-body"):
            yield WindowAxis(id="replay-windows")
            yield LagChart(id="replay-lag", period=self.control.period)
        with VerticalScroll(id="replay-verdicts"):
            yield Static("", id="replay-verdict-text")
        yield Static("", id="replay-events")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"replay {self.path}"
        self.query_one("#replay-verdicts").display = False
        table = self.query_one("#replay-services", DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        table.focus()
        path, seed, control = self.path, self.seed, self.control

        def run() -> None:
            worker = get_current_worker()
            drive_replay(path, seed, control, self.post_message, lambda: worker.is_cancelled)

        workers.start(self, "replay", run)

    def on_unmount(self) -> None:
        self.control.stop()

    # -- messages from the worker ------------------------------------------------------------

    def on_replay_started(self, message: ReplayStarted) -> None:
        self.command = message.command
        self.sub_title = f"replay: {message.name} (seed {message.seed})"

    def on_replay_advanced(self, message: ReplayAdvanced) -> None:
        self.snapshot = message.snapshot
        self._show_status()
        self._show_services(message.snapshot.services)
        self._show_selected()
        self.query_one("#replay-events", Static).update(events_text(message.snapshot))

    def on_replay_finished(self, message: ReplayFinished) -> None:
        self.finished = message
        self._show_status()
        self.query_one("#replay-verdict-text", Static).update(verdicts_text(message))
        self._show_verdicts(True)

    def on_replay_invalid(self, message: ReplayInvalid) -> None:
        self.invalid = message
        self.query_one("#replay-status", Static).update(
            Text("invalid scenario: nothing was run (escape goes back)", style="bold red"))
        self.query_one("#replay-verdict-text", Static).update(invalid_text(message))
        self.query_one("#replay-services").display = False
        self._show_verdicts(True)

    def on_action_failed(self, message: ActionFailed) -> None:
        self.query_one("#replay-status", Static).update(
            Text(f"the replay stopped: {message.message}", style="bold red"))
        self.notify(message.message, title=message.action, severity="error")

    # -- rendering ---------------------------------------------------------------------------

    @property
    def state(self) -> str:
        if self.finished is not None:
            return "finished"
        return "playing" if self.control.playing else "paused"

    def _show_status(self) -> None:
        if self.snapshot is not None:
            self.query_one("#replay-status", Static).update(
                status_line(self.snapshot, self.control.speed, self.state))

    def _show_services(self, frames: tuple[ServiceFrame, ...]) -> None:
        table = self.query_one("#replay-services", DataTable)
        keys = [f.status.name for f in frames]
        if keys == [str(key.value) for key in table.rows]:
            for frame in frames:
                for (column, _), cell in zip(COLUMNS, row_cells(frame.status), strict=True):
                    table.update_cell(frame.status.name, column, cell, update_width=True)
            return
        table.clear()
        for frame in frames:
            table.add_row(*row_cells(frame.status), key=frame.status.name)
        if self.selected in keys:
            table.move_cursor(row=keys.index(self.selected))

    def _frame(self) -> ServiceFrame | None:
        if self.snapshot is None:
            return None
        frames = self.snapshot.services
        return next((f for f in frames if f.status.name == self.selected),
                    frames[0] if frames else None)

    def _show_selected(self) -> None:
        frame = self._frame()
        if frame is None:
            return
        self.query_one(WindowAxis).show(list(frame.windows))
        self.query_one(LagChart).show(frame.lag, frame.lag_note)

    def _show_verdicts(self, shown: bool) -> None:
        panel = self.query_one("#replay-verdicts", VerticalScroll)
        panel.display = shown
        self.query_one("#replay-body").display = not shown
        # The panel scrolls with the arrows; the table takes them back with the charts.
        (panel if shown else self.query_one("#replay-services")).focus()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.selected = str(event.row_key.value)
            self._show_selected()

    # -- actions -----------------------------------------------------------------------------

    def _ready(self) -> bool:
        return self.snapshot is not None and self.invalid is None

    def action_toggle_play(self) -> None:
        if not self._ready() or self.finished is not None:
            return
        self.control.play(not self.control.playing)
        self._show_status()

    def action_next_event(self) -> None:
        if self._ready():
            self.control.move("event")

    def action_next_minute(self) -> None:
        if self._ready():
            self.control.move("minute")

    def action_to_end(self) -> None:
        if self._ready():
            self.control.move("end")

    def _change_speed(self, step: int) -> None:
        speeds = list(SPEEDS)
        current = speeds.index(self.control.speed) if self.control.speed in speeds else 1
        self.control.speed = speeds[max(0, min(len(speeds) - 1, current + step))]
        self._show_status()

    def action_faster(self) -> None:
        self._change_speed(1)

    def action_slower(self) -> None:
        self._change_speed(-1)

    def action_toggle_verdicts(self) -> None:
        if self.finished is None:
            self.notify("the verdicts come at the end of the run (e runs to the end)")
            return
        self._show_verdicts(not self.query_one("#replay-verdicts").display)

    def action_next_period(self) -> None:
        chart = self.query_one(LagChart)
        chart.set_period(PERIODS[(PERIODS.index(chart.period) + 1) % len(PERIODS)])

    def on_lag_chart_period_changed(self, message: LagChart.PeriodChanged) -> None:
        self.control.show_period(message.period)

    def action_back(self) -> None:
        self.control.stop()
        self.dismiss()

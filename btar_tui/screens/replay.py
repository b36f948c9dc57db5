"""Replay a scenario file in the simulator and watch it on the widgets of live mode: the
services table, the windows of the highlighted service on a time axis, its lag chart and the
latest events; a one-line timeline of the scenario with its faults and actions marked and the
current time.

Play at a speed (virtual seconds per wall second), move by one journaled event or one virtual
minute, jump to the start of the next timeline entry, run to the end; go back by restarting
(the same seed: the same run) or to any earlier time (restart and run forward to it, with its
progress shown). At the end, the verdict of each expectation and the command that replays the
run exactly.

Keys (none of them means something else on another screen): space play/pause, n step,
t +1 minute, j next fault, b rewind, g go to a time, 0 restart, > end, v verdicts, + - speed,
p lag period, l the event list (enter it to read an event in full), escape back. The live
app's s (sync) and a (auto-sync) do not apply to a replay: they only say so.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Header, Input, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from btar_tui import workers
from btar_tui.format import duration
from btar_tui.messages import (
    ActionFailed,
    ReplayAdvanced,
    ReplayFinished,
    ReplayInvalid,
    ReplayJumped,
    ReplaySeeking,
    ReplayStarted,
)
from btar_tui.replay_driver import DEFAULT_SPEED, SPEEDS, ReplayControl, drive_replay
from btar_tui.screens.services import COLUMNS, row_cells
from btar_tui.widgets.lag_chart import LagChart
from btar_tui.widgets.window_axis import WindowAxis
from engine.lag import Period
from simulator.replay_api import (
    Mark,
    ReplayEvent,
    ReplaySnapshot,
    ServiceFrame,
    parse_duration,
    parse_moment,
)

PERIODS = list(Period)
LEVEL_STYLES = {"warning": "yellow", "error": "bold red", "info": ""}
#: the glyph and style of a timeline entry on the timeline, by role
MARK_GLYPHS = {"fault": ("▼", "bold red"), "recovery": ("▲", "green"),
               "action": ("◆", "bold cyan")}
#: a rewind goes back this share of the scenario (in whole minutes, rounded up)
REWIND_SHARE = 0.05
GOTO_HINT = "T+ time: 1h30m, 01:30:00, +10m, -10m, end, or an ISO time; enter goes, escape closes"


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
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(clock(snapshot.t), style="bold")
    text.append(f" of {clock(snapshot.duration)[2:]} · ")
    text.append(snapshot.now.strftime("%m-%d %H:%M:%S"))
    text.append(f" UTC · {speed_label(speed)} · ")
    text.append(state, style={"playing": "green", "paused": "yellow",
                              "finished": "bold"}.get(state, "bold yellow"))
    text.append(f" · {snapshot.events_processed} events")
    return text


def seeking_line(target: float, at: float) -> Text:
    """While a restarted run goes forward to an earlier time than the one shown."""
    share = at / target if target else 1.0
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"going back to {clock(target)}", style="bold yellow")
    text.append(f": re-running from T+0, at {clock(at)} ({share:.0%})")
    return text


def timeline_text(marks: tuple[Mark, ...], total: float, t: float, width: int) -> Text:
    """The scenario's duration on one line of ``width`` cells: ─ ahead, ━ behind, ═ while a
    fault lasts (yellow), ▼ where a fault starts, ▲ a recovery, ◆ an action, and the current
    time reversed (● unless a mark is there)."""
    if width < 1:
        return Text()

    def cell(at: float) -> int:
        return 0 if total <= 0 else max(0, min(width - 1, int(at / total * width)))

    now = cell(t) if t < total else width - 1
    glyphs = ["━" if c < now else "─" for c in range(width)]
    styles = ["" if c < now else "dim" for c in range(width)]
    for mark in marks:
        if mark.role == "fault":
            end = cell(mark.until) if mark.until is not None else width - 1
            for c in range(cell(mark.t), end + 1):
                glyphs[c], styles[c] = "═", "yellow" if c < now else "dim yellow"
    for mark in marks:
        glyph, style = MARK_GLYPHS[mark.role]
        c = cell(mark.t)
        glyphs[c], styles[c] = glyph, style
    if glyphs[now] in ("━", "─", "═"):
        glyphs[now] = "●"
    styles[now] = f"{styles[now]} reverse".strip()
    text = Text(no_wrap=True, overflow="crop")
    for glyph, style in zip(glyphs, styles, strict=True):
        text.append(glyph, style=style)
    return text


def marks_help(marks: tuple[Mark, ...]) -> str:
    """The tooltip of the timeline: every entry with its time."""
    if not marks:
        return "no timeline entry: nothing is scheduled in this scenario"
    lines = []
    for mark in marks:
        line = f"{MARK_GLYPHS[mark.role][0]} {clock(mark.t)} {mark.label}"
        if mark.until is not None:
            line += f" (until {clock(mark.until)})"
        lines.append(line)
    return "\n".join([*lines, "", "click to go to a time; j jumps to the next entry"])


def parse_goto(typed: str, now: float, total: float, start: datetime | None = None) -> float:
    """The virtual time a go-to asks for, within [0, duration], in whole seconds: a time
    since the start ("1h30m", "01:30:00", "T+1:30:00"), a move from ``now`` ("+10m",
    "-10m"), "end" or "start", or an ISO time with a zone (``start``: the scenario's start).
    ValueError says what was expected."""
    text = typed.strip().lower()
    if text == "end":
        target = total
    elif text in ("start", "0", "t+0"):
        target = 0.0
    elif text and text[0] in "+-":
        target = now + (1.0 if text[0] == "+" else -1.0) * _offset(text[1:])
    elif "t" in text and not text.startswith("t+"):
        moment = parse_moment(typed.strip())
        if start is None or not isinstance(moment, datetime):
            raise ValueError(f"expected {GOTO_HINT}; got {typed!r}")
        target = (moment - start).total_seconds()
    else:
        target = _offset(text.removeprefix("t+"))
    return float(round(max(0.0, min(target, total))))


def _offset(text: str) -> float:
    """Seconds from "1h30m", "90" or a clock "[Nd ]hh:mm[:ss]"."""
    if ":" in text:
        days = 0
        if "d" in text:
            day, _, text = text.partition("d")
            days = int(day.strip()) if day.strip().isdigit() else -1
        parts = [p.strip() for p in text.split(":")]
        if days < 0 or not 2 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
            raise ValueError(f"expected {GOTO_HINT}; got {text!r}")
        numbers = [int(p) for p in parts] + [0] * (3 - len(parts))
        return days * 86400.0 + numbers[0] * 3600.0 + numbers[1] * 60.0 + numbers[2]
    try:
        return parse_duration(text)
    except ValueError:
        raise ValueError(f"expected {GOTO_HINT}; got {text!r}") from None


def event_line(event: ReplayEvent) -> Text:
    text = Text()
    text.append(clock(event.t) + " ", style="dim")
    text.append(f"{event.source} ", style="bold")
    text.append(event.text, style=LEVEL_STYLES.get(event.level, ""))
    return text


def last_op_line(snapshot: ReplaySnapshot) -> Text:
    text = Text()
    text.append("last op ", style="dim")
    text.append(snapshot.last or "-")
    return text


def event_lines(snapshot: ReplaySnapshot) -> list[tuple[str, Text]]:
    """The operation that just ran, then the events, newest first; each with a key that
    stays the same while the line is shown (so the highlighted one stays highlighted)."""
    lines = [("last", last_op_line(snapshot))]
    seen: dict[str, int] = {}
    for event in snapshot.events:
        key = f"{event.t}|{event.source}|{event.text}"
        seen[key] = seen.get(key, 0) + 1
        lines.append((f"{key}#{seen[key]}", event_line(event)))
    return lines


def events_text(snapshot: ReplaySnapshot) -> str:
    """Every line of the event list, as plain text (what a test or a copy reads)."""
    return "\n".join(line.plain for _, line in event_lines(snapshot))


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


class ReplayTimeline(Widget):
    """The scenario's duration on one line, its timeline entries marked, the current time
    shown; a click goes to the time under the pointer."""

    DEFAULT_CSS = """
    ReplayTimeline {
        height: 1;
        padding: 0 1;
    }
    """

    class Picked(Message):
        """The user clicked at ``t`` virtual seconds."""

        def __init__(self, t: float) -> None:
            super().__init__()
            self.t = t

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.marks: tuple[Mark, ...] = ()
        self.total = 0.0
        self.t = 0.0

    def set_marks(self, marks: tuple[Mark, ...], total: float) -> None:
        self.marks, self.total = marks, total
        self.tooltip = marks_help(marks)
        self.refresh()

    def set_time(self, t: float) -> None:
        self.t = t
        self.refresh()

    def render(self) -> Text:
        return timeline_text(self.marks, self.total, self.t, self.content_size.width)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        width = self.content_size.width
        if offset is None or width < 1 or self.total <= 0:
            return
        self.post_message(self.Picked(float(int(offset.x * self.total / width))))


class ReplayScreen(Screen[None]):
    """One replay; the worker runs until the screen goes away."""

    DEFAULT_CSS = """
    ReplayScreen #replay-charts {
        height: 2fr;
    }
    ReplayScreen #replay-verdict-panel {
        height: 2fr;
        padding: 0 1;
    }
    ReplayScreen #replay-feed {
        height: 1fr;
        min-height: 3;
    }
    ReplayScreen #replay-log {
        height: 1fr;
        border: none;
        padding: 0;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        background: $surface;
    }
    ReplayScreen #replay-log > .option-list--option {
        padding: 0 1;
    }
    ReplayScreen #replay-event-full {
        height: auto;
        max-height: 8;
        padding: 0 1;
        background: $boost;
        display: none;
    }
    ReplayScreen #replay-goto {
        margin: 0 1;
        display: none;
    }
    """

    BINDINGS = [
        Binding("space", "toggle_play", "Play"),
        Binding("n", "next_event", "Step", tooltip="to the next journaled operation"),
        Binding("t", "next_minute", "+1m", tooltip="one virtual minute later"),
        Binding("j", "next_fault", "Next fault",
                tooltip="run until the next timeline entry (fault, recovery, action) starts"),
        Binding("g", "goto", "Go to", tooltip="go to a time, earlier or later"),
        Binding("0", "restart", "Restart", tooltip="from T+0 with the same seed"),
        Binding("greater_than_sign", "to_end", "End", key_display=">",
                tooltip="run to the end and judge the expectations"),
        Binding("v", "toggle_verdicts", "Verdicts"),
        # 80 columns keep ? Help and q Quit: these are in the help (the speed is on the
        # status line; escape goes back as everywhere).
        Binding("b", "rewind", "Rewind", show=False),
        Binding("plus,equals_sign", "faster", "Faster", key_display="+", show=False),
        Binding("minus", "slower", "Slower", key_display="-", show=False),
        Binding("l", "focus_events", "Events", show=False),
        Binding("p", "next_period", "Lag period", show=False),
        Binding("escape", "back", "Back", show=False),
        # The live app's sync keys do nothing here: hidden, and they say why.
        Binding("s", "live_only('sync')", "Sync", show=False),
        Binding("a", "live_only('auto-sync')", "Auto-sync", show=False),
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
        self.marks: tuple[Mark, ...] = ()
        self.duration = 0.0
        #: (target, reached) while a restarted run goes forward to an earlier time
        self.seeking: tuple[float, float] | None = None
        self.selected: str | None = None
        self._log_keys: list[str] = []
        self._log_lines: dict[str, Text] = {}

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(f"loading {self.path}…", id="replay-status")
        yield ReplayTimeline(id="replay-timeline")
        yield DataTable(id="replay-services", cursor_type="row", zebra_stripes=True)
        with Vertical(id="replay-charts"):
            yield WindowAxis(id="replay-windows")
            yield LagChart(id="replay-lag", period=self.control.period)
        with VerticalScroll(id="replay-verdict-panel"):
            yield Static("", id="replay-verdict-text")
        with Vertical(id="replay-feed"):
            yield OptionList(id="replay-log", compact=True)
            yield Static("", id="replay-event-full")
        yield Input(placeholder=GOTO_HINT, compact=True, id="replay-goto")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.sub_title = f"replay {self.path}"
        self.query_one("#replay-verdict-panel").display = False
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
        """The first start, or a restart: nothing is finished any more."""
        self.command = message.command
        self.sub_title = f"replay: {message.name} (seed {message.seed})"
        self.marks, self.duration = message.marks, message.duration
        self.query_one(ReplayTimeline).set_marks(message.marks, message.duration)
        if self.finished is not None:
            self.finished = None
            self.query_one("#replay-verdict-text", Static).update("")
            self._show_verdicts(False)
        self.refresh_bindings()

    def on_replay_seeking(self, message: ReplaySeeking) -> None:
        self.seeking = (message.target, message.at)
        self.query_one("#replay-status", Static).update(seeking_line(message.target,
                                                                     message.at))
        self.query_one(ReplayTimeline).set_time(message.at)

    def on_replay_advanced(self, message: ReplayAdvanced) -> None:
        first = self.snapshot is None
        self.snapshot = message.snapshot
        self.seeking = None
        self._show_status()
        self.query_one(ReplayTimeline).set_time(message.snapshot.t)
        self._show_services(message.snapshot.services)
        self._show_selected()
        self._show_events(message.snapshot)
        if first:
            self.refresh_bindings()

    def on_replay_jumped(self, message: ReplayJumped) -> None:
        """Say what a jump stopped at (a fork, say, shows no event as it starts)."""
        if message.marks:
            self.notify("\n".join(f"{MARK_GLYPHS[m.role][0]} {m.label}"
                                  for m in message.marks), title=f"{clock(message.t)}: started")
        elif self.marks:
            self.notify(f"no timeline entry after {clock(message.t)}: > runs to the end")
        else:
            self.notify("this scenario has no timeline entry: > runs to the end")

    def on_replay_finished(self, message: ReplayFinished) -> None:
        self.finished = message
        self._show_status()
        self.query_one("#replay-verdict-text", Static).update(verdicts_text(message))
        self._show_verdicts(True)
        self.refresh_bindings()

    def on_replay_invalid(self, message: ReplayInvalid) -> None:
        self.invalid = message
        self.query_one("#replay-status", Static).update(
            Text("invalid scenario: nothing was run (escape goes back)", style="bold red"))
        self.query_one("#replay-verdict-text", Static).update(invalid_text(message))
        self.query_one("#replay-services").display = False
        self.query_one(ReplayTimeline).display = False
        self._show_verdicts(True)
        self.refresh_bindings()

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
        if self.snapshot is not None and self.seeking is None:
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

    def _show_events(self, snapshot: ReplaySnapshot) -> None:
        """One line per event, as many as the pane holds; the highlighted one in full below
        it while the list has the focus."""
        lines = event_lines(snapshot)
        keys = [key for key, _ in lines]
        texts = dict(lines)
        if keys == self._log_keys and texts == self._log_lines:
            return
        log = self.query_one("#replay-log", OptionList)
        highlighted = self._highlighted_key()
        self._log_keys, self._log_lines = keys, texts
        log.clear_options()
        log.add_options([Option(text, id=key) for key, text in lines])
        if log.has_focus:
            log.highlighted = keys.index(highlighted) if highlighted in keys else 0
        self._show_full_event()

    def _highlighted_key(self) -> str | None:
        log = self.query_one("#replay-log", OptionList)
        if log.highlighted is None or log.highlighted >= log.option_count:
            return None
        return log.get_option_at_index(log.highlighted).id

    def _show_full_event(self) -> None:
        log = self.query_one("#replay-log", OptionList)
        full = self.query_one("#replay-event-full", Static)
        key = self._highlighted_key()
        shown = log.has_focus and key is not None
        full.display = shown
        if shown and key is not None:
            full.update(self._log_lines.get(key, Text()))

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_list.id == "replay-log":
            self._show_full_event()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        log = self.query_one("#replay-log", OptionList)
        if event.widget is log and log.highlighted is None and log.option_count:
            log.highlighted = 0
        self._show_full_event()

    def on_descendant_blur(self, event: events.DescendantBlur) -> None:
        log = self.query_one("#replay-log", OptionList)
        if event.widget is log:
            log.highlighted = None
        self._show_full_event()

    def _show_verdicts(self, shown: bool) -> None:
        panel = self.query_one("#replay-verdict-panel", VerticalScroll)
        panel.display = shown
        self.query_one("#replay-charts").display = not shown
        # The panel scrolls with the arrows; the table takes them back with the charts.
        (panel if shown else self.query_one("#replay-services")).focus()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.selected = str(event.row_key.value)
            self._show_selected()

    def on_replay_timeline_picked(self, message: ReplayTimeline.Picked) -> None:
        if self._ready():
            self.control.seek(message.t)

    # -- actions -----------------------------------------------------------------------------

    def _ready(self) -> bool:
        return self.snapshot is not None and self.invalid is None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Moves wait for the first state (dimmed until then), and go away for an invalid
        file; the moves forward go away at the end, where the verdicts come (restart, rewind
        and go to still work)."""
        moves = ("toggle_play", "next_event", "next_minute", "next_fault", "to_end", "rewind",
                 "goto", "restart")
        if action in moves and self.invalid is not None:
            return False  # nothing was run: nothing to move
        if action in ("toggle_play", "next_event", "next_minute", "next_fault", "to_end"):
            if self.finished is not None:
                return False  # hidden: the footer makes room for the verdicts
            return True if self._ready() else None
        if action in ("rewind", "goto", "restart"):
            return True if self._ready() else None
        if action == "toggle_verdicts":
            return self.finished is not None or self.invalid is not None
        return True

    def action_toggle_play(self) -> None:
        self.control.play(not self.control.playing)
        self._show_status()

    def action_next_event(self) -> None:
        self.control.move("event")

    def action_next_minute(self) -> None:
        self.control.move("minute")

    def action_next_fault(self) -> None:
        self.control.move("fault")

    def action_to_end(self) -> None:
        self.control.move("end")

    def action_restart(self) -> None:
        self.control.move("restart")

    def rewind_step(self) -> float:
        return 60.0 * max(1, math.ceil(self.duration * REWIND_SHARE / 60))

    def action_rewind(self) -> None:
        self.control.move("back", self.rewind_step())

    def action_goto(self) -> None:
        field = self.query_one("#replay-goto", Input)
        field.display = True
        field.value = ""
        field.focus()

    def _close_goto(self) -> None:
        field = self.query_one("#replay-goto", Input)
        field.display = False
        self.query_one("#replay-services").focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "replay-goto" or self.snapshot is None:
            return
        snapshot = self.snapshot
        try:
            target = parse_goto(event.value, snapshot.t, snapshot.duration,
                                snapshot.now - timedelta(seconds=snapshot.t))
        except ValueError as error:
            self.notify(str(error), title="go to", severity="error")
            return
        self._close_goto()
        self.control.seek(target)

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
        self._show_verdicts(not self.query_one("#replay-verdict-panel").display)

    def action_next_period(self) -> None:
        chart = self.query_one(LagChart)
        chart.set_period(PERIODS[(PERIODS.index(chart.period) + 1) % len(PERIODS)])

    def on_lag_chart_period_changed(self, message: LagChart.PeriodChanged) -> None:
        self.control.show_period(message.period)

    def action_focus_events(self) -> None:
        self.query_one("#replay-log", OptionList).focus()

    def action_live_only(self, what: str) -> None:
        self.notify(f"{what} is for the live world; a replay replicates in the simulator "
                    "(escape goes back to it)")

    def action_back(self) -> None:
        if self.query_one("#replay-goto", Input).display:
            self._close_goto()
            return
        self.control.stop()
        self.dismiss()

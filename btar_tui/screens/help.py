"""Help: the key map of every screen, and the rules of the feature in one line each.

:data:`KEYMAP` is the single source of the keys: the help screen shows it, the command palette
offers the screen's own commands from it, docs/tui.md holds it as :func:`keymap_markdown`
writes it, and a test checks it against the ``BINDINGS`` of every screen.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


@dataclass(frozen=True)
class Key:
    """One key of a screen."""

    #: Textual key names as in the Binding, comma-separated ("escape,q"); for a key a widget
    #: handles itself (``action`` None), how it is written ("enter", "click a header")
    keys: str
    #: the action the Binding runs; None when a widget handles the key (no Binding)
    action: str | None
    meaning: str
    #: the title under which the command palette offers it on this screen; None: not there
    command: str | None = None


@dataclass(frozen=True)
class Section:
    """The keys of one screen (or of several that share them, like the dialogs)."""

    title: str
    #: class names of the screens whose BINDINGS these are ("BtarApp": everywhere)
    screens: tuple[str, ...]
    keys: tuple[Key, ...]


KEYMAP: tuple[Section, ...] = (
    Section("Everywhere", ("BtarApp",), (
        Key("s", "sync_now", "sync now: one replication pass of every service", "Sync now"),
        Key("a", "toggle_auto_sync", "auto-sync on or off", "Toggle auto-sync"),
        Key("l", "event_log", "event log (in a detail: this service's events)",
            "Event log"),
        Key("question_mark", "help", "this help", "Help"),
        Key("q", "quit", "quit"),
        Key("ctrl+p", None, "command palette: this screen's actions first, by name"),
    )),
    Section("Services (home)", ("ServicesScreen",), (
        Key("enter", None, "open the highlighted service"),
        Key("slash", "focus_filter", "filter: every word must match a field",
            "Filter services"),
        Key("escape", "clear_filter", "clear the filter", "Clear the filter"),
        Key("o", "cycle_sort", "sort by the next column", "Sort by the next column"),
        Key("O", "reverse_sort", "reverse the sort (no value stays last)", "Reverse the sort"),
        Key("click header", None, "sort by that column; again: reverse"),
        Key("e", "enable", "enable an additional region"),
        Key("c", "change", "change the additional region"),
        Key("d", "disable", "disable replication (keep or delete the copies)"),
        Key("f", "fork", "fork: restore latest or a point in time"),
        Key("r", "replay", "replay a scenario file in the simulator"),
        Key("dollar_sign", "cost", "cost of the additional regions"),
    )),
    Section("Service detail", ("DetailScreen",), (
        Key("escape", "back", "back to the services"),
        Key("1", "show_tab('backups-tab')", "Backups tab", "Show the backups"),
        Key("2", "show_tab('lag-tab')", "Lag tab", "Show the lag chart"),
        Key("3", "show_tab('events-tab')", "Events tab", "Show this service's events"),
        Key("l", "show_tab('events-tab')", "this service's events (Events tab)"),
        Key("e", "enable", "enable an additional region"),
        Key("c", "change", "change the additional region"),
        Key("d", "disable", "disable replication (keep or delete the copies)"),
        Key("f", "fork", "fork: restore latest or a point in time"),
        Key("p", "next_period", "lag: next period (hour ... year)", "Next lag period"),
        Key("m", "toggle_metric", "lag: p50 or max", "Lag chart: p50 or max"),
    )),
    Section("Event log", ("EventLogScreen",), (
        Key("escape", "back", "back"),
        Key("r", "reload", "reload", "Reload the event log"),
    )),
    Section("Cost", ("CostScreen",), (
        Key("escape", "back", "back"),
        Key("p", "next_period", "copies: next period", "Next cost period"),
        Key("r", "reload", "reload", "Reload the cost"),
    )),
    Section("Replay", ("ReplayScreen",), (
        Key("space", "toggle_play", "play or pause", "Play or pause the replay"),
        Key("n", "next_event", "step: the next journaled operation", "Step to the next event"),
        Key("t", "next_minute", "one virtual minute later", "One virtual minute later"),
        Key("j", "next_fault", "run to the next timeline entry (fault, recovery...)",
            "Run to the next fault"),
        Key("b", "rewind", "go back a twentieth of the scenario", "Rewind"),
        Key("g", "goto", "go to a time, earlier or later", "Go to a time"),
        Key("0", "restart", "restart from T+0, same seed", "Restart the replay"),
        Key("greater_than_sign", "to_end", "run to the end and judge", "Run to the end"),
        Key("v", "toggle_verdicts", "show or hide the verdicts", "Show or hide the verdicts"),
        Key("plus,equals_sign", "faster", "faster", "Replay faster"),
        Key("minus", "slower", "slower", "Replay slower"),
        Key("l", "focus_events", "the event list; the highlighted event shows in full",
            "Go to the event list"),
        Key("p", "next_period", "lag: next period", "Next lag period"),
        Key("s", "live_only('sync')", "nothing: sync is for the live world (says so)"),
        Key("a", "live_only('auto-sync')", "nothing: auto-sync is for the live world"),
        Key("escape", "back", "back (stops the replay; closes go to)"),
    )),
    Section("Dialogs", ("RegionDialog", "DisableDialog", "ForkWizard", "ScenarioPicker"), (
        Key("escape", "cancel", "cancel, or close when done"),
        Key("tab", None, "next field or button; enter presses it"),
    )),
    Section("Help", ("HelpScreen",), (
        Key("escape,q,question_mark", "close", "close"),
    )),
)

#: how key names are written on screen and in the docs
KEY_NAMES = {"slash": "/", "question_mark": "?", "dollar_sign": "$", "plus": "+",
             "equals_sign": "=", "minus": "-", "escape": "esc", "greater_than_sign": ">"}

#: one line each, short enough for an 80-column terminal (74 cells inside the dialog)
RULES = (
    "Only PostgreSQL and MySQL services get an additional backup region.",
    "The additional region has the service's provider, not the primary.",
    "Only complete primary backups are copied, byte-identical.",
    "Lag is measured per item, reported per hour, day, week, month, year.",
    "A fork targets a time inside the region's window; latest is its end.",
    "A copy is restored only in the region that stores it.",
    "Disable keeps copies (retained) or deletes them, never the only copy.",
    "A new region starts fresh; the old stays until the new can restore.",
)


def key_display(key: Key) -> str:
    """The keys as a person types them: "esc q ?", "+ =", "O"."""
    if key.action is None:
        return key.keys
    return " ".join(KEY_NAMES.get(name, name) for name in key.keys.split(","))


def section_for(screen: str) -> Section | None:
    """The section of a screen, by its class name."""
    return next((section for section in KEYMAP if screen in section.screens), None)


def help_text() -> Text:
    text = Text()
    text.append("Keys", style="bold underline")
    width = max(len(key_display(key)) for section in KEYMAP for key in section.keys)
    for section in KEYMAP:
        text.append(f"\n{section.title}\n", style="bold")
        for key in section.keys:
            text.append(f"  {key_display(key).ljust(width)}  ", style="bold cyan")
            text.append(key.meaning + "\n")
    text.append("\nRules of the feature\n", style="bold underline")
    for number, rule in enumerate(RULES, start=1):
        text.append(f"  {number}. ", style="bold")
        text.append(rule + "\n")
    return text


def keymap_markdown() -> str:
    """The key map as docs/tui.md holds it: one table per screen."""
    lines: list[str] = []
    for section in KEYMAP:
        lines += [f"### {section.title}", "", "| Key | Action |", "| --- | --- |"]
        for key in section.keys:
            shown = key_display(key).replace("|", "\\|")
            lines.append(f"| `{shown}` | {key.meaning} |")
        lines.append("")
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    """Any key in BINDINGS closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="help-dialog"):
            yield Static(help_text(), id="help-text")

    def action_close(self) -> None:
        self.dismiss()

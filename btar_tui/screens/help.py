"""Help: the keys, and the rules of the feature in one line each."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = (
    ("enter", "open the highlighted service"),
    ("/", "filter services (escape clears)"),
    ("o / click a header", "sort by the next column / that column"),
    ("e", "enable an additional region"),
    ("c", "change the additional region"),
    ("d", "disable replication (keep or delete the copies)"),
    ("f", "fork wizard: restore latest or a point in time"),
    ("s", "sync now: one replication pass of every service"),
    ("a", "toggle auto-sync"),
    ("l", "event log"),
    ("p / m", "detail: next lag period / p50 or max"),
    ("r", "replay a scenario file in the simulator"),
    ("$", "cost of the additional regions (p: period)"),
    ("space n m + - e", "replay: play/pause, step, +1 min, speed, to the end"),
    ("ctrl+p", "command palette: every action by name"),
    ("escape", "back, or close a dialog"),
    ("?", "this help"),
    ("q", "quit"),
)
#: one line each, short enough for an 80-column terminal
RULES = (
    "Only PostgreSQL and MySQL services get an additional backup region.",
    "The additional region has the service's provider, not the primary.",
    "Only complete primary backups are copied, byte-identical.",
    "Lag is measured per item, reported per hour, day, week, month, year.",
    "A fork targets a time inside the region's window; latest is its end.",
    "A copy is restored only in the region that stores it.",
    "Disable keeps copies (retained) or deletes them, never the only copy.",
    "A new region starts fresh; the old one stays until the new can restore.",
)


def help_text() -> Text:
    text = Text()
    text.append("Keys\n", style="bold underline")
    width = max(len(key) for key, _ in KEYS)
    for key, meaning in KEYS:
        text.append(f"  {key.ljust(width)}  ", style="bold cyan")
        text.append(meaning + "\n")
    text.append("\nRules of the feature\n", style="bold underline")
    for number, rule in enumerate(RULES, start=1):
        text.append(f"  {number}. ", style="bold")
        text.append(rule + "\n")
    return text


class HelpScreen(ModalScreen[None]):
    """Any key in BINDINGS closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="help-dialog"):
            yield Static(help_text(), id="help-text")

    def action_close(self) -> None:
        self.dismiss()

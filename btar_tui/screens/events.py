"""The event log: replication events and management actions of every service, newest first."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header

from btar_tui import workers
from btar_tui.format import when
from btar_tui.messages import ActionFailed, EventsLoaded
from btar_tui.views import load_events

if TYPE_CHECKING:
    from btar_tui.app import BtarApp

LEVEL_STYLES = {"warning": "yellow", "error": "bold red", "info": ""}
LIMIT = 500


class EventLogScreen(Screen[None]):
    """Btar.events() in a table; refreshed after every sync."""

    BINDINGS = [Binding("escape", "back", "Back"), Binding("r", "reload", "Reload")]

    @property
    def btar_app(self) -> BtarApp:
        return cast("BtarApp", self.app)

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield DataTable(id="event-log", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "event log"
        table = self.query_one(DataTable)
        for key, label in (("at", "AT (UTC)"), ("level", "LEVEL"), ("service", "SERVICE"),
                           ("region", "REGION"), ("message", "MESSAGE")):
            table.add_column(label, key=key)
        self.btar_app.status_signal.subscribe(self, lambda _: self.action_reload())
        self.action_reload()
        table.focus()

    def action_reload(self) -> None:
        bridge = self.btar_app.bridge
        workers.start(self, "events", lambda: self.post_message(
            EventsLoaded(bridge.call(lambda b: load_events(b, LIMIT)))), exclusive=True)

    def on_events_loaded(self, message: EventsLoaded) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for index, event in enumerate(message.events):
            table.add_row(when(event.at), Text(event.level, LEVEL_STYLES.get(event.level, "")),
                          event.service, event.region or "-", event.message, key=str(index))

    def on_action_failed(self, message: ActionFailed) -> None:
        self.notify(message.message, title=message.action, severity="error")

    def action_back(self) -> None:
        self.dismiss()

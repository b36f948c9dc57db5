"""The service detail: backups per region, copy progress, restorable windows on a time axis,
the lag chart and recent events."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import (
    DataTable,
    Footer,
    Header,
    Label,
    ProgressBar,
    Static,
    TabbedContent,
    TabPane,
)

from btar_tui import workers
from btar_tui.format import duration, item_status_text, when
from btar_tui.messages import ActionFailed, DetailLoaded
from btar_tui.screens.services import hinted_state
from btar_tui.views import DetailData, EventView, ItemLine, SyncView, load_detail
from btar_tui.widgets.lag_chart import LagChart
from btar_tui.widgets.window_axis import WindowAxis
from engine.api import ServiceStatus
from engine.lag import Period
from engine.units import byte_size

if TYPE_CHECKING:
    from btar_tui.app import BtarApp

PERIODS = list(Period)
TABS = Binding.Group("Tabs")


def summary_text(name: str, status: ServiceStatus | None) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(name, style="bold")
    if status is None:
        return text
    text.append(f"  {status.type}  {status.primary_region} → ")
    text.append(status.additional_region or "no additional region",
                style="" if status.additional_region else "dim")
    text.append("  ")
    text.append_text(hinted_state(status, status.short_state))
    text.append(f"  lag {duration(status.current_lag_seconds)}")
    backlog = status.backlog
    if backlog:
        # Why the lag grows: what still waits in each lane (log segments go first).
        text.append("  to copy: " + ", ".join(
            f"{lane} {backlog[lane].items} ({byte_size(backlog[lane].bytes)})"
            for lane in ("log", "base") if lane in backlog), style="dim")
    for region in status.regions:
        # A region that fails: which, what class of fault, since when and why.
        if region.fault is not None:
            text.append(f"\n{region.region} ({region.role}) {region.fault.kind} since "
                        f"{when(region.fault.since)}: {region.fault.reason}",
                        style="bold red" if region.fault.unreachable else "yellow")
    return text


def item_info(line: ItemLine, regions: list[tuple[str, str]]) -> str:
    """One line on the highlighted item: its time, size and state in each other region."""
    parts = [f"{line.item_id} ({line.kind}) ends {when(line.end_time)}, {byte_size(line.size)}"]
    for region, role in regions:
        if role == "primary":
            continue
        cell = line.cells.get(region)
        if cell is None:
            parts.append(f"{region}: not listed")
            continue
        detail = cell.status + (f" ({cell.reason})" if cell.reason else "")
        if cell.lag_seconds is not None:
            detail += f", lag {duration(cell.lag_seconds)}"
        parts.append(f"{region}: {detail}")
    return " · ".join(parts)


class DetailScreen(Screen[None]):
    """Everything about one service."""

    # The footer shows what fits in 80 columns with "? Help" and "q Quit" (the app's keys
    # come last); the others are in the help (?) and the command palette (ctrl+p).
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("1", "show_tab('backups-tab')", "Backups", group=TABS),
        Binding("2", "show_tab('lag-tab')", "Lag", group=TABS),
        Binding("3", "show_tab('events-tab')", "Events", group=TABS),
        # In the detail, l (the event log elsewhere) shows this service's events.
        Binding("l", "show_tab('events-tab')", "Events", show=False),
        Binding("e", "enable", "Enable", show=False),
        Binding("c", "change", "Change", show=False),
        Binding("d", "disable", "Disable", show=False),
        Binding("f", "fork", "Fork"),
        Binding("p", "next_period", "Period"),
        Binding("m", "toggle_metric", "p50/max", show=False),
        # The app's auto-sync key, kept out of this footer.
        Binding("a", "app.toggle_auto_sync", "Auto-sync", show=False),
    ]

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service
        self.period = Period.DAY
        self.data: DetailData | None = None
        self._regions: list[tuple[str, str]] = []
        self._lines: dict[str, ItemLine] = {}
        self._items: list[ItemLine] | None = None
        self._events: list[EventView] | None = None

    @property
    def btar_app(self) -> BtarApp:
        return cast("BtarApp", self.app)

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(summary_text(self.service, None), id="detail-summary")
        yield WindowAxis(id="windows")
        with Horizontal(id="copy-progress"):
            yield Label("", id="copy-label")
            yield ProgressBar(show_eta=False, id="copy-bar")
        with TabbedContent(initial="backups-tab"):
            with TabPane("Backups", id="backups-tab"):
                yield DataTable(id="backups", cursor_type="row", zebra_stripes=True)
                yield Static("", id="item-info")
            with TabPane("Lag", id="lag-tab"):
                yield LagChart(id="lag", period=self.period)
            with TabPane("Events", id="events-tab"):
                yield DataTable(id="events", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.service
        events = self.query_one("#events", DataTable)
        for key, label in (("at", "AT (UTC)"), ("level", "LEVEL"), ("region", "REGION"),
                           ("message", "MESSAGE")):
            events.add_column(label, key=key)
        self.btar_app.status_signal.subscribe(self, lambda _: self.reload())
        self.btar_app.sync_signal.subscribe(self, self.show_sync)
        self.show_sync(self.btar_app.sync_view)
        self.reload()
        self.query_one("#backups", DataTable).focus()

    # -- loading (worker thread) -------------------------------------------------------------

    def reload(self) -> None:
        name, period, bridge = self.service, self.period, self.btar_app.bridge

        def load() -> None:
            self.post_message(DetailLoaded(bridge.call(lambda b: load_detail(b, name, period))))

        workers.start(self, "detail", load, exclusive=True)

    # -- rendering ---------------------------------------------------------------------------

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        data = message.data
        if data.name != self.service:
            return
        self.data = data
        self.query_one("#detail-summary", Static).update(summary_text(data.name, data.status))
        self.query_one(WindowAxis).show(data.windows, data.branches)
        self._show_backups(data)
        self.query_one(LagChart).show(data.lag, data.lag_note)
        events = self.query_one("#events", DataTable)
        if data.events == self._events:
            return
        self._events = data.events
        events.clear()
        for index, event in enumerate(data.events):
            events.add_row(when(event.at), event.level, event.region or "-", event.message,
                           key=str(index))

    def on_action_failed(self, message: ActionFailed) -> None:
        self.notify(message.message, title=message.action, severity="error")

    def _show_backups(self, data: DetailData) -> None:
        if data.items == self._items and data.regions == self._regions:
            return  # unchanged: leave the table (cursor, scroll) alone during auto-sync
        self._items = data.items
        table = self.query_one("#backups", DataTable)
        highlighted = None
        if table.row_count:
            row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
            highlighted = row_key.value
        if data.regions != self._regions:
            table.clear(columns=True)
            for key, label in (("item", "ITEM"), ("end", "END (UTC)"), ("size", "SIZE")):
                table.add_column(label, key=key)
            for region, _ in data.regions:
                table.add_column(region, key=f"region:{region}")
            self._regions = list(data.regions)
        else:
            table.clear()
        self._lines = {line.item_id: line for line in data.items}
        for line in data.items:
            cells: list[str | Text] = [line.item_id, when(line.end_time), byte_size(line.size)]
            for region, _ in data.regions:
                cell = line.cells.get(region)
                cells.append(item_status_text(cell.status if cell else None))
            table.add_row(*cells, key=line.item_id)
        ids = [line.item_id for line in data.items]
        if highlighted in ids:
            table.move_cursor(row=ids.index(str(highlighted)))
        if not data.items:
            self.query_one("#item-info", Static).update(
                "no backups known yet: press s to sync (discovers the primary's backups)")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id != "backups" or event.row_key.value is None:
            return
        line = self._lines.get(str(event.row_key.value))
        if line is not None:
            self.query_one("#item-info", Static).update(item_info(line, self._regions))

    def show_sync(self, view: SyncView) -> None:
        box = self.query_one("#copy-progress", Horizontal)
        copying = view.running and view.service == self.service and view.total > 0
        box.display = copying
        if copying:
            self.query_one("#copy-label", Label).update(
                f"copying {view.done}/{view.total} objects, "
                f"{byte_size(view.bytes_done)} of {byte_size(view.bytes_total)} ")
            self.query_one("#copy-bar", ProgressBar).update(total=view.total,
                                                            progress=view.done)

    # -- actions -----------------------------------------------------------------------------

    def on_lag_chart_period_changed(self, message: LagChart.PeriodChanged) -> None:
        self.period = message.period
        self.reload()

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        table = {"backups-tab": "#backups", "events-tab": "#events"}.get(tab)
        if table is not None:
            self.query_one(table, DataTable).focus()

    def action_next_period(self) -> None:
        self.query_one(TabbedContent).active = "lag-tab"
        chart = self.query_one(LagChart)
        chart.set_period(PERIODS[(PERIODS.index(chart.period) + 1) % len(PERIODS)])

    def action_toggle_metric(self) -> None:
        self.query_one(TabbedContent).active = "lag-tab"
        self.query_one(LagChart).toggle_metric()

    def action_back(self) -> None:
        self.dismiss()

    def action_enable(self) -> None:
        self.btar_app.open_enable(self.service)

    def action_change(self) -> None:
        self.btar_app.open_change(self.service)

    def action_disable(self) -> None:
        self.btar_app.open_disable(self.service)

    def action_fork(self) -> None:
        self.btar_app.open_fork(self.service)

"""The services screen: every service with its regions, state, lag and secondary window end;
sortable, filterable; Enter opens the detail."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static
from textual.widgets.data_table import ColumnKey

from btar_tui.format import duration, state_text, when
from btar_tui.views import SyncView
from engine.api import ServiceStatus

if TYPE_CHECKING:
    from btar_tui.app import BtarApp

#: (column key, header); the order puts what an on-call person scans first on the left
COLUMNS = (("name", "SERVICE"), ("type", "TYPE"), ("state", "STATE"), ("lag", "LAG"),
           ("window", "WINDOW END"), ("additional", "ADDITIONAL"), ("primary", "PRIMARY"))
STATE_WIDTH = 24


def secondary_end(status: ServiceStatus) -> datetime | None:
    """The end of the additional region's restorable window."""
    for region in status.regions:
        if region.region == status.additional_region:
            return region.window.end
    return None


def _sort_key(column: str) -> Callable[[ServiceStatus], Any]:
    # Missing values sort last whatever the direction of the other values.
    if column == "lag":
        return lambda s: (s.current_lag_seconds is None, s.current_lag_seconds or 0.0, s.name)
    if column == "window":
        return lambda s: (secondary_end(s) is None,
                          (secondary_end(s) or datetime.min).replace(tzinfo=None), s.name)
    attribute = {"name": "name", "type": "type", "state": "state",
                 "additional": "additional_region", "primary": "primary_region"}[column]
    return lambda s: (getattr(s, attribute) or "\uffff", s.name)


def matches(status: ServiceStatus, query: str) -> bool:
    """Case-insensitive substring match on name, type, regions or state."""
    query = query.strip().lower()
    if not query:
        return True
    fields = (status.name, status.type, status.primary_region, status.additional_region or "",
              status.state)
    return any(query in field.lower() for field in fields)


#: lines of the problems banner before it says how many more there are
PROBLEM_LINES = 3


def problems_text(statuses: list[ServiceStatus]) -> Text:
    """One line per ongoing fault of a (service, region), as long as it lasts: what the
    replicator last saw, not a toast per sync."""
    lines = [(status.name, region) for status in statuses for region in status.regions
             if region.fault is not None]
    text = Text(no_wrap=True, overflow="ellipsis")
    for index, (name, region) in enumerate(lines[:PROBLEM_LINES]):
        assert region.fault is not None
        if index:
            text.append("\n")
        text.append(f"{name}: {region.region} ({region.role}) {region.fault.kind} since "
                    f"{region.fault.since:%H:%M}: {region.fault.reason}",
                    style="bold" if region.fault.unreachable else "")
    if len(lines) > PROBLEM_LINES:
        text.append(f"\n… and {len(lines) - PROBLEM_LINES} more (l: events, `btar status`)")
    return text


def row_cells(status: ServiceStatus, level: int = 0) -> tuple[str | Text, ...]:
    state = state_text(status.short_state if status.primary_fault is None else status.state,
                       STATE_WIDTH)
    if level:
        # The same conditions `btar check` reports: a mark and the alert colour.
        state = Text("!! " if level > 1 else "! ", style="bold white on red" if level > 1
                     else "bold black on yellow") + state
    return (status.name, status.type, state,
            duration(status.current_lag_seconds), when(secondary_end(status)),
            status.additional_region or "-", status.primary_region)


class ServicesScreen(Screen[None]):
    """The home screen."""

    BINDINGS = [
        Binding("slash", "focus_filter", "Filter"),
        Binding("o", "cycle_sort", "Sort"),
        Binding("e", "enable", "Enable"),
        Binding("c", "change", "Change"),
        Binding("d", "disable", "Disable"),
        Binding("f", "fork", "Fork"),
        # Not in the footer (80 columns are full): listed in the help and the palette.
        Binding("r", "replay", "Replay", show=False),
        Binding("dollar_sign", "cost", "Cost", show=False, key_display="$"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__(id="services-screen")
        self.sort_column = "name"
        self.sort_reverse = False

    @property
    def btar_app(self) -> BtarApp:
        return cast("BtarApp", self.app)

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Input(placeholder="filter by name, type, region or state  ( / )", compact=True,
                    id="filter")
        yield DataTable(id="services", cursor_type="row", zebra_stripes=True)
        yield Static("", id="problems")
        yield Static("", id="sync-line")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#services", DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        self._label_columns()
        self.btar_app.status_signal.subscribe(self, self.show_statuses)
        self.btar_app.sync_signal.subscribe(self, self.show_sync)
        self.show_statuses(self.btar_app.statuses)
        self.show_sync(self.btar_app.sync_view)
        table.focus()

    # -- rendering ---------------------------------------------------------------------------

    def visible_statuses(self, statuses: list[ServiceStatus]) -> list[ServiceStatus]:
        query = self.query_one("#filter", Input).value
        chosen = [s for s in statuses if matches(s, query)]
        return sorted(chosen, key=_sort_key(self.sort_column), reverse=self.sort_reverse)

    def cells(self, status: ServiceStatus) -> tuple[str | Text, ...]:
        return row_cells(status, self.btar_app.health.get(status.name, (0, ""))[0])

    def show_statuses(self, statuses: list[ServiceStatus]) -> None:
        banner = problems_text(statuses)
        problems = self.query_one("#problems", Static)
        problems.update(banner)
        problems.display = bool(banner.plain)
        table = self.query_one("#services", DataTable)
        rows = self.visible_statuses(statuses)
        keys = [s.name for s in rows]
        current = [str(key.value) for key in table.rows]
        if keys == current:
            # Same rows in the same order: update in place so the cursor and scroll stay.
            for status in rows:
                for (column, _), cell in zip(COLUMNS, self.cells(status), strict=True):
                    table.update_cell(status.name, column, cell, update_width=True)
            return
        highlighted = self.highlighted_service()
        table.clear()
        for status in rows:
            table.add_row(*self.cells(status), key=status.name)
        if highlighted in keys:
            table.move_cursor(row=keys.index(highlighted))

    def show_sync(self, view: SyncView) -> None:
        self.query_one("#sync-line", Static).update(view.line)

    def _label_columns(self) -> None:
        table = self.query_one("#services", DataTable)
        arrow = " ▼" if self.sort_reverse else " ▲"
        for key, label in COLUMNS:
            table.columns[ColumnKey(key)].label = Text(
                label + (arrow if key == self.sort_column else ""))
        table.refresh()

    def highlighted_service(self) -> str | None:
        table = self.query_one("#services", DataTable)
        if not table.row_count:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return str(row_key.value) if row_key.value is not None else None

    def _resort(self) -> None:
        self._label_columns()
        # Rows in another order: rebuild.
        self.query_one("#services", DataTable).clear()
        self.show_statuses(self.btar_app.statuses)

    # -- events and actions ------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.show_statuses(self.btar_app.statuses)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self.query_one("#services", DataTable).focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.btar_app.open_service(str(event.row_key.value))

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        column = str(event.column_key.value)
        if column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = column, False
        self._resort()

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        self.query_one("#filter", Input).value = ""
        self.query_one("#services", DataTable).focus()

    def action_cycle_sort(self) -> None:
        keys = [key for key, _ in COLUMNS]
        self.sort_column = keys[(keys.index(self.sort_column) + 1) % len(keys)]
        self.sort_reverse = False
        self._resort()

    def _with_service(self, action: Callable[[str], None]) -> None:
        name = self.highlighted_service()
        if name is None:
            self.notify("no service selected", severity="warning")
        else:
            action(name)

    def action_enable(self) -> None:
        self._with_service(self.btar_app.open_enable)

    def action_change(self) -> None:
        self._with_service(self.btar_app.open_change)

    def action_disable(self) -> None:
        self._with_service(self.btar_app.open_disable)

    def action_fork(self) -> None:
        self._with_service(self.btar_app.open_fork)

    def action_replay(self) -> None:
        self.btar_app.action_replay()

    def action_cost(self) -> None:
        self.btar_app.action_cost()

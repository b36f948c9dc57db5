"""The services screen: every service with its regions, state, lag and secondary window end;
sortable, filterable; Enter opens the detail."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static
from textual.widgets.data_table import ColumnKey

from btar_tui.format import STATE_STYLES, duration, state_text, when
from btar_tui.views import SyncView
from engine.api import ServiceState, ServiceStatus
from engine.model import RegionRole

if TYPE_CHECKING:
    from btar_tui.app import BtarApp

#: (column key, header); the order puts what an on-call person scans first on the left
COLUMNS = (("name", "SERVICE"), ("type", "TYPE"), ("state", "STATE"), ("lag", "LAG"),
           ("window", "WINDOW END"), ("additional", "ADDITIONAL"), ("primary", "PRIMARY"))
STATE_WIDTH = 24
#: types written shorter in the table (as wide as "mysql"); the filter and the detail use the
#: full name
SHORT_TYPES = {"postgresql": "pgsql"}
#: the columns that give up width when the table does not fit, in this order, each down to
#: its minimum before the next: the additional region (the detail shows it whole), the name,
#: the state; the others keep theirs (a type, a lag or a time cut short would mislead)
SHRINKABLE = {"additional": 12, "name": 10, "state": 14}
#: shown only when every other column fits at its full width, and then cut no further than
#: this (the detail always shows it)
OPTIONAL_COLUMNS = {"primary": 12}
#: the sort arrow beside a header
ARROW = 2


def secondary_end(status: ServiceStatus) -> datetime | None:
    """The end of the additional region's restorable window."""
    for region in status.regions:
        if region.region == status.additional_region:
            return region.window.end
    return None


def kept_regions(status: ServiceStatus) -> list[str]:
    """Regions that keep the copies of a disabled replication (rule 7)."""
    return [region.region for region in status.regions if region.role == RegionRole.RETAINED]


def kept_hint(status: ServiceStatus, shown: str) -> str:
    """A disabled service says where its copies were kept, if they were."""
    kept = kept_regions(status)
    if status.state is ServiceState.DISABLED and kept:
        return f"disabled (copies kept in {', '.join(kept)})"
    return shown


def hinted_state(status: ServiceStatus, shown: str, width: int | None = None) -> Text:
    """The state as ``shown`` coloured, with the kept copies' hint; a pause reason cut to
    ``width``."""
    hinted = kept_hint(status, shown)
    if hinted != shown:
        return Text(hinted, style=STATE_STYLES[ServiceState.DISABLED])
    return state_text(status.state, shown, width)


def _table_state(status: ServiceStatus) -> str:
    # A primary outage without since when: the table is narrow, the banner says the rest.
    return status.short_state if status.primary_fault is None else status.state.value


def state_line(status: ServiceStatus) -> str:
    """The state of the services table, as text."""
    return kept_hint(status, _table_state(status))


def _sort_value(column: str) -> Callable[[ServiceStatus], Any]:
    """The value a column sorts by; None when the service has none (shown as "-")."""
    if column == "lag":
        return lambda s: s.current_lag_seconds
    if column == "window":
        return secondary_end
    if column == "state":
        return state_line
    attribute = {"name": "name", "type": "type", "additional": "additional_region",
                 "primary": "primary_region"}[column]
    return lambda s: getattr(s, attribute)


def sort_statuses(statuses: list[ServiceStatus], column: str,
                  reverse: bool = False) -> list[ServiceStatus]:
    """Sorted by a column, then by name; services without a value come last in both
    directions."""
    value = _sort_value(column)
    present = [s for s in statuses if value(s) is not None]
    missing = sorted((s for s in statuses if value(s) is None), key=lambda s: s.name)
    return sorted(present, key=lambda s: (value(s), s.name), reverse=reverse) + missing


def matches(status: ServiceStatus, query: str) -> bool:
    """Every word of the query (case-insensitive) is part of some field: name, type (full or
    as shown), regions or state (with the kept copies' region). "aws sync" finds the AWS
    services in sync."""
    fields = [status.name, status.type, SHORT_TYPES.get(status.type, ""), status.primary_region,
              status.additional_region or "", state_line(status)]
    fields = [field.lower() for field in fields]
    return all(any(word in field for field in fields) for word in query.lower().split())


def fit_columns(natural: dict[str, int], available: int, padding: int = 1) -> dict[str, int]:
    """The columns to show (in order) and the content width of each, so that the table is
    at most ``available`` cells wide: every column at its ``natural`` width when they all
    fit; else the optional columns cut to make room; else without them, and the shrinkable
    ones cut (their cells then end with "…")."""

    def total(widths: dict[str, int]) -> int:
        return sum(width + 2 * padding for width in widths.values())

    def cut(widths: dict[str, int], order: dict[str, int]) -> dict[str, int]:
        for key, least in order.items():
            excess = total(widths) - available
            if excess > 0 and key in widths and widths[key] > least:
                widths[key] -= min(excess, widths[key] - least)
        return widths

    with_optional = cut(dict(natural), OPTIONAL_COLUMNS)
    if total(with_optional) <= available:
        return with_optional
    widths = {key: width for key, width in natural.items() if key not in OPTIONAL_COLUMNS}
    # Still too wide after this (a very narrow terminal): the table scrolls sideways.
    return cut(widths, SHRINKABLE)


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
    """One cell per column of COLUMNS; the long ones end with "…" in a narrow column."""
    state = hinted_state(status, _table_state(status), STATE_WIDTH)
    if level:
        # The same conditions `btar check` reports: a mark and the alert colour.
        state = Text("!! " if level > 1 else "! ", style="bold white on red" if level > 1
                     else "bold black on yellow") + state
    state.no_wrap, state.overflow = True, "ellipsis"
    return (_cut(status.name), SHORT_TYPES.get(status.type, status.type), state,
            duration(status.current_lag_seconds), when(secondary_end(status)),
            _cut(status.additional_region or "-"), _cut(status.primary_region))


def _cut(value: str) -> Text:
    return Text(value, no_wrap=True, overflow="ellipsis")


class ServicesScreen(Screen[None]):
    """The home screen. Its columns are fitted to the terminal's width (see fit_columns)."""

    # The footer shows what fits in 80 columns with "? Help" and "q Quit" (the app's keys
    # come last); the others are in the help (?) and the command palette (ctrl+p), which
    # offers enable, change and disable only where the engine would accept them.
    BINDINGS = [
        Binding("slash", "focus_filter", "Filter"),
        Binding("o", "cycle_sort", "Sort"),
        Binding("O", "reverse_sort", "Reverse", show=False),
        Binding("e", "enable", "Enable", show=False),
        Binding("c", "change", "Change", show=False),
        Binding("d", "disable", "Disable", show=False),
        Binding("f", "fork", "Fork", show=False),
        Binding("r", "replay", "Replay", show=False),
        Binding("dollar_sign", "cost", "Cost", show=False, key_display="$"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__(id="services-screen")
        self.sort_column = "name"
        self.sort_reverse = False
        #: the columns shown and their content widths (fit_columns)
        self.widths: dict[str, int] = {}

    @property
    def btar_app(self) -> BtarApp:
        return cast("BtarApp", self.app)

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Input(placeholder="filter: words that must all match a name, type, region or "
                    "state  ( / )", compact=True, id="filter")
        yield DataTable(id="services", cursor_type="row", zebra_stripes=True)
        yield Static("", id="problems")
        yield Static("", id="sync-line")
        yield Footer()

    def on_mount(self) -> None:
        self.btar_app.status_signal.subscribe(self, self.show_statuses)
        self.btar_app.sync_signal.subscribe(self, self.show_sync)
        self.show_statuses(self.btar_app.statuses)
        self.show_sync(self.btar_app.sync_view)
        self.query_one("#services", DataTable).focus()

    def on_resize(self) -> None:
        self.show_statuses(self.btar_app.statuses)

    # -- rendering ---------------------------------------------------------------------------

    def visible_statuses(self, statuses: list[ServiceStatus]) -> list[ServiceStatus]:
        query = self.query_one("#filter", Input).value
        chosen = [s for s in statuses if matches(s, query)]
        return sort_statuses(chosen, self.sort_column, self.sort_reverse)

    def cells(self, status: ServiceStatus) -> dict[str, str | Text]:
        """The cells of a service by column key, every column (shown or not)."""
        values = row_cells(status, self.btar_app.health.get(status.name, (0, ""))[0])
        return {key: cell for (key, _), cell in zip(COLUMNS, values, strict=True)}

    def _fit(self, statuses: list[ServiceStatus]) -> dict[str, int]:
        """Column widths for every service (not only the filtered ones: typing a filter does
        not move the columns), fitted to the screen less a vertical scrollbar."""
        table = self.query_one("#services", DataTable)
        natural = {key: len(label) + (ARROW if key == self.sort_column else 0)
                   for key, label in COLUMNS}
        for status in statuses:
            for key, cell in self.cells(status).items():
                natural[key] = max(natural[key], cell_len(cell) if isinstance(cell, str)
                                   else cell.cell_len)
        width = self.app.size.width - table.styles.scrollbar_size_vertical
        return fit_columns(natural, width, table.cell_padding)

    def show_statuses(self, statuses: list[ServiceStatus]) -> None:
        banner = problems_text(statuses)
        problems = self.query_one("#problems", Static)
        problems.update(banner)
        problems.display = bool(banner.plain)
        table = self.query_one("#services", DataTable)
        widths = self._fit(statuses)
        highlighted = self.highlighted_service()
        if widths != self.widths:
            # Other columns or widths: lay the table out again.
            table.clear(columns=True)
            for key, label in COLUMNS:
                if key in widths:
                    table.add_column(label, key=key, width=widths[key])
            self.widths = widths
            self._label_columns()
        rows = self.visible_statuses(statuses)
        keys = [s.name for s in rows]
        current = [str(key.value) for key in table.rows]
        if keys == current:
            # Same rows in the same order: update in place so the cursor and scroll stay.
            for status in rows:
                for column, cell in self.cells(status).items():
                    if column in widths:
                        table.update_cell(status.name, column, cell)
            return
        table.clear()
        for status in rows:
            cells = self.cells(status)
            table.add_row(*(cells[key] for key in widths), key=status.name)
        if highlighted in keys:
            table.move_cursor(row=keys.index(highlighted))

    def show_sync(self, view: SyncView) -> None:
        self.query_one("#sync-line", Static).update(view.line)

    def _label_columns(self) -> None:
        table = self.query_one("#services", DataTable)
        arrow = " ▼" if self.sort_reverse else " ▲"
        for key, label in COLUMNS:
            if key in self.widths:
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
        """The next column shown, ascending."""
        keys = [key for key, _ in COLUMNS if key in self.widths] or [COLUMNS[0][0]]
        after = keys.index(self.sort_column) + 1 if self.sort_column in keys else 0
        self.sort_column = keys[after % len(keys)]
        self.sort_reverse = False
        self._resort()

    def action_reverse_sort(self) -> None:
        self.sort_reverse = not self.sort_reverse
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

"""The cost of the additional regions: bytes stored and priced per month, bytes copied in a
period and their price, per service and non-primary region (as `btar cost` prints them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from btar_tui import workers
from btar_tui.messages import ActionFailed, CostLoaded
from btar_tui.views import CostData, load_cost
from engine.lag import Period
from engine.units import byte_size

if TYPE_CHECKING:
    from btar_tui.app import BtarApp

PERIODS = list(Period)
NOTE = "prices from [cost] in the configuration, else documented examples"
COLUMN_KEYS = ("service", "region", "role", "stored", "month", "copied", "copy_cost")


def money(value: float) -> str:
    """Four decimals below one unit, like `btar cost`; cents above (keeps columns narrow)."""
    return f"{value:.4f}" if value < 1 else f"{value:.2f}"


def headers(currency: str) -> tuple[str, ...]:
    """Short headers: the table must fit 80 columns (the period is in the sub-title and on
    the total line)."""
    return ("SERVICE", "REGION", "ROLE", "STORED", f"{currency}/MO", "COPIED", currency)


class CostScreen(Screen[None]):
    """engine.operations.cost_report in a table, with a period for the bytes copied."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("p", "next_period", "Period"),
        Binding("r", "reload", "Reload", show=False),  # 80 columns: the footer is full
    ]

    def __init__(self, period: Period = Period.MONTH) -> None:
        super().__init__()
        self.period = period
        self.data: CostData | None = None

    @property
    def btar_app(self) -> BtarApp:
        return cast("BtarApp", self.app)

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield DataTable(id="cost-table", cursor_type="row", zebra_stripes=True)
        yield Static("loading…", id="cost-total")
        yield Static(NOTE, id="cost-note", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self._update_sub_title()
        self.btar_app.status_signal.subscribe(self, lambda _: self.action_reload())
        self.action_reload()
        self.query_one(DataTable).focus()

    def _update_sub_title(self) -> None:
        self.sub_title = f"cost of the additional regions · copies in the last {self.period}"

    def action_reload(self) -> None:
        bridge, period = self.btar_app.bridge, self.period
        workers.start(self, "cost", lambda: self.post_message(
            CostLoaded(bridge.call(lambda b: load_cost(b, period)))), exclusive=True)

    def action_next_period(self) -> None:
        self.period = PERIODS[(PERIODS.index(self.period) + 1) % len(PERIODS)]
        self._update_sub_title()
        self.action_reload()

    def on_cost_loaded(self, message: CostLoaded) -> None:
        data = message.data
        if data.period != self.period:
            return  # a reload for the previous period finished late
        self.data = data
        table = self.query_one(DataTable)
        table.clear(columns=True)
        for key, label in zip(COLUMN_KEYS, headers(data.currency), strict=True):
            table.add_column(label, key=key)
        for line in data.lines:
            table.add_row(line.service, line.region, line.role, byte_size(line.bytes_stored),
                          money(line.storage_cost_month), byte_size(line.bytes_copied),
                          money(line.copy_cost), key=f"{line.service}/{line.region}")
        total = self.query_one("#cost-total", Static)
        if not data.lines:
            total.update("no additional region: nothing is stored or copied outside the "
                         "primaries")
        else:
            total.update(f"total: {money(data.storage_total)} {data.currency}/month stored"
                         f" · {money(data.copy_total)} {data.currency} copied in the last "
                         f"{data.period}")

    def on_action_failed(self, message: ActionFailed) -> None:
        self.notify(message.message, title=message.action, severity="error")

    def action_back(self) -> None:
        self.dismiss()

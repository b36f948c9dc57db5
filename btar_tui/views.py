"""What the screens show, gathered from engine.api in a worker thread.

The engine's catalog rows are turned into small frozen values here so that widgets never
touch engine objects that are bound to the catalog, and messages carry plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from engine.api import Branch, Btar, LagReport, ServiceStatus
from engine.errors import BtarError
from engine.lag import Period
from engine.model import REPLICABLE_TYPES, RegionRole, RestoreWindow
from engine.operations import check, cost_report


@dataclass(frozen=True)
class ItemCell:
    """One backup item in one region."""

    status: str
    reason: str = ""
    lag_seconds: float | None = None


@dataclass(frozen=True)
class ItemLine:
    """One backup item (base backup, log segment, history) across the service's regions."""

    item_id: str
    kind: str
    end_time: datetime
    size: int
    cells: dict[str, ItemCell]


@dataclass(frozen=True)
class EventView:
    at: datetime
    level: str
    service: str
    region: str
    message: str


@dataclass(frozen=True)
class DetailData:
    """Everything the service detail screen shows, read in one locked call."""

    name: str
    status: ServiceStatus | None
    #: (region, role) in the engine's order: primary, secondary, previous, retained
    regions: list[tuple[str, str]]
    items: list[ItemLine]
    windows: list[RestoreWindow]
    lag: LagReport | None
    lag_note: str
    events: list[EventView] = field(default_factory=list)
    #: per region, every timeline branch it holds (engine.timelines)
    branches: dict[str, list[Branch]] = field(default_factory=dict)


@dataclass(frozen=True)
class CostLine:
    """What one non-primary region of one service stores and copied, priced."""

    service: str
    region: str
    role: str
    bytes_stored: int
    storage_cost_month: float
    bytes_copied: int
    copy_cost: float


@dataclass(frozen=True)
class CostData:
    """The cost report of every additional region for one period of copies."""

    period: Period
    currency: str
    lines: list[CostLine]

    @property
    def storage_total(self) -> float:
        return sum(line.storage_cost_month for line in self.lines)

    @property
    def copy_total(self) -> float:
        return sum(line.copy_cost for line in self.lines)


def load_cost(btar: Btar, period: Period) -> CostData:
    """Price every non-primary region (engine.operations.cost_report); call under the lock."""
    lines = [CostLine(r.service, r.region, r.role, r.bytes_stored, r.storage_cost_month,
                      r.bytes_transferred, r.transfer_cost)
             for r in cost_report(btar, btar.prices, period, btar.driver.now())]
    return CostData(period, btar.prices.currency, lines)


def read_status(btar: Btar) -> tuple[list[ServiceStatus], dict[str, tuple[int, str]]]:
    """Every service's status and its worst `btar check` problem (call under the lock)."""
    statuses = btar.status()
    health: dict[str, tuple[int, str]] = {}
    for problem in check(btar, btar.alerts, btar.driver.now(), statuses):
        if problem.service not in health:  # worst first
            health[problem.service] = (int(problem.level), problem.message)
    return statuses, health


def load_events(btar: Btar, limit: int, service: str | None = None) -> list[EventView]:
    """Newest first."""
    rows = btar.events(limit, service)
    return [EventView(e.at, e.level, e.service, e.region, e.message) for e in reversed(rows)]


def load_detail(btar: Btar, name: str, period: Period) -> DetailData:
    """Read a service's detail; call with the bridge's lock held (in a worker)."""
    status = next((s for s in btar.status() if s.name == name), None)
    views = btar.timeline_views(name)
    windows = [view.window for view in views]
    regions = [(w.region, str(w.role)) for w in windows]
    lines: dict[str, dict[str, ItemCell]] = {}
    meta: dict[str, tuple[str, datetime, int]] = {}
    rows = btar.backups(name)
    for row in rows:
        lines.setdefault(row.item_id, {})[row.region] = ItemCell(
            str(row.status), row.reason, row.lag_seconds)
        if row.item_id not in meta or row.region == (status.primary_region if status else ""):
            meta[row.item_id] = (str(row.kind), row.end_time, row.size)
    items = [ItemLine(item_id, meta[item_id][0], meta[item_id][1], meta[item_id][2], cells)
             for item_id, cells in lines.items()]
    # Newest first: what is still pending in the secondary is at the top.
    items.sort(key=lambda line: (line.end_time, line.kind == "base", line.item_id), reverse=True)
    lag: LagReport | None = None
    note = ""
    lag_region = _lag_region(status, windows)
    if status is not None and status.type not in REPLICABLE_TYPES:
        note = f"{name} is a {status.type} service: it has no additional region (rule 1)"
    elif lag_region is None:
        note = "no additional region: nothing is replicated, so there is no lag to show"
    else:
        try:
            lag = btar.lag(name, period, lag_region)
        except BtarError as error:
            note = str(error)
    return DetailData(name, status, regions, items, windows, lag, note,
                      load_events(btar, 30, name),
                      {view.window.region: list(view.branches) for view in views})


def _lag_region(status: ServiceStatus | None, windows: list[RestoreWindow]) -> str | None:
    """The additional region, else the most recent former one (its lag is history)."""
    if status is not None and status.additional_region:
        return status.additional_region
    others = [w.region for w in windows if w.role != RegionRole.PRIMARY]
    return others[0] if others else None


@dataclass(frozen=True)
class SyncView:
    """Where replication stands, for the status lines and progress bars."""

    running: bool = False
    service: str = ""
    done: int = 0
    total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    line: str = "not synced in this session: s syncs now, a turns auto-sync on"

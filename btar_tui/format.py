"""How values are written on screen: durations, times (UTC), sizes, states."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text

from engine.api import ServiceState
from engine.model import iso

STATE_STYLES = {
    ServiceState.IN_SYNC: "green",
    ServiceState.COPYING: "cyan",
    ServiceState.LAGGING: "yellow",
    ServiceState.WAITING: "yellow",
    ServiceState.DISABLED: "dim",
    ServiceState.UNSUPPORTED: "dim",
    ServiceState.PRIMARY_UNREACHABLE: "bold white on red",
    ServiceState.PRIMARY_FAILING: "bold red",
    ServiceState.PAUSED: "bold magenta",
    ServiceState.FAILING: "bold yellow",
}
ITEM_STYLES = {
    "available": "green",
    "pending": "yellow",
    "copying": "cyan",
    "failed": "bold red",
    "paused": "magenta",
    "retained": "blue",
}


def duration(seconds: float | None) -> str:
    """A short human duration, the same steps as the CLI uses."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s" if seconds else "0s"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def when(moment: datetime | None) -> str:
    """Month-day and time in UTC: compact enough for a table cell."""
    return moment.strftime("%m-%d %H:%M:%S") if moment else "-"


def when_iso(moment: datetime | None) -> str:
    """Full ISO 8601 UTC without microseconds (what a user would type back)."""
    return iso(moment.replace(microsecond=0)) if moment else "-"


def state_text(state: ServiceState, shown: str, width: int | None = None) -> Text:
    """A service state as ``shown`` (with its reason, or since when), coloured by the state;
    cut to ``width``."""
    if width is not None and len(shown) > width:
        shown = shown[: width - 1] + "…"
    return Text(shown, style=STATE_STYLES[state])


def item_status_text(status: str | None) -> Text:
    if status is None:
        return Text("·", style="dim")
    return Text(status, style=ITEM_STYLES.get(status, ""))

"""How values are written on screen: durations, times (UTC), sizes, states."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text

from engine.model import iso

STATE_STYLES = {
    "in sync": "green",
    "copying": "cyan",
    "lagging": "yellow",
    "waiting for first sync": "yellow",
    "disabled": "dim",
    "unsupported": "dim",
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


def size(count: int) -> str:
    """Bytes with a binary unit."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"  # pragma: no cover - the loop always returns


#: states that carry a reason or a time after their first word(s)
STATE_PREFIX_STYLES = {
    "primary unreachable": "bold white on red",
    "primary failing": "bold red",
    "paused": "bold magenta",
    "failing": "bold yellow",
}


def state_text(state: str, width: int | None = None) -> Text:
    """A service state, coloured; a pause keeps its reason (truncated to ``width``)."""
    style = STATE_STYLES.get(state) or next(
        (style for prefix, style in STATE_PREFIX_STYLES.items() if state.startswith(prefix)), "")
    if width is not None and len(state) > width:
        state = state[: width - 1] + "…"
    return Text(state, style=style)


def item_status_text(status: str | None) -> Text:
    if status is None:
        return Text("·", style="dim")
    return Text(status, style=ITEM_STYLES.get(status, ""))

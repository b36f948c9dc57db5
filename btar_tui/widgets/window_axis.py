"""The restorable window of each region drawn as text bars over one common time axis, with
a line under a region for each timeline branch it holds that recovery does not follow by
default (restorable with ``btar fork --timeline N``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from rich.text import Text
from textual.widget import Widget

from engine.api import Branch
from engine.model import RestoreWindow, TimeRange

ROLE_STYLES = {"primary": "green", "secondary": "cyan", "previous": "yellow",
               "retained": "blue"}
COVERED = "█"
GAP = "·"


def _column(moment: datetime, low: datetime, high: datetime, width: int) -> int:
    span = (high - low).total_seconds()
    if span <= 0:
        return width - 1
    return round((moment - low).total_seconds() / span * (width - 1))


def bar_cells(window: RestoreWindow, low: datetime, high: datetime, width: int) -> str:
    """One region's bar: covered columns and gaps. A gap always keeps at least one column,
    however short it is, because a gap in protection is what the reader must not miss."""
    cells = [GAP] * width
    spans: list[list[int]] = []
    for interval in window.intervals:
        start = _column(interval.start, low, high, width)
        end = max(start, _column(interval.end, low, high, width))
        if spans and start <= spans[-1][1] + 1:
            # Too close to draw at this resolution: shorten the earlier span to show the gap.
            spans[-1][1] = max(spans[-1][0], start - 2)
            if start <= spans[-1][1] + 1:
                start = min(width - 1, spans[-1][1] + 2)
                end = max(start, end)
        spans.append([start, end])
    for start, end in spans:
        for column in range(start, min(end, width - 1) + 1):
            cells[column] = COVERED
    return "".join(cells)


def branch_label(branch: Branch) -> str:
    """``  timeline 1, left 12:05`` (when the followed timeline branched off it)."""
    left = f", left {branch.switch_at:%H:%M:%S}" if branch.switch_at is not None else ""
    return f"  timeline {branch.timeline}{left}"


def render_windows(windows: list[RestoreWindow], width: int,
                   branches: Mapping[str, Sequence[Branch]] | None = None) -> Text:
    """Every region on its own line, each branch it holds that recovery does not follow by
    default under it, then the axis with the range's first and last time."""
    others = {region: [b for b in found if not b.followed and b.intervals]
              for region, found in (branches or {}).items()}
    label_width = max([len(w.region) + len(str(w.role)) + 2 for w in windows]
                      + [len(branch_label(b)) + 1 for found in others.values() for b in found]
                      + [18])
    bar_width = max(10, width - label_width - 1)
    drawn = [*windows, *(along(w, b) for w in windows for b in others.get(w.region, []))]
    starts = [w.start for w in drawn if w.start is not None]
    ends = [w.end for w in drawn if w.end is not None]
    text = Text(no_wrap=True, overflow="crop")
    if not windows:
        return text.append("no region holds backups of this service yet", style="dim")
    for index, window in enumerate(windows):
        if index:
            text.append("\n")
        role = str(window.role)
        label = f"{window.region} {role}".ljust(label_width)
        text.append(window.region, style="bold")
        text.append(label[len(window.region):], style=ROLE_STYLES.get(role, ""))
        text.append(" ")
        if not window.intervals or not starts:
            text.append("no restorable point".ljust(bar_width)[:bar_width], style="dim italic")
        else:
            _bar(text, window, min(starts), max(ends), bar_width, ROLE_STYLES.get(role, ""))
        for branch in others.get(window.region, []):
            text.append("\n" + branch_label(branch).ljust(label_width + 1), style="dim")
            _bar(text, along(window, branch), min(starts), max(ends), bar_width,
                 f"dim {ROLE_STYLES.get(role, '')}".strip())
    text.append("\n")
    title = "restorable window, UTC"
    text.append(title.ljust(label_width + 1)[: label_width + 1], style="dim italic")
    if starts:
        left = min(starts).strftime("%m-%d %H:%M:%S")
        right = max(ends).strftime("%m-%d %H:%M:%S")
        gap = max(1, bar_width - len(left) - len(right))
        text.append(f"{left}{' ' * gap}{right}"[:bar_width], style="dim")
    return text


def along(window: RestoreWindow, branch: Branch) -> RestoreWindow:
    """The window of ``window``'s region along ``branch``."""
    return RestoreWindow(window.region, window.role,
                         tuple(TimeRange(r.start, r.end) for r in branch.intervals))


def _bar(text: Text, window: RestoreWindow, low: datetime, high: datetime, width: int,
         style: str) -> None:
    for char in bar_cells(window, low, high, width):
        text.append(char, style=style if char == COVERED else "dim")


class WindowAxis(Widget):
    """Shows :func:`render_windows` for the windows given to :meth:`show`."""

    DEFAULT_CSS = """
    WindowAxis {
        height: auto;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._windows: list[RestoreWindow] = []
        self._branches: dict[str, list[Branch]] = {}

    @property
    def windows(self) -> list[RestoreWindow]:
        return list(self._windows)

    def show(self, windows: list[RestoreWindow],
             branches: Mapping[str, Sequence[Branch]] | None = None) -> None:
        self._windows = list(windows)
        self._branches = {region: list(found) for region, found in (branches or {}).items()}
        self.refresh(layout=True)

    def render(self) -> Text:
        return render_windows(self._windows, self.size.width or 80, self._branches)

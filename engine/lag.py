"""Replication lag: per-item samples summarised over a period, and the lag over time.

Two measures, one vocabulary:

* the lag of an item is how long it took to be published in the destination after it was
  complete in the primary (``available_at - completed_at``), known once it is published;
* the pending lag at a moment is how far the destination was behind then: the age of the
  oldest item complete by then and not yet published (``Btar.current_lag`` is the pending lag
  now). During an outage nothing is published, so only the pending lag shows it: it rises.

Percentiles are nearest-rank (:func:`percentile`), the one definition used by ``btar lag``,
the TUI's lag chart and (a copy of the same formula) the simulator's lag expectations.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from engine.model import UNFINISHED


class Period(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


#: (length of the period, width of one bucket in the report)
PERIODS: dict[Period, tuple[timedelta, timedelta]] = {
    Period.HOUR: (timedelta(hours=1), timedelta(minutes=5)),
    Period.DAY: (timedelta(days=1), timedelta(hours=1)),
    Period.WEEK: (timedelta(weeks=1), timedelta(days=1)),
    Period.MONTH: (timedelta(days=30), timedelta(days=1)),
    Period.YEAR: (timedelta(days=365), timedelta(days=30)),
}


@dataclass(frozen=True)
class LagStats:
    count: int
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None
    mean: float | None


@dataclass(frozen=True)
class LagBucket:
    start: datetime
    stats: LagStats


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values: the smallest value such that at
    least ``fraction`` of the values are at most it, i.e. the value of rank
    ``ceil(fraction * n)`` (1-based, at least 1). No interpolation: every percentile is a lag
    some item really had.

    This is btar's one definition of a percentile: ``btar lag`` (through :func:`summarize`),
    the TUI's lag chart and statistics, and the simulator's lag expectations (which keep a
    copy of this formula, simulator/expectations.py ``_percentile``; a unit test holds them
    equal) all use it. Two figures differ only if their sets of items differ."""
    # Rounded first: 0.07 * 100 is 7.000000000000001 in floating point, which is rank 7.
    rank = max(1, math.ceil(round(fraction * len(sorted_values), 9)))
    return sorted_values[rank - 1]


def summarize(values: Sequence[float]) -> LagStats:
    if not values:
        return LagStats(0, None, None, None, None, None)
    ordered = sorted(values)
    return LagStats(len(ordered), percentile(ordered, 0.50), percentile(ordered, 0.95),
                    percentile(ordered, 0.99), ordered[-1], sum(ordered) / len(ordered))


def bucketize(samples: Sequence[tuple[datetime, float]], period: Period,
              end: datetime) -> tuple[datetime, tuple[LagBucket, ...]]:
    """Split the samples of ``period`` ending at ``end`` into buckets (oldest first)."""
    length, width = PERIODS[period]
    start = end - length
    count = math.ceil(length / width)
    grouped: list[list[float]] = [[] for _ in range(count)]
    for at, lag in samples:
        if start <= at <= end:
            grouped[min(count - 1, int((at - start) / width))].append(lag)
    return start, tuple(LagBucket(start + i * width, summarize(g)) for i, g in enumerate(grouped))


# --- the lag over time ------------------------------------------------------------------------


@dataclass(frozen=True)
class LagItem:
    """One item on its way to a destination: when it was complete in the primary and when it
    was published in the destination (None: not yet)."""

    completed_at: datetime
    available_at: datetime | None

    @property
    def lag_seconds(self) -> float | None:
        """The item's lag once it is published."""
        if self.available_at is None:
            return None
        return max(0.0, (self.available_at - self.completed_at).total_seconds())

    def waiting_at(self, moment: datetime) -> bool:
        """Complete in the primary by ``moment`` and not yet published then."""
        return self.completed_at <= moment and (self.available_at is None
                                                or self.available_at > moment)


class ItemLike(Protocol):
    """What :func:`lag_items` reads of a catalog item row (engine.catalog.ItemRow)."""

    @property
    def status(self) -> str: ...

    @property
    def completed_at(self) -> datetime: ...

    @property
    def available_at(self) -> datetime | None: ...


def lag_items(rows: Iterable[ItemLike]) -> list[LagItem]:
    """The items of one destination that count for its lag, from its item rows: the published
    ones and those still waiting (pending, copying, failed, paused: what ``current_lag``
    counts). An item withdrawn (retention) before it was published never counts; one waiting
    again (a copy found damaged) waits since it was complete, as ``current_lag`` says."""
    found: list[LagItem] = []
    for row in rows:
        if row.status in UNFINISHED:
            found.append(LagItem(row.completed_at, None))
        elif row.available_at is not None:
            found.append(LagItem(row.completed_at, row.available_at))
    return found


def pending_lag(items: Iterable[LagItem], moment: datetime) -> float | None:
    """How far the destination was behind at ``moment``: the age then of the oldest item
    complete by then and not yet published; 0.0 if none waited, None if no item was complete
    yet (``Btar.current_lag`` is ``pending_lag(items, now)``)."""
    complete = [item for item in items if item.completed_at <= moment]
    waiting = [item.completed_at for item in complete if item.waiting_at(moment)]
    if waiting:
        return max(0.0, (moment - min(waiting)).total_seconds())
    return 0.0 if complete else None


@dataclass(frozen=True)
class LagPoint:
    """One bucket of the lag over time."""

    start: datetime
    end: datetime
    #: the lags of the items published in the bucket (from start, before end; the last
    #: bucket includes its end)
    published: LagStats
    #: the pending lag at the end of the bucket (see :func:`pending_lag`)
    pending: float | None


@dataclass(frozen=True)
class LagSeries:
    """The lag of one destination over time, oldest bucket first; the last bucket ends at
    ``end`` (now), so its pending lag is the current lag."""

    start: datetime
    end: datetime
    points: tuple[LagPoint, ...]

    @property
    def peak(self) -> float:
        """The largest lag shown: published (max) or pending."""
        return max((v for p in self.points for v in (p.published.max, p.pending)
                    if v is not None), default=0.0)


def lag_series(items: Iterable[LagItem], start: datetime, end: datetime,
               buckets: int) -> LagSeries:
    """Split ``start``..``end`` into ``buckets`` equal buckets: per bucket, the lags of the
    items published in it and the pending lag at its end. One pass over the items sorted by
    completion (a heap of those still waiting), not one per bucket."""
    if buckets < 1:
        raise ValueError("a lag series needs at least one bucket")
    if end <= start:
        raise ValueError("a lag series needs an end after its start")
    width = (end - start) / buckets
    starts = [start + i * width for i in range(buckets)]
    ends = [*starts[1:], end]
    published: list[list[float]] = [[] for _ in range(buckets)]
    ordered = sorted(items, key=lambda item: item.completed_at)
    for item in ordered:
        if item.available_at is not None and start <= item.available_at <= end:
            index = min(buckets - 1, int((item.available_at - start) / width))
            published[index].append(item.lag_seconds or 0.0)
    # (completed_at, position, available_at): the oldest waiting item is on top; an item
    # published by a bucket's end leaves the heap once it reaches the top (lazily).
    waiting: list[tuple[datetime, int, datetime | None]] = []
    added = 0
    points: list[LagPoint] = []
    for index, moment in enumerate(ends):
        while added < len(ordered) and ordered[added].completed_at <= moment:
            item = ordered[added]
            heapq.heappush(waiting, (item.completed_at, added, item.available_at))
            added += 1
        while waiting and waiting[0][2] is not None and waiting[0][2] <= moment:
            heapq.heappop(waiting)
        pending = max(0.0, (moment - waiting[0][0]).total_seconds()) if waiting \
            else (0.0 if added else None)
        points.append(LagPoint(starts[index], moment, summarize(published[index]), pending))
    return LagSeries(start, end, tuple(points))


#: the shortest span :func:`fit_range` returns: a lag of seconds still has room to show
MINIMUM_SPAN = timedelta(minutes=1)


def fit_range(items: Iterable[LagItem], start: datetime, end: datetime,
              minimum: timedelta = MINIMUM_SPAN) -> tuple[datetime, datetime] | None:
    """The part of ``start``..``end`` with something to show: from the first moment an item
    waited or was published in it, to ``end`` (at least ``minimum`` long, never before
    ``start``). None if no item waited or was published in it."""
    first: datetime | None = None
    for item in items:
        if item.completed_at > end or (item.available_at is not None
                                       and item.available_at < start):
            continue
        began = max(start, item.completed_at)
        first = began if first is None else min(first, began)
    if first is None:
        return None
    return max(start, min(first, end - minimum)), end

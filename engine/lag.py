"""Replication lag: per-item samples summarised over a period, and the current lag."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


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
    """Nearest-rank percentile of already sorted values."""
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

"""Replication lag: nearest-rank percentiles, summaries and per-period buckets (rule 4), the
pending lag and the lag over time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from engine.lag import (
    PERIODS,
    LagBucket,
    LagItem,
    LagStats,
    Period,
    bucketize,
    fit_range,
    lag_items,
    lag_series,
    pending_lag,
    percentile,
    summarize,
)

END = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ONE_TO_100 = [float(v) for v in range(1, 101)]
ONE_TO_20 = [float(v) for v in range(1, 21)]


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        ([5.0], 0.0, 5.0),
        ([5.0], 0.5, 5.0),
        ([5.0], 1.0, 5.0),
        ([1.0, 2.0], 0.5, 1.0),
        ([1.0, 2.0], 0.51, 2.0),
        ([1.0, 2.0, 3.0, 4.0], 0.5, 2.0),
        ([1.0, 2.0, 3.0, 4.0], 0.75, 3.0),
        ([1.0, 2.0, 3.0, 4.0], 0.76, 4.0),
        ([15.0, 20.0, 35.0, 40.0, 50.0], 0.05, 15.0),
        ([15.0, 20.0, 35.0, 40.0, 50.0], 0.30, 20.0),
        ([15.0, 20.0, 35.0, 40.0, 50.0], 0.40, 20.0),
        ([15.0, 20.0, 35.0, 40.0, 50.0], 0.50, 35.0),
        ([15.0, 20.0, 35.0, 40.0, 50.0], 1.00, 50.0),
        (ONE_TO_100, 0.50, 50.0),
        (ONE_TO_100, 0.95, 95.0),
        (ONE_TO_100, 0.99, 99.0),
        (ONE_TO_100, 0.01, 1.0),
        (ONE_TO_100, 0.0, 1.0),
        (ONE_TO_20, 0.95, 19.0),
        (ONE_TO_20, 0.99, 20.0),
        ([0.0, 0.0, 0.0, 100.0], 0.95, 100.0),
        ([0.0, 0.0, 0.0, 100.0], 0.75, 0.0),
    ],
    ids=["single-p0", "single-p50", "single-p100", "two-p50", "two-p51", "four-p50",
         "four-p75", "four-p76", "wiki-p5", "wiki-p30", "wiki-p40", "wiki-p50", "wiki-p100",
         "hundred-p50", "hundred-p95", "hundred-p99", "hundred-p1", "hundred-p0",
         "twenty-p95", "twenty-p99", "outlier-p95", "outlier-p75"],
)
def test_percentile_nearest_rank(values: list[float], fraction: float, expected: float) -> None:
    assert percentile(values, fraction) == expected


@pytest.mark.parametrize(("fraction", "expected"), [(0.07, 7.0), (0.14, 14.0), (0.55, 55.0)],
                         ids=["p7", "p14", "p55"])
def test_percentile_exact_rank_is_not_rounded_up(fraction: float, expected: float) -> None:
    assert percentile(ONE_TO_100, fraction) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], LagStats(0, None, None, None, None, None)),
        ([4.0], LagStats(1, 4.0, 4.0, 4.0, 4.0, 4.0)),
        ([3.0, 1.0, 2.0], LagStats(3, 2.0, 3.0, 3.0, 3.0, 2.0)),
        (list(reversed(ONE_TO_100)), LagStats(100, 50.0, 95.0, 99.0, 100.0, 50.5)),
        ([0.0] * 99 + [600.0], LagStats(100, 0.0, 0.0, 0.0, 600.0, 6.0)),
    ],
    ids=["empty", "one", "unsorted-three", "hundred-reversed", "one-spike"],
)
def test_summarize(values: list[float], expected: LagStats) -> None:
    before = list(values)
    assert summarize(values) == expected
    assert values == before  # the input is not sorted in place


# --- bucketize --------------------------------------------------------------------------------

BUCKETS = {Period.HOUR: 12, Period.DAY: 24, Period.WEEK: 7, Period.MONTH: 30, Period.YEAR: 13}


@pytest.mark.parametrize("period", list(Period), ids=str)
def test_bucketize_layout(period: Period) -> None:
    length, width = PERIODS[period]
    start, buckets = bucketize([], period, END)
    assert start == END - length
    assert len(buckets) == BUCKETS[period]
    assert [b.start for b in buckets] == [start + i * width for i in range(len(buckets))]
    assert all(b.stats == summarize([]) for b in buckets)


def _case(period: Period, offsets: list[tuple[timedelta, float]],
          expected: dict[int, list[float]]) -> tuple[Period, list[tuple[datetime, float]],
                                                     dict[int, list[float]]]:
    """Samples at ``period start + offset``; ``expected`` maps bucket index -> lags."""
    start = END - PERIODS[period][0]
    return period, [(start + off, lag) for off, lag in offsets], expected


H, D, M, S = (timedelta(hours=1), timedelta(days=1), timedelta(minutes=1),
              timedelta(seconds=1))
EPS = timedelta(microseconds=1)

BUCKET_CASES = {
    "hour-first-and-last": _case(Period.HOUR, [(M, 1.0), (55 * M, 2.0)], {0: [1.0], 11: [2.0]}),
    "hour-at-start-is-first": _case(Period.HOUR, [(0 * M, 3.0)], {0: [3.0]}),
    "hour-at-end-is-last": _case(Period.HOUR, [(H, 4.0)], {11: [4.0]}),
    "hour-bucket-edge": _case(Period.HOUR, [(5 * M - EPS, 1.0), (5 * M, 2.0)],
                              {0: [1.0], 1: [2.0]}),
    "hour-before-start-ignored": _case(Period.HOUR, [(-EPS, 9.0), (-H, 9.0), (M, 1.0)],
                                       {0: [1.0]}),
    "hour-after-end-ignored": _case(Period.HOUR, [(H + EPS, 9.0), (2 * H, 9.0)], {}),
    "hour-many-in-one-bucket": _case(Period.HOUR, [(10 * M + i * S, float(i))
                                                   for i in range(1, 11)],
                                     {2: [float(i) for i in range(1, 11)]}),
    "day-hours": _case(Period.DAY, [(30 * M, 1.0), (H + 30 * M, 2.0), (23 * H + 59 * M, 3.0)],
                       {0: [1.0], 1: [2.0], 23: [3.0]}),
    "day-outside-ignored": _case(Period.DAY, [(-S, 9.0), (D + S, 9.0), (12 * H, 5.0)],
                                 {12: [5.0]}),
    "week-days": _case(Period.WEEK, [(H, 1.0), (3 * D + H, 2.0), (7 * D, 3.0)],
                       {0: [1.0], 3: [2.0], 6: [3.0]}),
    "week-outside-ignored": _case(Period.WEEK, [(-D, 9.0), (8 * D, 9.0)], {}),
    "month-days": _case(Period.MONTH, [(0 * D, 1.0), (15 * D + H, 2.0), (30 * D, 3.0)],
                        {0: [1.0], 15: [2.0], 29: [3.0]}),
    "month-outside-ignored": _case(Period.MONTH, [(-S, 9.0), (31 * D, 9.0)], {}),
    "year-months": _case(Period.YEAR, [(D, 1.0), (45 * D, 2.0), (359 * D, 3.0), (360 * D, 4.0),
                                       (365 * D, 5.0)],
                         {0: [1.0], 1: [2.0], 11: [3.0], 12: [4.0, 5.0]}),
    "year-outside-ignored": _case(Period.YEAR, [(-D, 9.0), (366 * D, 9.0)], {}),
}


@pytest.mark.parametrize(("period", "samples", "expected"), BUCKET_CASES.values(),
                         ids=BUCKET_CASES.keys())
def test_bucketize(period: Period, samples: list[tuple[datetime, float]],
                   expected: dict[int, list[float]]) -> None:
    start, buckets = bucketize(samples, period, END)
    assert start == END - PERIODS[period][0]
    assert len(buckets) == BUCKETS[period]
    for index, bucket in enumerate(buckets):
        assert isinstance(bucket, LagBucket)
        assert bucket.stats == summarize(expected.get(index, [])), index
    counted = sum(b.stats.count for b in buckets)
    assert counted == sum(len(v) for v in expected.values())
    # the order of the samples does not matter
    assert bucketize(list(reversed(samples)), period, END) == (start, buckets)


# --- one percentile definition ----------------------------------------------------------------


def test_the_simulator_percentile_is_the_engine_percentile() -> None:
    """The simulator's lag expectations keep a copy of the formula (simulator/ is not the
    engine's to import from); it must stay the same definition as engine.lag.percentile."""
    import random

    from simulator.expectations import _percentile

    rng = random.Random(20)
    fractions = [0.0, 0.01, 0.07, 0.14, 0.5, 0.55, 0.9, 0.95, 0.99, 0.999, 1.0]
    for _ in range(300):
        values = sorted(rng.choice([1.0, 60.0, 202.0, 21600.0]) * rng.random()
                        for _ in range(rng.randint(1, 120)))
        for fraction in fractions:
            assert _percentile(values, fraction) == percentile(values, fraction)


# --- pending lag and the lag over time --------------------------------------------------------

T0 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Row:
    """The fields of an engine.catalog.ItemRow that lag_items reads."""

    status: str
    completed_at: datetime
    available_at: datetime | None


def test_lag_item_lag_and_waiting() -> None:
    item = LagItem(T0, T0 + 90 * S)
    assert item.lag_seconds == 90.0
    assert not item.waiting_at(T0 - S)  # not complete yet
    assert item.waiting_at(T0)
    assert item.waiting_at(T0 + 89 * S)
    assert not item.waiting_at(T0 + 90 * S)  # published at that moment
    waiting = LagItem(T0, None)
    assert waiting.lag_seconds is None
    assert waiting.waiting_at(T0 + 365 * D)


def test_lag_items_keep_published_and_waiting_items_only() -> None:
    rows = [Row("available", T0, T0 + M), Row("pending", T0 + M, None),
            Row("copying", T0 + 2 * M, None), Row("failed", T0 + 3 * M, None),
            Row("paused", T0 + 4 * M, None), Row("retained", T0 + 5 * M, T0 + 6 * M),
            Row("deleting", T0 + 7 * M, None),  # withdrawn before it was published
            Row("pending", T0 + 8 * M, T0 + 9 * M)]  # damaged copy: waiting again
    assert lag_items(rows) == [
        LagItem(T0, T0 + M), LagItem(T0 + M, None), LagItem(T0 + 2 * M, None),
        LagItem(T0 + 3 * M, None), LagItem(T0 + 4 * M, None),
        LagItem(T0 + 5 * M, T0 + 6 * M), LagItem(T0 + 8 * M, None)]


def test_pending_lag_is_the_age_of_the_oldest_item_waiting() -> None:
    items = [LagItem(T0, T0 + M), LagItem(T0 + 10 * M, None), LagItem(T0 + 20 * M, T0 + H)]
    assert pending_lag([], T0) is None
    assert pending_lag(items, T0 - S) is None  # nothing complete yet
    assert pending_lag(items, T0) == 0.0
    assert pending_lag(items, T0 + 30 * S) == 30.0
    assert pending_lag(items, T0 + M) == 0.0  # published
    assert pending_lag(items, T0 + 15 * M) == 300.0
    assert pending_lag(items, T0 + 2 * H) == 110 * 60.0  # the one never published


def outage(step: timedelta = 10 * M, count: int = 36, down: tuple[int, int] = (12, 24),
           copy_time: timedelta = M) -> list[LagItem]:
    """An item every ``step``; each is published ``copy_time`` after it completed, except
    while the destination is down (items ``down[0]`` to ``down[1] - 1``): those are all
    published ``copy_time`` after it is back, when item ``down[1]`` completes."""
    back = T0 + down[1] * step
    items = []
    for i in range(count):
        done = T0 + i * step
        items.append(LagItem(done, back + copy_time if down[0] <= i < down[1]
                             else done + copy_time))
    return items


def test_an_outage_is_a_rising_pending_lag_then_a_catch_up() -> None:
    items = outage()  # 6 h of items; down from 2 h to 4 h
    series = lag_series(items, T0, T0 + 6 * H, 36)  # one bucket per item: 10 minutes
    assert len(series.points) == 36
    assert [p.start for p in series.points] == [T0 + i * 10 * M for i in range(36)]
    assert series.points[-1].end == T0 + 6 * H
    pending = [p.pending for p in series.points]
    # Before: each item is published a minute after it completed, the bucket ends later.
    assert pending[:12] == [0.0] * 12  # (the bucket ending at 2 h: that item is 0 s old)
    # During: the oldest item waiting (the one of 2 h) gets older at every bucket end.
    assert pending[12:24] == [float(600 * k) for k in range(1, 13)]
    assert pending[24:] == [0.0] * 12
    published = [p.published for p in series.points]
    assert all(published[i].count == 1 and published[i].max == 60.0 for i in range(12))
    assert all(published[i].count == 0 for i in range(12, 24))
    # The catch-up: all 12 items at once, 2 h 1 min down to 11 min late.
    catch_up = published[24]
    assert catch_up.count == 13
    assert catch_up.max == 2 * 3600.0 + 60.0
    assert catch_up == summarize([600.0 * k + 60.0 for k in range(1, 13)] + [60.0])
    assert series.peak == 2 * 3600.0 + 60.0


def test_during_an_outage_the_last_point_is_the_current_lag() -> None:
    items = [LagItem(T0 + i * 10 * M, None if i >= 3 else T0 + i * 10 * M + M)
             for i in range(10)]
    now = T0 + 95 * M
    series = lag_series(items, T0, now, 7)
    assert series.points[-1].pending == pending_lag(items, now) == 65 * 60.0
    values = [p.pending or 0.0 for p in series.points]
    assert values == sorted(values)
    assert values[-1] > values[0]
    assert sum(p.published.count for p in series.points) == 3


def test_lag_series_agrees_with_pending_lag_at_every_bucket_end() -> None:
    import random

    rng = random.Random(4)
    for _ in range(50):
        items = []
        for _ in range(rng.randint(0, 40)):
            done = T0 + rng.randint(0, 3600) * S
            published = rng.random() < 0.7
            items.append(LagItem(done, done + rng.randint(0, 1800) * S if published else None))
        end = T0 + rng.randint(60, 4000) * S
        buckets = rng.randint(1, 30)
        series = lag_series(items, T0, end, buckets)
        for point in series.points:
            assert point.pending == pending_lag(items, point.end)
        counted = sum(p.published.count for p in series.points)
        assert counted == sum(1 for i in items
                              if i.available_at is not None and T0 <= i.available_at <= end)
        assert lag_series(list(reversed(items)), T0, end, buckets) == series


@pytest.mark.parametrize(("start", "end", "buckets"),
                         [(T0, T0 + H, 0), (T0, T0, 5), (T0 + H, T0, 5)],
                         ids=["no-bucket", "empty-span", "reversed"])
def test_lag_series_refuses_an_empty_layout(start: datetime, end: datetime,
                                            buckets: int) -> None:
    with pytest.raises(ValueError, match="a lag series needs"):
        lag_series([], start, end, buckets)


FIT_CASES = {
    "nothing": ([], None),
    "from-the-first-item": ([LagItem(T0 + 12 * H, T0 + 12 * H + M), LagItem(T0 + 20 * H, None)],
                            (T0 + 12 * H, T0 + D)),
    "waiting-since-before-the-period": ([LagItem(T0 - H, None)], (T0, T0 + D)),
    "published-before-the-period-ignored": ([LagItem(T0 - H, T0 - M),
                                             LagItem(T0 + 6 * H, None)],
                                            (T0 + 6 * H, T0 + D)),
    "published-inside-counts": ([LagItem(T0 - H, T0 + M)], (T0, T0 + D)),
    "complete-after-the-end-ignored": ([LagItem(T0 + D + S, None)], None),
    "at-least-a-minute": ([LagItem(T0 + D - S, None)], (T0 + D - M, T0 + D)),
}


@pytest.mark.parametrize(("items", "expected"), FIT_CASES.values(), ids=FIT_CASES.keys())
def test_fit_range(items: list[LagItem],
                   expected: tuple[datetime, datetime] | None) -> None:
    assert fit_range(items, T0, T0 + D) == expected


def test_fit_range_never_starts_before_the_period() -> None:
    assert fit_range([LagItem(T0 + 10 * S, None)], T0, T0 + 30 * S) == (T0, T0 + 30 * S)

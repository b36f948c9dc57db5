"""Replication lag: nearest-rank percentiles, summaries and per-period buckets (rule 4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.lag import PERIODS, LagBucket, LagStats, Period, bucketize, percentile, summarize

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

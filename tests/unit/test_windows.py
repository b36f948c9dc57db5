"""Restorable windows (rule 5) from base backups and log segments."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.model import RegionRole, RestoreWindow, TimeRange
from engine.windows import BaseMark, SegmentMark, restorable_intervals, window_of

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def t(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def base(end: int, log_start_seq: int = 0, stream: str = "s1") -> BaseMark:
    return BaseMark(t(end), stream, log_start_seq)


def seg(seq: int, end: int, stream: str = "s1") -> SegmentMark:
    return SegmentMark(stream, seq, t(end))


def chain(first_seq: int, last_seq: int, first_end: int, step: int = 1,
          stream: str = "s1") -> list[SegmentMark]:
    """Segments first_seq..last_seq, each ``step`` minutes after the previous."""
    return [seg(s, first_end + (s - first_seq) * step, stream)
            for s in range(first_seq, last_seq + 1)]


Case = tuple[list[BaseMark], list[SegmentMark], list[tuple[int, int]]]

CASES: dict[str, Case] = {
    "base-without-segments-is-one-instant": ([base(0)], [], [(0, 0)]),
    "base-and-contiguous-segments": ([base(0)], chain(0, 4, 1), [(0, 5)]),
    "segments-out-of-order-in-input": ([base(0)], list(reversed(chain(0, 4, 1))), [(0, 5)]),
    "gap-ends-the-window": ([base(0)], [*chain(0, 2, 1), *chain(4, 6, 5)], [(0, 3)]),
    "gap-resumes-at-next-base-after-it": (
        [base(0), base(5, log_start_seq=4)],
        [*chain(0, 2, 1), *chain(4, 6, 5)],
        [(0, 3), (5, 7)],
    ),
    "base-after-gap-without-segments": (
        [base(0), base(10, log_start_seq=5)], [*chain(0, 2, 1), seg(4, 9)], [(0, 3), (10, 10)],
    ),
    "segments-of-another-stream-do-not-extend": (
        [base(0)], [seg(0, 1), seg(1, 2), *chain(2, 5, 3, stream="s2")], [(0, 2)],
    ),
    "another-stream-only": ([base(0)], chain(0, 3, 1, stream="s2"), [(0, 0)]),
    "each-base-follows-its-own-stream": (
        [base(0, stream="s1"), base(20, stream="s2")],
        [*chain(0, 2, 1, stream="s1"), *chain(0, 2, 21, stream="s2")],
        [(0, 3), (20, 23)],
    ),
    "overlapping-chains-merge": (
        [base(0), base(3, log_start_seq=3)], chain(0, 9, 1), [(0, 10)],
    ),
    "contained-chain-merges": ([base(0), base(2, log_start_seq=2)], chain(0, 3, 1), [(0, 4)]),
    "touching-intervals-merge": (
        [base(0), base(3, log_start_seq=5)], [*chain(0, 2, 1), *chain(5, 6, 4)], [(0, 5)],
    ),
    "segments-before-log-start-seq-do-not-count": (
        [base(10, log_start_seq=5)], chain(0, 4, 1), [(10, 10)],
    ),
    "chain-starts-at-log-start-seq": (
        [base(10, log_start_seq=5)], [*chain(0, 4, 1), *chain(5, 7, 11)], [(10, 13)],
    ),
    "first-needed-segment-missing": ([base(10, log_start_seq=5)], chain(6, 9, 11), [(10, 10)]),
    "segment-ending-before-the-base-does-not-move-back": (
        [base(10)], [seg(0, 5), seg(1, 12)], [(10, 12)],
    ),
    "no-base-no-window": ([], chain(0, 9, 1), []),
    "nothing-at-all": ([], [], []),
}


@pytest.mark.parametrize(("bases", "segments", "expected"), CASES.values(), ids=CASES.keys())
def test_restorable_intervals(bases: list[BaseMark], segments: list[SegmentMark],
                              expected: list[tuple[int, int]]) -> None:
    want = tuple(TimeRange(t(a), t(b)) for a, b in expected)
    assert restorable_intervals(bases, segments) == want
    # the order of the input does not matter
    assert restorable_intervals(list(reversed(bases)), list(reversed(segments))) == want
    # iterables are consumed once
    assert restorable_intervals(iter(bases), iter(segments)) == want


@pytest.mark.parametrize(("bases", "segments", "expected"), CASES.values(), ids=CASES.keys())
def test_window_of(bases: list[BaseMark], segments: list[SegmentMark],
                   expected: list[tuple[int, int]]) -> None:
    win = window_of("aws-eu-central-1", RegionRole.SECONDARY, bases, segments)
    assert isinstance(win, RestoreWindow)
    assert win.region == "aws-eu-central-1"
    assert win.role == RegionRole.SECONDARY
    assert win.intervals == tuple(TimeRange(t(a), t(b)) for a, b in expected)
    if expected:
        assert win.start == t(expected[0][0])
        assert win.end == t(expected[-1][1])
    else:
        assert win.start is None
        assert win.end is None
        assert win.describe() == "no restorable point"


# --- properties -------------------------------------------------------------------------------

STREAMS = ("s1", "s2")
bases_st = st.lists(
    st.builds(BaseMark, st.integers(0, 200).map(t), st.sampled_from(STREAMS),
              st.integers(0, 20)),
    max_size=6,
)
# (stream, seq) is unique: a segment is identified by its place in its stream
segments_st = st.dictionaries(
    st.tuples(st.sampled_from(STREAMS), st.integers(0, 25)), st.integers(0, 300), max_size=40,
).map(lambda d: [SegmentMark(s, q, t(m)) for (s, q), m in sorted(d.items())])
new_segment_st = st.tuples(st.sampled_from(STREAMS), st.integers(0, 25), st.integers(0, 300))


@settings(max_examples=200, deadline=None)
@given(bases=bases_st, segments=segments_st, extra=new_segment_st)
def test_adding_a_segment_never_shrinks_an_interval(
        bases: list[BaseMark], segments: list[SegmentMark],
        extra: tuple[str, int, int]) -> None:
    stream, seq, minute = extra
    if any(s.stream == stream and s.seq == seq for s in segments):
        return  # not a new segment
    before = restorable_intervals(bases, segments)
    after = restorable_intervals(bases, [*segments, SegmentMark(stream, seq, t(minute))])
    for old in before:
        assert any(new.start <= old.start and old.end <= new.end for new in after), (old, after)


@settings(max_examples=200, deadline=None)
@given(bases=bases_st, segments=segments_st)
def test_window_starts_at_the_oldest_base_and_is_sorted_and_disjoint(
        bases: list[BaseMark], segments: list[SegmentMark]) -> None:
    intervals = restorable_intervals(bases, segments)
    if not bases:
        assert intervals == ()
        return
    assert intervals[0].start == min(b.end_time for b in bases)
    for piece in intervals:
        assert piece.start <= piece.end
    for earlier, later in itertools.pairwise(intervals):
        assert earlier.end < later.start
    # every base backup's own end time is restorable
    win = RestoreWindow("r", RegionRole.PRIMARY, intervals)
    assert all(win.covers(b.end_time) for b in bases)

"""A window of `btar status` is computed from the rows of the fleet's read without making the
chains (engine.windows.marks_intervals): it must be the window the chains give, with or
without timeline switches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import windows
from engine.catalog import ChainMark
from engine.model import ItemKind, TimeRange
from engine.windows import (
    SegmentMark,
    chains,
    inputs_of_marks,
    intervals_of,
    marks_intervals,
    merge_intervals,
    runs_of,
)

T0 = datetime(2026, 11, 26, tzinfo=UTC)
STREAMS = ["1", "2", "3"]


def t(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


base_st = st.builds(lambda end, stream, seq, n: ChainMark(
    ItemKind.BASE, f"base/{n}", stream, seq, t(end - 5), t(end), ""),
    st.integers(0, 200), st.sampled_from(STREAMS), st.integers(0, 20), st.integers(0, 9))
history_st = st.builds(lambda stream, parent, seq, at: ChainMark(
    ItemKind.HISTORY, f"history/{stream}", stream, seq, t(at), t(at), parent),
    st.sampled_from(STREAMS), st.sampled_from(STREAMS), st.integers(0, 20),
    st.integers(0, 200))
segments_st = st.dictionaries(
    st.tuples(st.sampled_from(STREAMS), st.integers(0, 25)), st.integers(0, 300), max_size=40)


@given(bases=st.lists(base_st, max_size=8), histories=st.lists(history_st, max_size=3),
       segments=segments_st)
def test_the_window_of_the_marks_is_the_window_of_the_chains(
        bases: list[ChainMark], histories: list[ChainMark],
        segments: dict[tuple[str, int], int]) -> None:
    _same_window(bases, histories, segments)


@pytest.mark.parametrize("few", [0, 1000], ids=["runs indexed", "runs looked through"])
@given(bases=st.lists(base_st, max_size=8), segments=segments_st)
def test_without_a_history_the_runs_looked_through_or_indexed_give_the_chains_window(
        few: int, bases: list[ChainMark], segments: dict[tuple[str, int], int]) -> None:
    kept = windows._FEW_RUNS
    windows._FEW_RUNS = few
    try:
        _same_window(bases, [], segments)
    finally:
        windows._FEW_RUNS = kept


def _same_window(bases: list[ChainMark], histories: list[ChainMark],
                 segments: dict[tuple[str, int], int]) -> None:
    listed = [SegmentMark(stream, seq, t(end)) for (stream, seq), end in segments.items()]
    ends = {(s.stream, s.seq): s.end_time for s in listed}

    def segment_end(stream: str, seq: int) -> datetime | None:
        return ends.get((stream, seq))

    runs = runs_of(listed)
    marks = [*bases, *histories]
    made, switches = inputs_of_marks(marks)
    assert marks_intervals(marks, runs, segment_end) \
        == intervals_of(chains(made, runs, switches, None, segment_end))


@given(st.lists(st.tuples(st.integers(0, 100), st.integers(0, 50)), max_size=12))
def test_merging_pairs_is_merging_ranges(pieces: list[tuple[int, int]]) -> None:
    ranges = [TimeRange(t(start), t(start + length)) for start, length in pieces]
    merged: list[TimeRange] = []
    for piece in sorted(ranges, key=lambda r: (r.start, r.end)):  # the definition
        if merged and piece.start <= merged[-1].end:
            if piece.end > merged[-1].end:
                merged[-1] = TimeRange(merged[-1].start, piece.end)
        else:
            merged.append(piece)
    assert merge_intervals(ranges) == tuple(merged)

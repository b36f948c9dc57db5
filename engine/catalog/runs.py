"""Log runs: the unbroken stretches of log segments per stream, so that windows are
computed from a few rows whatever the history."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from engine.catalog.locations import LocationsPart
from engine.catalog.rows import (
    ItemRow,
    LogRun,
)
from engine.catalog.schema import (
    _RESTORABLE_SQL,
    Segment,
    _rebuild_runs,
    from_text,
    to_text,
)
from engine.model import ItemKind, ItemStatus


class RunsPart(LocationsPart):
    """The chain summary of restorable log segments."""

    def _runs_add(self, service: str, region: str, segments: Iterable[Segment]) -> None:
        """Fold restorable segments into the runs: consecutive ones become one piece first,
        so a batch costs a few queries per piece, not per segment."""
        pieces: list[list[Any]] = []
        for stream, seq, start, end in sorted(segments):
            last = pieces[-1] if pieces else None
            if last and last[0] == stream and last[2] == seq - 1:
                last[2], last[4] = seq, max(last[4], end)
            elif not (last and last[0] == stream and last[2] == seq):
                pieces.append([stream, seq, seq, start, end])
        for stream, first, last_seq, start, end in pieces:
            self._run_add(service, region, stream, first, last_seq, start, end)

    def _run_add(self, service: str, region: str, stream: str, first: int, last: int,
                 start: str, end: str) -> None:
        """Fold segments ``first``..``last`` of a stream: extend, bridge or start a run."""
        key = (service, region, stream)
        # One read finds the runs the piece overlaps or touches (one before, one after): a
        # pass usually adds one segment that extends the last run.
        near = self.conn.execute(
            "select first_seq, last_seq, first_start, last_end from log_runs where "
            "service = ? and region = ? and stream = ? and first_seq <= ? and last_seq >= ?",
            (*key, last + 1, first - 1)).fetchall()
        if any(run_first <= last and run_last >= first for run_first, run_last, _, _ in near):
            # Only part of the piece is new (or the runs are stale): recount them all.
            _rebuild_runs(self.conn, service, region)
            return
        before = next((run for run in near if run[1] == first - 1), None)
        after = next((run for run in near if run[0] == last + 1), None)
        first_seq, first_start = (before[0], before[2]) if before else (first, start)
        last_seq = after[1] if after else last
        # Segment end times need not grow with seq (a segment without commits may carry an
        # early time), so the run ends at the latest of the pieces it joins.
        last_end = max([end, *(row[3] for row in (before, after) if row)])
        if before and not after:
            self.conn.execute(
                "update log_runs set last_seq = ?, last_end = ? where service = ? and "
                "region = ? and stream = ? and first_seq = ?",
                (last_seq, last_end, *key, first_seq))
            return
        if before:
            self.conn.execute("delete from log_runs where service = ? and region = ? and "
                              "stream = ? and first_seq = ?", (*key, before[0]))
        if after:
            self.conn.execute("delete from log_runs where service = ? and region = ? and "
                              "stream = ? and first_seq = ?", (*key, after[0]))
        self.conn.execute(
            "insert into log_runs (service, region, stream, first_seq, last_seq, first_start, "
            "last_end) values (?, ?, ?, ?, ?, ?, ?)",
            (*key, first_seq, last_seq, first_start, last_end))

    def runs(self, service: str, region: str) -> list[LogRun]:
        """The contiguous runs of restorable log segments in a region."""
        return [LogRun(stream, first_seq, last_seq, from_text(first_start), from_text(last_end))
                for stream, first_seq, last_seq, first_start, last_end in self._read(
                    "select stream, first_seq, last_seq, first_start, last_end from log_runs "
                    "where service = ? and region = ? order by stream, first_seq",
                    (service, region))]

    def log_items(self, service: str, region: str, stream: str, first_seq: int,
                  last_seq: int) -> list[ItemRow]:
        """Restorable log segments of a stream in a seq range (an index range scan)."""
        return [item_row(r) for r in self._read(
            f"select {ITEM_COLUMNS} from items where service = ? and region = ? and "
            f"kind = 'log' and stream = ? and seq between ? and ? and {_RESTORABLE_SQL} "
            "order by seq", (service, region, stream, first_seq, last_seq))]

    def covering_seq(self, service: str, region: str, stream: str,
                     moment: datetime) -> int | None:
        """The lowest seq of a restorable segment of ``stream`` ending at or after ``moment``."""
        rows = self._read(
            "select seq from items where service = ? and region = ? and kind = 'log' and "
            f"stream = ? and end_time >= ? and {_RESTORABLE_SQL} order by end_time, seq "
            "limit 1", (service, region, stream, to_text(moment)))
        return int(rows[0][0]) if rows else None

    def item(self, service: str, region: str, item_id: str) -> ItemRow | None:
        rows = self._read(f"select {ITEM_COLUMNS} from items where service = ? and region = ? "
                          "and item_id = ?", (service, region, item_id))
        return item_row(rows[0]) if rows else None


#: the columns item_row reads, in its order
ITEM_COLUMNS = ("service, region, item_id, kind, stream, seq, start_time, end_time, size, "
                "object_count, status, reason, completed_at, available_at, lag_seconds, parent")
_KINDS = {str(kind): kind for kind in ItemKind}
_STATUSES = {str(status): status for status in ItemStatus}


def item_row(r: Sequence[Any]) -> ItemRow:
    """An item row from the ITEM_COLUMNS of a query (what rows._item_row makes of a dict)."""
    return ItemRow(
        service=r[0], region=r[1], item_id=r[2], kind=_KINDS.get(r[3]) or ItemKind(r[3]),
        stream=r[4], seq=r[5], start_time=from_text(r[6]), end_time=from_text(r[7]),
        size=r[8], object_count=r[9], status=_STATUSES.get(r[10]) or ItemStatus(r[10]),
        reason=r[11] or "", completed_at=from_text(r[12]),
        available_at=from_text(r[13]) if r[13] else None, lag_seconds=r[14],
        parent=r[15] or "")

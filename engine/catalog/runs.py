"""Log runs: the unbroken stretches of log segments per stream, so that windows are
computed from a few rows whatever the history."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from engine.catalog.locations import LocationsPart
from engine.catalog.rows import (
    ItemRow,
    LogRun,
    _item_row,
)
from engine.catalog.schema import (
    _RESTORABLE_SQL,
    Segment,
    _rebuild_runs,
    from_text,
    to_text,
)


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
        key = [service, region, stream]
        overlapping = self.db.execute(
            "select 1 from log_runs where service = ? and region = ? and stream = ? "
            "and first_seq <= ? and last_seq >= ?", [*key, last, first]).fetchone()
        if overlapping:
            # Only part of the piece is new (or the runs are stale): recount them all.
            _rebuild_runs(self.db, service, region)
            return
        before = self.db.execute(
            "select first_seq, first_start, last_end from log_runs where service = ? and "
            "region = ? and stream = ? and last_seq = ?", [*key, first - 1]).fetchone()
        after = self.db.execute(
            "select last_seq, last_end from log_runs where service = ? and region = ? and "
            "stream = ? and first_seq = ?", [*key, last + 1]).fetchone()
        first_seq, first_start = (before[0], before[1]) if before else (first, start)
        last_seq = after[0] if after else last
        # Segment end times need not grow with seq (a segment without commits may carry an
        # early time), so the run ends at the latest of the pieces it joins.
        last_end = max([end, *(row[-1] for row in (before, after) if row)])
        if before:
            self.db.execute("delete from log_runs where service = ? and region = ? and "
                            "stream = ? and last_seq = ?", [*key, first - 1])
        if after:
            self.db.execute("delete from log_runs where service = ? and region = ? and "
                            "stream = ? and first_seq = ?", [*key, last + 1])
        self.db.execute(
            "insert into log_runs (service, region, stream, first_seq, last_seq, first_start, "
            "last_end) values (?, ?, ?, ?, ?, ?, ?)",
            [*key, first_seq, last_seq, first_start, last_end])

    def runs(self, service: str, region: str) -> list[LogRun]:
        """The contiguous runs of restorable log segments in a region."""
        return [LogRun(r["stream"], r["first_seq"], r["last_seq"], from_text(r["first_start"]),
                       from_text(r["last_end"]))
                for r in self.db.query(
                    "select * from log_runs where service = ? and region = ? "
                    "order by stream, first_seq", [service, region])]

    def log_items(self, service: str, region: str, stream: str, first_seq: int,
                  last_seq: int) -> list[ItemRow]:
        """Restorable log segments of a stream in a seq range (an index range scan)."""
        return [_item_row(r) for r in self.db.query(
            "select * from items where service = ? and region = ? and kind = 'log' and "
            f"stream = ? and seq between ? and ? and {_RESTORABLE_SQL} order by seq",
            [service, region, stream, first_seq, last_seq])]

    def covering_seq(self, service: str, region: str, stream: str,
                     moment: datetime) -> int | None:
        """The lowest seq of a restorable segment of ``stream`` ending at or after ``moment``."""
        row = self.db.execute(
            "select seq from items where service = ? and region = ? and kind = 'log' and "
            f"stream = ? and end_time >= ? and {_RESTORABLE_SQL} order by end_time, seq "
            "limit 1", [service, region, stream, to_text(moment)]).fetchone()
        return int(row[0]) if row else None

    def item(self, service: str, region: str, item_id: str) -> ItemRow | None:
        rows = list(self.db.query(
            "select * from items where service = ? and region = ? and item_id = ?",
            [service, region, item_id]))
        return _item_row(rows[0]) if rows else None

"""Reads for every service at once (`btar status`, `btar check`): a handful of queries for
the whole fleet instead of a dozen per service, each answered from a summary (item_counts,
log_runs) or an index seek, never a scan of a region's items (schema v7)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from engine.catalog.base import CatalogBase
from engine.catalog.rows import LocationRow, LogRun, Reachability
from engine.catalog.schema import _CHUNK, CHAIN_MARKS_WHERE, RESTORABLE, from_text
from engine.model import UNFINISHED, ItemKind, RegionRole, RegionState

#: (service, region)
Pair = tuple[str, str]
T = TypeVar("T")


class ChainMark(NamedTuple):
    """A restorable base backup or history item: what a window is computed from, besides
    the log runs (engine.windows.chain_inputs reads the same from whole rows). A tuple:
    thousands are read at once."""

    kind: ItemKind
    item_id: str
    stream: str
    seq: int
    start_time: datetime
    end_time: datetime
    parent: str


@dataclass
class RegionCounts:
    """Items per status, and the backlog (unfinished items and bytes) per kind, of one
    (service, region), as ItemsPart.status_counts and ItemsPart.backlog give them."""

    statuses: dict[str, int] = field(default_factory=dict)
    backlog: dict[ItemKind, tuple[int, int]] = field(default_factory=dict)


_KINDS = {str(kind): kind for kind in ItemKind}
_UNFINISHED_ORDER = [str(status) for status in UNFINISHED]
_UNFINISHED = frozenset(_UNFINISHED_ORDER)
_ROLES = {str(role): role for role in RegionRole}
_STATES = {str(state): state for state in RegionState}


#: the counts of a region without items
_NO_COUNTS = RegionCounts()


def _where(service: str | None, column: str = "service") -> tuple[str, list[str]]:
    return (f" where {column} = ?", [service]) if service is not None else ("", [])


class FleetPart(CatalogBase):
    """Batched reads of every service (or of one, ``service``)."""

    def locations_by_service(self, service: str | None = None) -> dict[str, list[LocationRow]]:
        """Each service's locations, ordered as LocationsPart.locations orders them."""
        where, args = _where(service)
        found: dict[str, list[LocationRow]] = {}
        roles, states, parse = _ROLES, _STATES, datetime.fromisoformat  # as from_text parses
        for name, region, role, state, reason, since in self.conn.execute(
                "select service, region, role, state, reason, since from locations"
                f"{where} order by service, since, region", args):
            found.setdefault(name, []).append(LocationRow(
                name, region, roles[role], states[state], reason, parse(since)))
        return found

    def located(self) -> set[Pair]:
        """Every (service, region) that has a location, whatever its role: what opening an
        installation looks up for each service's primary (without a LocationRow each)."""
        return set(self.conn.execute("select service, region from locations").fetchall())

    def reachability_by_service(self,
                                service: str | None = None) -> dict[str, dict[str, Reachability]]:
        """Per service and region, LocationsPart.reachability's rows."""
        where, args = _where(service)
        found: dict[str, dict[str, Reachability]] = {}
        parse = datetime.fromisoformat  # as from_text parses; "" is no moment
        for name, region, ok_at, fault, reason, since, at in self.conn.execute(
                "select service, region, ok_at, fault, reason, fault_since, fault_at from "
                f"reachability{where}", args):
            found.setdefault(name, {})[region] = Reachability(
                name, region, parse(ok_at) if ok_at else None, fault, reason,
                parse(since) if since else None, parse(at) if at else None)
        return found

    def region_counts(self, service: str | None = None) -> dict[Pair, RegionCounts]:
        """Status counts and backlogs from item_counts (a few rows per region), summed here
        from one ordered read of its rows rather than by two grouping queries: a row never
        goes below zero, so a status with items is one with a row above zero."""
        where, args = _where(service)
        found: dict[Pair, RegionCounts] = {}
        pair: Pair | None = None
        counts = RegionCounts()
        for name, region, status, kind, items, size in self.conn.execute(
                "select service, region, status, kind, items, bytes from item_counts where "
                f"items > 0{where.replace(' where', ' and')} order by service, region, status, "
                "kind", args):
            if pair is None or pair[0] != name or pair[1] != region:
                pair = (name, region)
                counts = found[pair] = RegionCounts()
            statuses = counts.statuses
            statuses[status] = statuses.get(status, 0) + items
            if status in _UNFINISHED:
                backlog, of = counts.backlog, _KINDS[kind]
                known = backlog.get(of)
                backlog[of] = (items, size) if known is None \
                    else (known[0] + items, known[1] + size)
        for counts in found.values():
            if len(counts.backlog) > 1:  # in order of kind, as ItemsPart.backlog gives it
                counts.backlog = dict(sorted(counts.backlog.items()))
        return found

    def oldest_unfinished_of(self, pairs: Iterable[Pair],
                             counts: Mapping[Pair, RegionCounts] | None = None
                             ) -> dict[Pair, datetime]:
        """ItemsPart.oldest_unfinished of each pair that has one: one seek per unfinished
        status on the (service, region, status, completed_at) index, all pairs in one
        statement. Given the pairs' ``counts`` (region_counts), only the statuses that have
        items are sought: a fleet's backlog is mostly pending, and three seeks in four found
        nothing."""
        seeks = [(name, region, status) for name, region in pairs
                 for status in (_UNFINISHED_ORDER if counts is None else
                                [s for s in counts.get((name, region), _NO_COUNTS).statuses
                                 if s in _UNFINISHED])]
        oldest: dict[Pair, str] = {}
        for start in range(0, len(seeks), _CHUNK):
            chunk = seeks[start:start + _CHUNK]
            values = ", ".join("(?, ?, ?)" for _ in chunk)
            for name, region, text in self.conn.execute(
                    f"with p (service, region, status) as (values {values}) select p.service, "
                    "p.region, (select min(completed_at) from items where service = p.service "
                    "and region = p.region and status = p.status) from p",
                    [v for seek in chunk for v in seek]):
                # times are compared as their text, as SQLite's min() compares them
                if text is not None and text < oldest.get((name, region), "~"):
                    oldest[(name, region)] = text
        return {pair: from_text(text) for pair, text in oldest.items()}

    def last_lags(self, pairs: Iterable[Pair]) -> dict[Pair, float]:
        """JournalPart.last_lag of each pair that has a sample, in one statement."""
        return self._per_pair(
            pairs, "(select lag_seconds from lag_samples where service = p.service and "
            "region = p.region order by at desc, id desc limit 1)", [], float)

    def _per_pair(self, pairs: Iterable[Pair], expression: str, args: list[str],
                  convert: Callable[[Any], T]) -> dict[Pair, T]:
        """``expression`` (a correlated subquery over ``p.service`` and ``p.region``) for
        each pair, in one statement; pairs where it is NULL are left out."""
        wanted = list(pairs)
        found: dict[Pair, T] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start:start + _CHUNK]
            values = ", ".join("(?, ?)" for _ in chunk)
            for name, region, value in self.conn.execute(
                    f"with p (service, region) as (values {values}) select p.service, "
                    f"p.region, {expression} from p",
                    [*(v for pair in chunk for v in pair), *args]):
                if value is not None:
                    found[(name, region)] = convert(value)
        return found

    def chain_marks(self, service: str | None = None) -> dict[Pair, list[ChainMark]]:
        """The restorable base backups and histories of every located region: per region,
        bases first, then histories, each oldest end time first (as chain_inputs reads
        them), from their partial covering index alone (schema v7): a region without a
        location is read too, and not asked for."""
        where, args = _where(service, "service")
        statuses = [str(s) for s in RESTORABLE]
        found: dict[Pair, list[ChainMark]] = {}
        # The fleet's bases and histories, some 10,000 rows: the rows come grouped by region
        # (the order), so a region's list is looked up once; the tuples are made without
        # ChainMark.__new__ (a Python function), and the times parsed as from_text parses
        # them, without a call of its own each.
        kinds, parse, make = _KINDS, datetime.fromisoformat, tuple.__new__
        pair: Pair | None = None
        marks: list[ChainMark] = []
        for name, region, kind, item_id, stream, seq, start, end, parent in self.conn.execute(
                "select service, region, kind, item_id, stream, seq, start_time, end_time, "
                f"parent from items{where}{' and' if where else ' where'} {CHAIN_MARKS_WHERE} "
                f"and status in ({','.join('?' * len(statuses))}) order by service, region, "
                # kind is 'base' or 'history' here: by kind is bases first, as chain_inputs
                "kind, end_time, item_id", [*args, *statuses]):
            if pair is None or pair[0] != name or pair[1] != region:
                pair = (name, region)
                marks = found[pair] = []
            marks.append(make(ChainMark, (kinds[kind], item_id, stream, seq, parse(start),
                                          parse(end), parent or "")))
        return found

    def runs_by_region(self, service: str | None = None) -> dict[Pair, list[LogRun]]:
        """RunsPart.runs of every region."""
        where, args = _where(service)
        found: dict[Pair, list[LogRun]] = {}
        parse = datetime.fromisoformat  # as from_text parses
        for name, region, stream, first, last, start, end in self.conn.execute(
                "select service, region, stream, first_seq, last_seq, first_start, last_end "
                f"from log_runs{where} order by service, region, stream, first_seq", args):
            found.setdefault((name, region), []).append(
                LogRun(stream, first, last, parse(start), parse(end)))
        return found

    def full_listings(self) -> dict[str, datetime]:
        """LocationsPart.last_full_listing of every service that had one."""
        return {name: from_text(at) for name, at in self.conn.execute(
            "select service, at from full_listings")}


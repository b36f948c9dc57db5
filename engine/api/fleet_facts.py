"""What the status of every service (or of one) reads from the catalog: a few batched queries
(engine.catalog.fleet) rather than a dozen per service, and each region's chains computed
once, for its window in the status and for its holes in `btar check`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from engine.catalog import (
    Catalog,
    ChainMark,
    LocationRow,
    LogRun,
    Reachability,
    RegionCounts,
)
from engine.model import RegionRole, RestoreWindow
from engine.windows import (
    Chain,
    ChainInputs,
    chains,
    inputs_of_marks,
    intervals_of,
    marks_intervals,
    segment_end_of,
)

NO_COUNTS = RegionCounts()
#: (service, region)
Pair = tuple[str, str]


@dataclass(frozen=True)
class FleetFacts:
    """The catalog's facts about every service (or one), read at once."""

    catalog: Catalog
    locations: dict[str, list[LocationRow]]
    reachability: dict[str, dict[str, Reachability]]
    counts: dict[Pair, RegionCounts]
    marks: dict[Pair, list[ChainMark]]
    runs: dict[Pair, list[LogRun]]
    oldest: dict[Pair, datetime]
    last_lag: dict[Pair, float]
    #: windows are made from the chains (which are kept, for who judges them next), not
    #: without them
    chained: bool = False
    _chains: dict[Pair, list[Chain]] = field(default_factory=dict)
    _inputs: dict[Pair, ChainInputs] = field(default_factory=dict)

    @classmethod
    def read(cls, catalog: Catalog, service: str | None = None, *,
             chained: bool = False) -> FleetFacts:
        locations = catalog.locations_by_service(service)
        counts = catalog.region_counts(service)
        # the additional region of each service: its first secondary, as additional_region
        secondaries = [(name, next(loc.region for loc in rows
                                   if loc.role == RegionRole.SECONDARY))
                       for name, rows in locations.items()
                       if any(loc.role == RegionRole.SECONDARY for loc in rows)]
        # Only a region with unfinished items has an oldest one: the counts say which.
        waiting = [pair for pair in secondaries if pair in counts and counts[pair].backlog]
        return cls(catalog, locations, catalog.reachability_by_service(service), counts,
                   catalog.chain_marks(service), catalog.runs_by_region(service),
                   catalog.oldest_unfinished_of(waiting, counts), catalog.last_lags(secondaries),
                   chained)

    def inputs(self, name: str, region: str) -> ChainInputs:
        """engine.windows.chain_inputs of a region, from what was read, made once: `btar
        check` asks for them again, beside the chains made from them."""
        found = self._inputs.get((name, region))
        if found is None:
            bases, switches = inputs_of_marks(self.marks.get((name, region), ()))
            found = self._inputs[(name, region)] = (
                bases, self.runs.get((name, region), []), switches)  # read, never changed
        return found

    def chains(self, name: str, region: str) -> list[Chain]:
        """engine.windows.catalog_chains of a region (the latest timeline), computed once."""
        found = self._chains.get((name, region))
        if found is None:
            bases, runs, switches = self.inputs(name, region)
            found = self._chains[(name, region)] = chains(
                bases, runs, switches, None, segment_end_of(self.catalog, name, region))
        return found

    def window(self, name: str, region: str, role: RegionRole) -> RestoreWindow:
        """window_from_catalog of a region along the latest timeline, from what was read:
        from its chains when they are wanted or made (`btar check`), else without them."""
        made = self._chains.get((name, region))
        if made is not None or self.chained:
            return RestoreWindow(region, role, intervals_of(self.chains(name, region)))
        return RestoreWindow(region, role, marks_intervals(
            self.marks.get((name, region), ()), self.runs.get((name, region), []),
            segment_end_of(self.catalog, name, region)))

    def current_lag(self, name: str, region: str, now: datetime) -> float | None:
        """StatusPart.current_lag from what was read."""
        oldest = self.oldest.get((name, region))
        if oldest is not None:
            return max(0.0, (now - oldest).total_seconds())
        counts = self.counts.get((name, region))
        return 0.0 if counts is not None and counts.statuses else None

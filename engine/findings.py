"""What a service's chains lack and what its primary's reader refused: the findings `btar
sync --once` reports after its run and `btar check` judges (engine.operations). Apart from
engine.operations, which imports the thresholds' and prices' models (pydantic): a sync reads
neither."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from engine.gaps import Hole, Refusal, holes, refusals
from engine.model import REPLICABLE_TYPES

if TYPE_CHECKING:
    from engine.api import Btar
    from engine.api.fleet_facts import FleetFacts


@dataclass(frozen=True)
class FleetChains:
    """What `btar check` judges every service's chains from, read once: the status's facts
    (locations, chain inputs and chains of each region) and each last full listing."""

    facts: FleetFacts
    full_listings: dict[str, datetime]


def chain_findings(app: Btar, name: str, since: datetime | None = None,
                   fleet: FleetChains | None = None) -> tuple[list[Hole], list[Refusal]]:
    """The holes of every region of a service (along the timeline recovery follows), and the
    markers its primary's reader refused since ``since`` (default: its last full listing)
    that no hole already names. ``fleet``: what was read for every service at once."""
    service = app.service(name)
    if service.type not in REPLICABLE_TYPES:
        return [], []
    catalog = app.catalog
    listed = catalog.last_full_listing(name) if fleet is None \
        else fleet.full_listings.get(name)
    refused = refusals(catalog, service, since or listed)
    reasons = {r.item_id: r.reason for r in refused}
    if fleet is None:
        found = [hole for loc in catalog.locations(name)
                 for hole in holes(catalog, service, loc.region, reasons)]
    else:
        facts = fleet.facts
        found = [hole for loc in facts.locations.get(name, [])
                 for hole in holes(catalog, service, loc.region, reasons,
                                   facts.inputs(name, loc.region),
                                   facts.chains(name, loc.region))]
    named = {f"log/{h.stream}/{h.seq:010d}" for h in found}
    return found, [r for r in refused if r.item_id not in named]


def findings_of(app: Btar, names: list[str],
                since: datetime) -> tuple[list[Hole], list[Refusal]]:
    """Holes and refusals of several services (``btar sync --once`` after its run)."""
    holes: list[Hole] = []
    refused: list[Refusal] = []
    for name in names:
        found, rejected = chain_findings(app, name, since)
        holes += found
        refused += rejected
    return holes, refused

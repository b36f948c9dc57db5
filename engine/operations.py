"""Operator views built on the application API: health checks and the cost report."""

from __future__ import annotations

from datetime import datetime

from engine.alerts import AlertsConfig, Level, Problem, ServiceHealth, evaluate
from engine.api import Btar, ServiceStatus
from engine.api.fleet_facts import FleetFacts
from engine.catalog import MirrorRow
from engine.cost import CostConfig, RegionCost, price
from engine.findings import FleetChains, chain_findings
from engine.lag import PERIODS, Period
from engine.model import ItemStatus, RegionRole, RegionState
from engine.regions import get_region

PAUSED_PREFIX = "replication paused"


def service_health(app: Btar, status: ServiceStatus, now: datetime) -> ServiceHealth:
    """Lag, window end, pause and faults of a service's additional region, and whether its
    primary can be listed."""
    name, region = status.name, status.additional_region
    window_end = None
    paused_since: datetime | None = None
    reason = ""
    failing: tuple[str, str, datetime] | None = None
    primary_end: datetime | None = None
    for row in status.regions:
        if row.role == RegionRole.PRIMARY:
            primary_end = row.window.end
        if row.region != region:
            continue
        window_end = row.window.end
        if row.fault is not None:
            failing = row.fault.kind, row.fault.reason, row.fault.since
        if row.state == RegionState.PAUSED:
            reason = row.reason
            paused_since = row.fault.since if row.fault is not None else next(
                (e.at for e in reversed(app.events(1000, service=name))
                 if e.region == region and e.message.startswith(PAUSED_PREFIX)), now)
    primary = status.primary_fault
    return ServiceHealth(name, region, status.current_lag_seconds, window_end, paused_since,
                         reason, status.primary_region,
                         primary.since if primary is not None else None,
                         f"{primary.kind}: {primary.reason}" if primary is not None else "",
                         primary_end, failing)


def check(app: Btar, alerts: AlertsConfig, now: datetime,
          statuses: list[ServiceStatus] | None = None) -> list[Problem]:
    """Every problem of every replicating service, worst first. Pass ``statuses`` when they
    were just read, so that they are not computed twice."""
    problems: list[Problem] = []
    # What the chains and mirrors of every service are judged from, read once for the fleet
    # (with the status, when it is read here).
    if statuses is None:
        statuses, facts = app.status_and_facts()
    else:
        facts = FleetFacts.read(app.catalog)
    fleet = FleetChains(facts, app.catalog.full_listings())
    blocked = app.catalog.blocked_mirrors()
    for status in statuses:
        problems += evaluate(service_health(app, status, now),
                             alerts.for_service(status.name), now)
        problems += chain_problems(app, status.name, fleet)
        problems += mirror_problems(app, status, blocked.get(status.name, []))
    return sorted(problems, key=lambda p: (-p.level, p.service, p.check))


def mirror_problems(app: Btar, status: ServiceStatus,
                    blocked: list[MirrorRow] | None = None) -> list[Problem]:
    """A file the backup tool rewrites in place (pgBackRest's backup.info) whose current
    version is not in the additional region, and why (engine.mirror): the tool restoring
    from that region alone sees an older list of backups until it is. ``blocked``: the
    service's blocked rows, when already read (Catalog.blocked_mirrors)."""
    region = status.additional_region
    if region is None:
        return []
    rows = app.catalog.mirror_rows(status.name, region) if blocked is None \
        else [row for row in blocked if row.region == region]
    return [Problem(status.name, Level.WARNING, "mirror",
                    f"{status.name}: {row.key} is not mirrored to {region}: {row.blocked}")
            for row in rows if row.blocked]


def chain_problems(app: Btar, name: str, fleet: FleetChains | None = None) -> list[Problem]:
    """A hole cuts a window: critical. A refused item that cuts none (an unreadable backup,
    a segment past the end of its chain) is a warning."""
    found, refused = chain_findings(app, name, fleet=fleet)
    return [*(Problem(name, Level.CRITICAL, "hole", h.message) for h in found),
            *(Problem(name, Level.WARNING, "refused", r.message) for r in refused)]


def cost_report(app: Btar, prices: CostConfig, period: Period,
                now: datetime) -> list[RegionCost]:
    """Per service and non-primary region: bytes stored now, bytes copied in the period."""
    since = now - PERIODS[period][0]
    report: list[RegionCost] = []
    for service in app.services():
        for region_status in app.status_of(service.name).regions:
            if region_status.role == RegionRole.PRIMARY:
                continue
            region = region_status.region
            items = app.backups(service.name, region)
            stored = sum(i.size for i in items
                         if i.status in (ItemStatus.AVAILABLE, ItemStatus.RETAINED))
            copied = sum(i.size for i in items
                         if i.available_at is not None and since <= i.available_at <= now)
            report.append(price(service.name, region, region_status.role.value, stored, copied,
                                prices.prices(get_region(region).provider)))
    return report

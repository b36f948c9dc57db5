"""Snapshots of the lag, the windows and the status over time, and probes of the windows'
claims.

A snapshot journals, per service, the primary's latest data point (ground truth: the end of
the last segment the service wrote) and, as the engine shows them (engine.api.Btar.status:
the same call `btar status` makes), the additional region, its current lag, every region's
window, the state, the fault of the primary and of the additional region, the staleness of
what btar knows of the primary, and the problems `btar check` reports for the service
(engine.operations.check, default thresholds). A probe plans restores
(engine.restore.plan_restore) at random points of each claimed window and checks every planned
object exists in that region's storage with the recorded SHA-256.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import simpy

from engine.alerts import AlertsConfig, Problem
from engine.api import Fault, ServiceStatus
from engine.errors import BtarError
from engine.model import TimeRange, iso
from engine.operations import check
from engine.restore import plan_restore
from simulator.producer import Producer
from simulator.world import World

#: samples per run when the scenario does not say
DEFAULT_SAMPLES = 96
#: the thresholds `btar check` applies when btar.toml has no [alerts] table
ALERTS = AlertsConfig()


class Sampler:
    def __init__(self, world: World, producers: dict[str, Producer], probes: int) -> None:
        self.world = world
        self.producers = producers
        self.probes = probes

    @property
    def every(self) -> float:
        scenario = self.world.scenario
        return scenario.sample_every or max(scenario.replicator.poll_interval,
                                            scenario.duration / DEFAULT_SAMPLES)

    def start(self, extra: list[float]) -> None:
        """Sample every ``every`` seconds and at each of ``extra`` (checked moments)."""
        self.world.env.process(self._periodic())
        for moment in sorted(set(extra)):
            self.world.env.process(self._once(moment))

    def _periodic(self) -> Generator[simpy.Event, Any, None]:
        while True:
            self.snapshot("periodic")
            if self.probes:
                self.probe()
            yield self.world.env.timeout(self.every)

    def _once(self, moment: float) -> Generator[simpy.Event, Any, None]:
        yield self.world.env.timeout(moment)
        self.snapshot("check")

    def snapshot(self, reason: str) -> None:
        world = self.world
        app = world.app
        statuses = app.status()
        problems = check(app, ALERTS, world.now(), statuses)
        services: dict[str, Any] = {}
        for status in statuses:
            producer = self.producers.get(status.name)
            views = app.timeline_views(status.name) if status.regions else []
            services[status.name] = {
                "primary_latest": iso(producer.last_end) if producer else None,
                "secondary": status.additional_region,
                "lag": status.current_lag_seconds,
                "windows": {r.region: {"role": str(r.window.role),
                                       "intervals": [[iso(i.start), iso(i.end)]
                                                     for i in r.window.intervals]}
                            for r in status.regions},
                # per region: the timeline followed, and every branch's own window
                "timelines": {v.window.region: {
                    "followed": v.followed or None,
                    "branches": {b.timeline: [[iso(i.start), iso(i.end)] for i in b.intervals]
                                 for b in v.branches}} for v in views},
                **status_fields(status, [p for p in problems if p.service == status.name]),
            }
        world.journal.add("snapshot", "info", reason=reason, services=services)

    def probe(self) -> None:
        """Plan restores at random points of every claimed window; check what they need is
        there, whole."""
        world = self.world
        rng = world.rng("probes")
        for service in world.app.services():
            if not world.app.catalog.locations(service.name):
                continue
            for view in world.app.timeline_views(service.name):
                # The followed window, then every other branch along its own timeline.
                claims: list[tuple[str | None, tuple[TimeRange, ...]]] = [
                    (None, view.window.intervals)]
                claims += [(b.timeline, tuple(TimeRange(i.start, i.end) for i in b.intervals))
                           for b in view.branches if not b.followed]
                for timeline, intervals in claims:
                    if not intervals:
                        continue
                    for _ in range(self.probes):
                        piece = intervals[rng.randrange(len(intervals))]
                        span = (piece.end - piece.start).total_seconds()
                        # Whole microseconds: the catalog stores times at that precision.
                        point = piece.start + timedelta(
                            microseconds=int(rng.random() * span * 1e6))
                        self._check_point(service.name, view.window.region, point, timeline)

    def _check_point(self, service: str, region: str, point: Any,
                     timeline: str | None = None) -> None:
        world = self.world
        fields = {"service": service, "region": region, "point": iso(point)}
        if timeline is not None:
            fields["timeline"] = timeline
        try:
            plan = plan_restore(world.app.catalog, world.app.service(service), region, point,
                                world.now(), timeline=timeline)
        except BtarError as error:
            world.journal.add("probe", "fail", error=f"the window claims it, the plan refuses: "
                                                     f"{error}", **fields)
            return
        prefix = world.app.service(service).key_prefix
        for ref in plan.objects:
            actual = world.physical_sha256(region, f"{prefix}/{ref.key}")
            if actual != ref.sha256:
                state = "missing" if actual is None else "corrupt"
                world.journal.add("probe", "fail", error=f"{ref.key} is {state} in {region}",
                                  **fields)
                return
        world.journal.add("probe", "ok", objects=len(plan.objects), **fields)


def fault_fields(fault: Fault | None) -> dict[str, str] | None:
    return None if fault is None else {"kind": fault.kind, "reason": fault.reason,
                                       "since": iso(fault.since)}


def status_fields(status: ServiceStatus, problems: list[Problem]) -> dict[str, Any]:
    """What `btar status` and `btar check` show of a service, as journal fields: ``state``
    (engine.api.ServiceState's words), ``state_reason`` ("" for none), ``primary_fault`` and
    ``destination_fault`` (the additional region's; each ``None`` or kind, reason and since),
    ``staleness`` (seconds since the primary was last listed) and ``problems`` (check, level,
    message)."""
    destination = next((r.fault for r in status.regions
                        if r.region == status.additional_region), None)
    return {
        "state": status.state.value,
        "state_reason": status.state_reason,
        "primary_fault": fault_fields(status.primary_fault),
        "destination_fault": fault_fields(destination),
        "staleness": status.staleness_seconds,
        "problems": [{"check": p.check, "level": p.level.name.lower(), "message": p.message}
                     for p in problems],
    }

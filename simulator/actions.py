"""Management actions and forks at a time, through the application API (engine.api.Btar).

Refusals are the engine's RuleViolation subclasses: their rule number and message go into the
journal. A fork is planned by the engine (Btar.plan_fork) and then "runs" for the plan's
declared bytes over the restore bandwidth; an outage of its region while it runs fails it, and
so does a planned object that is missing or corrupt in that region.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from engine.errors import BtarError, RuleViolation
from engine.model import iso
from simulator.scenario import ChangeRegion, Disable, Enable, Fork
from simulator.world import Outage, World


def _windows_union(world: World, service: str) -> list[list[str]]:
    return [[iso(r.start), iso(r.end)] for r in world.union(service)]


def management(world: World, event: Enable | ChangeRegion | Disable,
               name: str) -> Generator[simpy.Event, Any, None]:
    """Carry out one management action through the application API, in zero virtual time,
    between two steps of the running replicator (as `btar enable` beside `btar sync`)."""
    fields: dict[str, Any] = {"name": name, "action": event.kind, "service": event.service}
    if isinstance(event, Enable | ChangeRegion):
        fields["region"] = event.region
    else:
        fields["mode"] = event.mode
    world.journal.add("action", "invoke", **fields)
    with world.lock.request() as turn:  # one action at a time
        yield turn
        app = world.app
        before = _windows_union(world, event.service)
        details: dict[str, Any] = {}
        try:
            if isinstance(event, Enable):
                app.enable(event.service, event.region)
            elif isinstance(event, ChangeRegion):
                app.change_region(event.service, event.region)
            else:
                outcome = app.disable(event.service, keep=event.mode == "keep",
                                      delete=event.mode == "delete", confirmed=True)
                details = {"regions": outcome.regions, "deleted_objects": outcome.deleted_objects}
        except RuleViolation as refusal:
            world.journal.add("action", "refused", rule=refusal.rule, message=str(refusal),
                              windows_before=before,
                              windows_after=_windows_union(world, event.service), **fields)
            return
        except BtarError as error:
            world.journal.add("action", "fail", error=str(error), windows_before=before,
                              windows_after=_windows_union(world, event.service), **fields)
            return
        world.journal.add("action", "ok", windows_before=before,
                          windows_after=_windows_union(world, event.service), **details,
                          **fields)


def fork(world: World, event: Fork) -> Generator[simpy.Event, Any, None]:
    """Plan a fork with the engine, then run the restore in its region."""
    app = world.app
    scenario = world.scenario
    target = None if event.target == "latest" else scenario.time(event.target)
    requested = float(world.env.now)
    fields: dict[str, Any] = {"name": event.name, "service": event.service,
                              "target": "latest" if target is None else iso(target)}
    if event.timeline is not None:
        fields["timeline"] = event.timeline
    world.journal.add("fork", "invoke", **fields)
    # `btar fork` runs beside `btar sync`, and the engine holds no catalog transaction across
    # a yield, so planning between two of its steps is what two processes sharing the SQLite
    # catalog would see.
    region = event.region or app.additional_region(event.service)
    if region is None:
        world.journal.add("fork", "fail", error=f"{event.service} has no additional region "
                                                "and the fork names none", **fields)
        return
    fields["region"] = region
    try:
        plan = app.plan_fork(event.service, region, target, timeline=event.timeline)
    except RuleViolation as refusal:
        world.journal.add("fork", "refused", rule=refusal.rule, message=str(refusal), **fields)
        return
    except BtarError as error:
        world.journal.add("fork", "fail", error=str(error), **fields)
        return
    prefix = app.service(event.service).key_prefix
    size = sum(world.declared.get(f"{prefix}/{o.key}", o.size) for o in plan.objects)
    world.journal.add("fork", "planned", effective_target=iso(plan.effective_target),
                      base=plan.base_id, segments=len(plan.segments), objects=len(plan.objects),
                      bytes=size, expected_data_loss=plan.expected_data_loss_seconds,
                      follows=plan.timeline, histories=list(plan.histories),
                      window=[[iso(r.start), iso(r.end)] for r in plan.window.intervals],
                      **fields)
    seconds = world.request_latency(region) + size / scenario.restore.bandwidth
    flight = world.fly(frozenset((region,)), None)
    try:
        if world.store(region).unreachable:
            raise simpy.Interrupt(Outage(region=region))
        yield world.env.timeout(seconds)
    except simpy.Interrupt:
        world.journal.add("fork", "fail", error=f"{region} went away during the restore",
                          **fields)
        return
    finally:
        world.land(flight)
    # The restore verifies what it read: a planned object missing or corrupt fails the fork.
    for ref in plan.objects:
        if world.physical_sha256(region, f"{prefix}/{ref.key}") != ref.sha256:
            world.journal.add("fork", "fail", error=f"{ref.key} is missing or corrupt in "
                                                    f"{region}", **fields)
            return
    world.journal.add("fork", "ok", effective_target=iso(plan.effective_target),
                      rto=round(float(world.env.now) - requested, 6), **fields)

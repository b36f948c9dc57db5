"""A scenario's timeline as a front shows it: one mark per entry, with when it starts (and
ends), what it is and whether it is a fault, the end of one or a management action. The
TUI's replay draws them on its time line and jumps between them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from simulator.scenario import (
    ChangeRegion,
    Disable,
    Enable,
    Event,
    Fork,
    LinkUp,
    LoadedScenario,
    RegionRecovery,
    ReplicatorCrash,
    ReplicatorRestart,
)

Role = Literal["fault", "recovery", "action"]


@dataclass(frozen=True)
class Mark:
    """One entry of the scenario's timeline: when it starts (and ends, for a fault that
    says so), what it is and whether it is a fault, the end of one or a management action."""

    t: float
    until: float | None
    kind: str
    role: Role
    label: str


def _role(event: Event) -> Role:
    if isinstance(event, RegionRecovery | LinkUp | ReplicatorRestart):
        return "recovery"
    if isinstance(event, Enable | ChangeRegion | Disable | Fork):
        return "action"
    return "fault"


def _target(event: Event) -> str:
    if isinstance(event, Fork):
        return f"{event.name} of {event.service}"
    if isinstance(event, Enable | ChangeRegion):
        return f"{event.service} to {event.region}"
    if isinstance(event, Disable):
        return f"{event.service} ({event.mode})"
    between = getattr(event, "between", None)
    if between:
        return " <-> ".join(between)
    return str(getattr(event, "region", "") or "")


def timeline_marks(loaded: LoadedScenario) -> tuple[Mark, ...]:
    """The scenario's timeline, in time order (the additional regions enabled at the start
    are not in it: they are the scenario's setup, not an event)."""
    scenario = loaded.scenario
    marks = []
    for event in scenario.timeline:
        start = scenario.offset(event.at)
        until = getattr(event, "until", None)
        end = scenario.offset(until) if until is not None else None
        if isinstance(event, ReplicatorCrash) and event.restart_after is not None:
            end = start + event.restart_after
        label = f"{event.kind.replace('_', ' ')} {_target(event)}".strip()
        marks.append(Mark(start, end, event.kind, _role(event), label))
    return tuple(sorted(marks, key=lambda m: m.t))

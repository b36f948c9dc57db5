"""What `btar status` showed of each service over a run, read back from the journal's
snapshots: spans of samples with the same state and faults, for the report and the summary.

Nothing here is derived again: the state, the faults, the staleness and the problems are the
engine's own (engine.api.Btar.status, engine.operations.check), as the sampler journaled them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.api import ServiceState, state_text
from engine.model import parse_iso
from simulator.journal import Entry
from simulator.units import format_duration


@dataclass
class StateSpan:
    """Consecutive samples of a service that show the same state and faults."""

    service: str
    #: virtual seconds of the first and the last sample of the span
    first: float
    last: float
    state: ServiceState
    #: why it is paused or failing ("" for the other states)
    reason: str
    #: kind, reason and since (ISO) of the primary's and the additional region's fault
    primary_fault: dict[str, str] | None
    destination_fault: dict[str, str] | None
    #: the largest staleness sampled in the span (seconds since the primary was last listed)
    staleness: float | None
    #: [check, level, first sample, last sample showing it], in the order they appeared
    problems: list[list[Any]] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The state and its reason, as `btar status` writes them."""
        return state_text(self.state, self.reason)

    def key(self) -> tuple[Any, ...]:
        return (self.state, self.reason, _fault_key(self.primary_fault),
                _fault_key(self.destination_fault))

    def as_dict(self, start: str) -> dict[str, Any]:
        return {"first": self.first, "last": self.last, "state": self.state.value,
                "state_reason": self.reason,
                "primary_fault": _with_offset(self.primary_fault, start),
                "destination_fault": _with_offset(self.destination_fault, start),
                "staleness_max": self.staleness,
                "problems": [{"check": c, "level": lv, "first": t, "last": u}
                             for c, lv, t, u in self.problems]}


def _fault_key(fault: dict[str, str] | None) -> tuple[str, str] | None:
    return None if fault is None else (fault["kind"], fault["since"])


def _with_offset(fault: dict[str, str] | None, start: str) -> dict[str, Any] | None:
    if fault is None:
        return None
    return {**fault, "since_t": round((parse_iso(fault["since"]) - parse_iso(start))
                                      .total_seconds(), 6)}


def _start(entries: Sequence[Entry]) -> str:
    return str(next(e["start"] for e in entries if e["op"] == "run"))


def state_spans(entries: Sequence[Entry]) -> dict[str, list[StateSpan]]:
    """Per service (sorted), the spans of its status over the run's snapshots."""
    spans: dict[str, list[StateSpan]] = {}
    for snapshot in entries:
        if snapshot["op"] != "snapshot":
            continue
        t = snapshot["t"]
        for name, shown in sorted(snapshot["services"].items()):
            if "state" not in shown:
                continue  # a journal written before snapshots carried the status
            span = StateSpan(name, t, t, ServiceState(shown["state"]), shown["state_reason"],
                             shown["primary_fault"], shown["destination_fault"],
                             shown["staleness"])
            known = spans.setdefault(name, [])
            if known and known[-1].key() == span.key():
                span = known[-1]
                span.last = t
                if shown["staleness"] is not None:
                    span.staleness = max(span.staleness or 0.0, shown["staleness"])
            else:
                known.append(span)
            for problem in shown["problems"]:
                seen = next((p for p in span.problems
                             if p[:2] == [problem["check"], problem["level"]]), None)
                if seen is None:
                    span.problems.append([problem["check"], problem["level"], t, t])
                else:
                    seen[3] = t
    return spans


def states_summary(entries: Sequence[Entry]) -> dict[str, list[dict[str, Any]]]:
    """The spans as plain data (summary.json, `btar simulate --json`)."""
    if not any(e["op"] == "run" for e in entries):
        return {}
    start = _start(entries)
    return {name: [span.as_dict(start) for span in spans]
            for name, spans in state_spans(entries).items()}


def t_text(seconds: float) -> str:
    return "T+" + format_duration(seconds) if seconds >= 60 else f"T+{seconds:g}s"


def fault_text(fault: dict[str, str] | None, start: str, *, reason: bool = True) -> str:
    """``unreachable since T+02:02:00: <reason>``, or ``-``."""
    if fault is None:
        return "-"
    since = (parse_iso(fault["since"]) - parse_iso(start)).total_seconds()
    text = f"{fault['kind']} since {t_text(since)}"
    return f"{text}: {fault['reason']}" if reason else text


def span_line(span: StateSpan, start: str) -> str:
    """One line of text for a span (the CLI; the faults' reasons are in the state or the
    report)."""
    parts = [f"{t_text(span.first)}..{t_text(span.last)} {span.text}"]
    if span.primary_fault is not None:
        parts.append(f"primary {fault_text(span.primary_fault, start, reason=False)}")
    if span.destination_fault is not None:
        parts.append(f"destination {fault_text(span.destination_fault, start, reason=False)}")
    if span.staleness is not None:
        parts.append(f"staleness up to {format_duration(span.staleness)}")
    if span.problems:
        parts.append("check: " + problems_text(span.problems))
    return "; ".join(parts)


def problems_text(problems: list[list[Any]]) -> str:
    """``primary warning T+00:07:00..T+00:31:00, ...``, or ``-``."""
    return ", ".join(f"{check} {level} {t_text(first)}..{t_text(last)}"
                     for check, level, first, last in problems) or "-"

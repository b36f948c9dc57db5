"""The checks: each expectation of a scenario judged against the journal after the run
(Jepsen style). They read what happened (produced items, copies with the hashes the bytes
really had, publications, snapshots, faults) and never ask the engine what it decided: a check
built on the engine's own verdicts could not catch the engine lying. The exception is the
``state`` kind, whose subject is what the engine shows an operator (status and check, as
journaled in the snapshots): it holds that display to bounds derived from the world's timeline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.api import ServiceState, state_text
from engine.model import parse_iso
from simulator.journal import Entry
from simulator.scenario import (
    ExpectAction,
    Expectation,
    ExpectFork,
    ExpectLag,
    ExpectNeverUnverified,
    ExpectNoDataLoss,
    ExpectNoOnlyCopyDeleted,
    ExpectRpo,
    ExpectRto,
    ExpectState,
    ExpectWindow,
    ExpectWindowsRestorable,
    RegionOutage,
    Scenario,
)
from simulator.state_expectation import expected_state
from simulator.units import format_duration

EPSILON = 1e-6


@dataclass(frozen=True)
class Verdict:
    index: int
    label: str
    holds: bool
    detail: str


def _t(seconds: float) -> str:
    return "T+" + format_duration(seconds) if seconds >= 60 else f"T+{seconds:g}s"


def label(expectation: Expectation) -> str:
    """A one-line description of an expectation."""
    e = expectation
    if isinstance(e, ExpectFork | ExpectAction):
        what = f"fork {e.fork!r}" if isinstance(e, ExpectFork) else f"action {e.action!r}"
        rule = f" by rule {e.rule}" if e.rule is not None else ""
        return f"{what} {e.outcome}{rule}"
    if isinstance(e, ExpectRpo):
        if e.ranged:
            at = f"every sample {_show(e.since or 0.0)}..{_show(e.until) if e.until else 'end'}"
        else:
            at = "the primary outage" if e.at is None else _show(e.at)
        return f"RPO of {e.service} at {at} <= {format_duration(e.at_most)}"
    if isinstance(e, ExpectRto):
        return f"RTO of fork {e.fork!r} <= {format_duration(e.at_most)}"
    if isinstance(e, ExpectLag):
        bounds = [f"{name} <= {format_duration(value)}"
                  for name, value in (("p50", e.p50_at_most), ("p99", e.p99_at_most),
                                      ("max", e.max_at_most))
                  if value is not None]
        what = f"{e.items} lag" if e.items else "lag"
        where = f" in {e.region}" if e.region else ""
        return f"{what} of {e.service}{where} {', '.join(bounds) or '(no bound)'}"
    if isinstance(e, ExpectWindow):
        parts = [f"{name} ~ {_show(value)}" for name, value in (("start", e.start),
                                                               ("end", e.end))
                 if value is not None]
        if e.followed is not None:
            parts.insert(0, f"follows timeline {e.followed}")
        along = f" along timeline {e.timeline}" if e.timeline is not None else ""
        return (f"window of {e.service} in {e.region}{along} at {_show(e.at)}: "
                f"{', '.join(parts)}")
    if isinstance(e, ExpectNeverUnverified):
        return "no backup is ever published with an unverified object"
    if isinstance(e, ExpectNoDataLoss):
        return (f"no data point of {e.service} is missing from its additional region once "
                f"healthy for {format_duration(e.healthy_for)}")
    if isinstance(e, ExpectWindowsRestorable):
        return "every window claims only points its region can restore (probed)"
    if isinstance(e, ExpectNoOnlyCopyDeleted):
        return "no deletion removes the only restorable copy of a point in time"
    if isinstance(e, ExpectState):
        within = f" (within {format_duration(e.within)})" if e.within else ""
        span = f"{_show(e.since)}{within}..{_show(e.until) if e.until is not None else 'end'}"
        return f"status of {e.service} at every sample {span}: {', '.join(_wanted(e))}"
    raise TypeError(e)


def _wanted(e: ExpectState) -> list[str]:
    parts = []
    if e.state is not None:
        parts.append(f"state {e.state!r}")
    for name, fault in (("primary", e.primary_fault), ("destination", e.destination_fault)):
        if fault is not None:
            parts.append(f"{name} fault {fault}")
    if e.check is not None:
        level = {None: "warning or critical", "ok": "no problem"}.get(e.level, e.level)
        parts.append(f"check {e.check}: {level}")
    return parts


def _show(value: object) -> str:
    if isinstance(value, float | int):
        return _t(float(value))
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class _Facts:
    """The journal indexed for the checks."""

    def __init__(self, scenario: Scenario, entries: Sequence[Entry]) -> None:
        self.scenario = scenario
        self.entries = entries
        #: (service, item) -> the produce entry (completion in the primary)
        self.produced: dict[tuple[str, str], Entry] = {}
        self.publishes: list[Entry] = []
        #: (region, key) -> copy completions in journal order
        self.copies: dict[tuple[str, str], list[Entry]] = {}
        self.snapshots: list[Entry] = []
        self.faults: list[tuple[Entry, float | None]] = []
        self.forks: dict[str, list[Entry]] = {}
        self.actions: dict[str, list[Entry]] = {}
        self.probes: list[Entry] = []
        open_faults: dict[int, Entry] = {}
        ended: dict[int, float] = {}
        for entry in entries:
            op, phase = entry["op"], entry["phase"]
            if op == "produce" and phase == "ok":
                self.produced[(entry["service"], entry["item"])] = entry
            elif op == "publish":
                self.publishes.append(entry)
            elif op == "copy" and phase in ("ok", "fail"):
                self.copies.setdefault((entry["destination"], entry["key"]), []).append(entry)
            elif op == "snapshot":
                self.snapshots.append(entry)
            elif op == "fault" and phase == "start":
                open_faults[entry["id"]] = entry
            elif op == "fault" and phase == "end":
                ended[entry["id"]] = entry["t"]
            elif op == "fork":
                self.forks.setdefault(entry["name"], []).append(entry)
            elif op == "action":
                self.actions.setdefault(entry["name"], []).append(entry)
            elif op == "probe":
                self.probes.append(entry)
        self.faults = [(start, ended.get(fault)) for fault, start in sorted(open_faults.items())]

    def offset(self, text: str) -> float:
        return (parse_iso(text) - self.scenario.start).total_seconds()

    def snapshot_at(self, at: float) -> Entry | None:
        for snap in self.snapshots:
            if snap["t"] >= at - EPSILON:
                return snap
        return None


def judge(scenario: Scenario, entries: Sequence[Entry]) -> list[Verdict]:
    """Judge every expectation of ``scenario`` against the journal ``entries``."""
    facts = _Facts(scenario, entries)
    checks: dict[type, Callable[[Any, _Facts], tuple[bool, str]]] = {
        ExpectFork: _check_outcome, ExpectAction: _check_outcome, ExpectRpo: _check_rpo,
        ExpectRto: _check_rto, ExpectLag: _check_lag, ExpectWindow: _check_window,
        ExpectNeverUnverified: _check_verified, ExpectNoDataLoss: _check_no_data_loss,
        ExpectWindowsRestorable: _check_probes, ExpectNoOnlyCopyDeleted: _check_only_copy,
        ExpectState: _check_state,
    }
    verdicts = []
    for index, expectation in enumerate(scenario.expect):
        holds, detail = checks[type(expectation)](expectation, facts)
        verdicts.append(Verdict(index, label(expectation), holds, detail))
    return verdicts


# -- outcomes of forks and actions -------------------------------------------------------------


def _final(entries: list[Entry]) -> Entry | None:
    finals = [e for e in entries if e["phase"] in ("ok", "refused", "fail")]
    return finals[-1] if finals else None


def _check_outcome(e: ExpectFork | ExpectAction, facts: _Facts) -> tuple[bool, str]:
    name = e.fork if isinstance(e, ExpectFork) else e.action
    final = _final((facts.forks if isinstance(e, ExpectFork) else facts.actions).get(name, []))
    if final is None:
        return False, f"{name!r} did not finish before the end of the run"
    phase = final["phase"]
    at = _t(final["t"])
    if phase == "ok":
        target = f", effective target {final['effective_target']}" \
            if "effective_target" in final else ""
        return e.outcome == "succeeds", f"succeeded at {at}{target}"
    if phase == "refused":
        said = f"refused at {at} by rule {final['rule']}: {final['message']}"
        return e.outcome == "refused" and e.rule in (None, final["rule"]), said
    return False, f"failed at {at}: {final['error']}"


def _check_rto(e: ExpectRto, facts: _Facts) -> tuple[bool, str]:
    final = _final(facts.forks.get(e.fork, []))
    if final is None:
        return False, f"fork {e.fork!r} did not finish before the end of the run"
    if final["phase"] != "ok":
        return False, f"fork {e.fork!r} did not succeed: " \
                      f"{final.get('message') or final.get('error')}"
    rto = float(final["rto"])
    return rto <= e.at_most + EPSILON, f"RTO {format_duration(rto)}"


# -- RPO, lag and windows ----------------------------------------------------------------------


def _best_copy_end(snapshot: Entry, service: str) -> datetime | None:
    """The latest point any non-primary region can restore."""
    ends = [parse_iso(w["intervals"][-1][1])
            for w in snapshot["services"][service]["windows"].values()
            if w["role"] != "primary" and w["intervals"]]
    return max(ends) if ends else None


def _rpo(snapshot: Entry, service: str) -> tuple[float | None, str]:
    state = snapshot["services"][service]
    end = _best_copy_end(snapshot, service)
    if end is None or state["primary_latest"] is None:
        return None, f"at {_t(snapshot['t'])} no region other than the primary could restore " \
                     "anything"
    rpo = max(0.0, (parse_iso(state["primary_latest"]) - end).total_seconds())
    return rpo, (f"RPO {format_duration(rpo)} at {_t(snapshot['t'])} (primary latest "
                 f"{state['primary_latest']}, best copy ends {end.isoformat()})")


def _check_rpo(e: ExpectRpo, facts: _Facts) -> tuple[bool, str]:
    scenario = facts.scenario
    if e.ranged:
        since = scenario.offset(e.since) if e.since is not None else 0.0
        until = scenario.offset(e.until) if e.until is not None else scenario.duration
        worst: tuple[float, str] = (-1.0, "")
        for sample in facts.snapshots:
            if not since - EPSILON <= sample["t"] <= until + EPSILON:
                continue
            rpo, detail = _rpo(sample, e.service)
            if rpo is None:
                return False, detail
            worst = max(worst, (rpo, detail))
        if worst[0] < 0:
            return False, f"no sample between {_t(since)} and {_t(until)}"
        return worst[0] <= e.at_most + EPSILON, f"worst {worst[1]}"
    if e.at is not None:
        at = scenario.offset(e.at)
    else:
        primary = next(s.region for s in scenario.services if s.name == e.service)
        at = min(scenario.offset(ev.at) for ev in scenario.timeline
                 if isinstance(ev, RegionOutage) and ev.region == primary)
    snapshot = facts.snapshot_at(at)
    if snapshot is None:
        return False, f"no snapshot at {_t(at)}"
    rpo, detail = _rpo(snapshot, e.service)
    return rpo is not None and rpo <= e.at_most + EPSILON, detail


def _percentile(ordered: list[float], fraction: float) -> float:
    rank = max(1, math.ceil(round(fraction * len(ordered), 9)))
    return ordered[rank - 1]


def _check_lag(e: ExpectLag, facts: _Facts) -> tuple[bool, str]:
    scenario = facts.scenario
    since = scenario.offset(e.since) if e.since is not None else 0.0
    until = scenario.offset(e.until) if e.until is not None else scenario.duration
    lags: list[float] = []
    for publish in facts.publishes:
        if publish["service"] != e.service or (e.region and publish["region"] != e.region):
            continue
        if not since - EPSILON <= publish["published_at"] <= until + EPSILON:
            continue
        produced = facts.produced.get((e.service, publish["item"]))
        if e.items and (produced is None or (produced["kind"] == "base") != (e.items == "base")):
            continue
        # Measured here, independently of the engine's own figure.
        lags.append(publish["published_at"] - produced["t"] if produced else publish["lag"])
    if not lags:
        return False, f"nothing of {e.service} was published between {_t(since)} and {_t(until)}"
    ordered = sorted(lags)
    p50, p99 = _percentile(ordered, 0.5), _percentile(ordered, 0.99)
    holds = all(bound is None or value <= bound + EPSILON
                for value, bound in ((p50, e.p50_at_most), (p99, e.p99_at_most),
                                     (ordered[-1], e.max_at_most)))
    return holds, (f"p50 {format_duration(p50)}, p99 {format_duration(p99)}, "
                   f"max {format_duration(ordered[-1])} over {len(ordered)} items")


def _check_window(e: ExpectWindow, facts: _Facts) -> tuple[bool, str]:
    scenario = facts.scenario
    at = scenario.offset(e.at)
    snapshot = facts.snapshot_at(at)
    if snapshot is None:
        return False, f"no snapshot at {_t(at)}"
    timelines = snapshot["services"][e.service].get("timelines", {}).get(e.region, {})
    followed = timelines.get("followed")
    if e.followed is not None and followed != e.followed:
        return False, (f"{e.region} follows timeline {followed or 'none'} at "
                       f"{_t(snapshot['t'])}, not {e.followed}")
    window = snapshot["services"][e.service]["windows"].get(e.region)
    intervals = window["intervals"] if window else []
    if e.timeline is not None:
        intervals = timelines.get("branches", {}).get(e.timeline, [])
    if not intervals:
        holds = all(v in (None, "none") for v in (e.start, e.end))
        return holds, f"{e.region} has no window at {_t(snapshot['t'])}"
    start, end = facts.offset(intervals[0][0]), facts.offset(intervals[-1][1])
    holds = True
    for expected, actual in ((e.start, start), (e.end, end)):
        if expected is None:
            continue
        if expected == "none":
            holds = False
            continue
        assert not isinstance(expected, str)
        holds = holds and abs(scenario.offset(expected) - actual) <= e.tolerance + EPSILON
    pieces = ", ".join(f"{_t(facts.offset(a))}..{_t(facts.offset(b))}" for a, b in intervals)
    return holds, f"window {pieces} at {_t(snapshot['t'])}"


# -- what status and check show ---------------------------------------------------------------


def _fault_text(fault: dict[str, str] | None, facts: _Facts) -> str:
    if fault is None:
        return "none"
    return f"{fault['kind']} since {_t(facts.offset(fault['since']))}"


def _mismatch(e: ExpectState, shown: Entry | None, facts: _Facts) -> str | None:
    """What a snapshot of the service shows that the expectation does not (None: it holds)."""
    if shown is None or "state" not in shown:
        return f"the snapshot carries no status of {e.service}"
    wrong = []
    state, reason = ServiceState(shown["state"]), shown["state_reason"]
    if e.state is not None and not expected_state(e.state).matches(state, reason):
        wrong.append(f"state {state_text(state, reason)!r}")
    for name, want in (("primary", e.primary_fault), ("destination", e.destination_fault)):
        fault = shown[f"{name}_fault"]
        if want is not None and (fault["kind"] if fault else "none") != want:
            wrong.append(f"{name} fault {_fault_text(fault, facts)}")
    if e.check is not None:
        levels = sorted({p["level"] for p in shown["problems"] if p["check"] == e.check})
        holds = (not levels if e.level == "ok" else e.level in levels if e.level is not None
                 else bool(levels))
        if not holds:
            wrong.append(f"check {e.check}: {', '.join(levels) or 'no problem'}")
    return "; ".join(wrong) or None


def _check_state(e: ExpectState, facts: _Facts) -> tuple[bool, str]:
    """Every snapshot from ``from`` + ``within`` to ``to`` shows what is expected."""
    scenario = facts.scenario
    since = scenario.offset(e.since)
    until = scenario.offset(e.until) if e.until is not None else scenario.duration
    settle = since + e.within
    judged = 0
    #: the first sample from which the expectation held without a break (so far)
    held_from: float | None = None
    for snapshot in facts.snapshots:
        t = snapshot["t"]
        if not since - EPSILON <= t <= until + EPSILON:
            continue
        wrong = _mismatch(e, snapshot["services"].get(e.service), facts)
        # The first sample of the latest unbroken run of samples that show it.
        held_from = None if wrong is not None else t if held_from is None else held_from
        if t < settle - EPSILON:
            continue
        judged += 1
        if wrong is not None:
            return False, f"at {_t(t)} status shows {wrong}"
    if not judged:
        return False, f"no sample between {_t(settle)} and {_t(until)}"
    assert held_from is not None
    return True, (f"held at {judged} samples from {_t(settle)} to {_t(until)}; shown without a "
                  f"break since {_t(held_from)}")


# -- invariants --------------------------------------------------------------------------------


def _check_verified(e: ExpectNeverUnverified, facts: _Facts) -> tuple[bool, str]:
    """Every published item's objects all had a copy whose stored bytes hash to the primary's
    bytes, completed before the publication (the latest such copy counts)."""
    checked = 0
    for publish in facts.publishes:
        produced = facts.produced.get((publish["service"], publish["item"]))
        if produced is None:
            return False, f"{publish['item']} was published in {publish['region']} but the " \
                          "primary never completed it"
        for key in produced["keys"]:
            before = [c for c in facts.copies.get((publish["region"], key), [])
                      if c["t"] <= publish["published_at"] + EPSILON]
            if not before:
                return False, (f"{publish['item']} published in {publish['region']} at "
                               f"{_t(publish['published_at'])} before {key} was ever copied")
            last = before[-1]
            good = last["phase"] == "ok" and last["stored_sha256"] is not None \
                and last["stored_sha256"] == last["source_sha256"]
            if not good:
                why = last.get("error") or (f"stored bytes hash {last['stored_sha256']}, the "
                                            f"primary's {last['source_sha256']}")
                return False, (f"{publish['item']} published in {publish['region']} at "
                               f"{_t(publish['published_at'])} with {key} unverified: {why}")
            checked += 1
    return True, f"{len(facts.publishes)} publications, {checked} objects checked"


def _affects(start: Entry, primary: str, secondary: str) -> bool:
    kind = start["kind"]
    if kind in ("region_outage", "throttle", "corrupt"):
        return bool(start["region"] in (primary, secondary))
    if kind in ("link_down", "link_degrade"):
        return set(start["link"]) == {primary, secondary}
    return True  # the replicator is down


def _check_no_data_loss(e: ExpectNoDataLoss, facts: _Facts) -> tuple[bool, str]:
    primary = next(s.region for s in facts.scenario.services if s.name == e.service)
    produced = sorted((entry["t"], item) for (service, item), entry in facts.produced.items()
                      if service == e.service)
    became: list[tuple[float, str]] = []  # when each region became the additional region
    for entries in facts.actions.values():
        for entry in entries:
            if entry["phase"] == "ok" and entry["service"] == e.service \
                    and entry["action"] in ("enable", "change_region"):
                became.append((entry["t"], entry["region"]))
    published: dict[str, dict[str, float]] = {}
    for publish in facts.publishes:
        if publish["service"] == e.service:
            published.setdefault(publish["region"], {}).setdefault(publish["item"],
                                                                   publish["published_at"])
    judged = 0
    for snapshot in facts.snapshots:
        t = snapshot["t"]
        secondary = snapshot["services"][e.service]["secondary"]
        if secondary is None:
            continue
        since = max((b for b, region in became if region == secondary and b <= t), default=0.0)
        healthy = True
        for start, end in facts.faults:
            if not _affects(start, primary, secondary) or start["t"] > t:
                continue
            if end is None or end > t:
                healthy = False
                break
            since = max(since, end)
        if not healthy or t - since < e.healthy_for - EPSILON:
            continue
        judged += 1
        there = published.get(secondary, {})
        for completed, item in produced:
            if completed > t - e.healthy_for + EPSILON:
                break
            if there.get(item, math.inf) > t + EPSILON:
                return False, (f"at {_t(t)}, healthy since {_t(since)}: {item} (completed in "
                               f"the primary at {_t(completed)}) is not in {secondary}")
    if not judged:
        return False, "never judged: the additional region was never healthy that long"
    return True, f"judged at {judged} samples"


def _check_probes(e: ExpectWindowsRestorable, facts: _Facts) -> tuple[bool, str]:
    failed = [p for p in facts.probes if p["phase"] == "fail"]
    if failed:
        first = failed[0]
        return False, (f"{len(failed)} of {len(facts.probes)} probes failed; first at "
                       f"{_t(first['t'])}: {first['service']} in {first['region']} at "
                       f"{first['point']}: {first['error']}")
    if not facts.probes:
        return False, "no probe ran: no region ever had a window"
    return True, f"{len(facts.probes)} restore plans probed, every object present and whole"


def _uncovered(before: list[list[str]], after: list[list[str]]) -> list[tuple[str, str]]:
    covers = [(parse_iso(a), parse_iso(b)) for a, b in after]
    left: list[tuple[str, str]] = []
    for a, b in before:
        pieces = [(parse_iso(a), parse_iso(b))]
        for cs, ce in covers:
            rest = []
            for s, t in pieces:
                if ce < s or cs > t:
                    rest.append((s, t))
                    continue
                if s < cs:
                    rest.append((s, cs))
                if ce < t:
                    rest.append((ce, t))
            pieces = rest
        left += [(s.isoformat(), t.isoformat()) for s, t in pieces
                 if t > s or not any(cs <= s <= ce for cs, ce in covers)]
    return left


def _check_only_copy(e: ExpectNoOnlyCopyDeleted, facts: _Facts) -> tuple[bool, str]:
    actions = 0
    for entries in facts.actions.values():
        for entry in entries:
            if "windows_before" not in entry:
                continue
            actions += 1
            lost = _uncovered(entry["windows_before"], entry["windows_after"])
            if lost:
                return False, (f"{entry['action']} of {entry['service']} at {_t(entry['t'])} "
                               f"lost every restorable copy of {lost[0][0]} .. {lost[0][1]}")
    return True, f"{actions} management actions kept every restorable point"

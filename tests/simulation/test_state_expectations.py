"""What `btar status` and `btar check` show is journaled in every snapshot, straight from the
engine, and the ``state`` expectation holds that display to bounds: it passes when the status
shows what is expected over the whole span, and fails, naming what was shown, when not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import engine.catalog
from engine.api import REASONED_STATES, ServiceState, state_text
from engine.model import parse_iso
from simulator.expectations import judge
from simulator.runner import build, run_scenario
from simulator.scenario import ExpectState, load_scenario
from simulator.state_expectation import expected_state
from simulator.states import state_spans, states_summary
from tests.simulation.builders import SCENARIOS, tiny, write

OUTAGE_STATES = SCENARIOS / "outage-states.btar.toml"

#: the primary is out from 30m to 1h; listings every minute (tiny's poll_interval)
PRIMARY_OUT = """
[[timeline]]
kind = "region_outage"
region = "aws-eu-west-1"
at = "30m30s"
until = "1h0m30s"
"""


def expect(**fields: str) -> str:
    lines = "".join(f'{key} = "{value}"\n' for key, value in fields.items())
    return f'\n[[expect]]\nkind = "state"\nservice = "orders"\n{lines}'


def verdicts(tmp_path: Path, body: str) -> list[tuple[bool, str]]:
    result = run_scenario(load_scenario(write(tmp_path, tiny(body))))
    assert result.crashed is None
    return [(v.holds, v.detail) for v in result.verdicts]


# -- snapshots -----------------------------------------------------------------------------------


def test_snapshots_carry_what_status_and_check_show(tmp_path: Path) -> None:
    """At each snapshot the fields are the engine's status of that moment, not re-derived."""
    loaded = load_scenario(write(tmp_path, tiny(PRIMARY_OUT)))
    world, _, sampler, _ = build(loaded, seed=1)
    seen: list[tuple[dict[str, Any], Any]] = []
    for minute in (20, 33, 40, 59, 75):
        world.env.run(until=minute * 60)
        sampler.snapshot("test")
        seen.append((world.journal.entries[-1]["services"]["orders"],
                     world.app.status_of("orders")))
    for shown, status in seen:
        assert shown["state"] == status.state
        assert shown["state_reason"] == status.state_reason
        assert shown["staleness"] == status.staleness_seconds
        assert shown["lag"] == status.current_lag_seconds
        fault = status.primary_fault
        assert shown["primary_fault"] == (None if fault is None else {
            "kind": fault.kind, "reason": fault.reason, "since": fault.since.isoformat()
            .replace("+00:00", "Z")})
    states = [shown["state"] for shown, _ in seen]
    assert states == ["in sync", "primary unreachable", "primary unreachable",
                      "primary unreachable", "in sync"]
    during = seen[2][0]
    assert during["primary_fault"]["kind"] == "unreachable"
    assert during["destination_fault"] is None
    # Listing failed from the first listing after 30m30s (listings every minute from T+0).
    since = (parse_iso(during["primary_fault"]["since"]) - loaded.scenario.start).total_seconds()
    assert 30 * 60 + 30 < since <= 31 * 60 + 1
    assert during["staleness"] == pytest.approx(40 * 60 - 30 * 60, abs=0.1)
    # Past the 300 s threshold, check warns with the fork advice.
    [primary] = [p for p in during["problems"] if p["check"] == "primary"]
    assert primary["level"] == "warning"
    assert "btar fork orders --region aws-eu-central-1 --latest --into DIR" in primary["message"]
    assert not any(p["check"] == "primary" for p in seen[1][0]["problems"])  # 3 min: not yet
    assert seen[4][0]["primary_fault"] is None


def test_a_paused_destination_shows_in_the_snapshots(tmp_path: Path) -> None:
    result = run_scenario(load_scenario(write(tmp_path, tiny(
        PRIMARY_OUT.replace("aws-eu-west-1", "aws-eu-central-1")))))
    spans = state_spans(result.journal.entries)["orders"]
    paused = [s for s in spans if s.state is ServiceState.PAUSED
              and s.reason.startswith("aws-eu-central-1 unreachable")]
    assert len(paused) == 1
    assert paused[0].destination_fault is not None
    assert paused[0].destination_fault["kind"] == "unreachable"
    assert paused[0].primary_fault is None
    assert paused[0].problems[0][:2] == ["paused", "warning"]
    assert spans[-1].state is ServiceState.IN_SYNC


def test_the_summary_lists_spans_of_status(tmp_path: Path) -> None:
    result = run_scenario(load_scenario(write(tmp_path, tiny(PRIMARY_OUT))))
    [spans] = states_summary(result.journal.entries).values()
    [down] = [s for s in spans if s["state"] == "primary unreachable"]
    assert down["primary_fault"]["kind"] == "unreachable"
    assert 30 * 60 + 30 < down["primary_fault"]["since_t"] <= 31 * 60 + 1
    assert down["staleness_max"] >= 25 * 60
    assert any(p["check"] == "primary" and p["level"] == "warning" for p in down["problems"])


# -- the state expectation -----------------------------------------------------------------------


def test_the_state_shown_through_an_outage_passes(tmp_path: Path) -> None:
    # Detection: the first listing after 30m30s (<= 60 s later) fails after 20 ms.
    [during, clean, silent, warned, after] = verdicts(tmp_path, PRIMARY_OUT + expect(
        **{"from": "30m30s", "within": "61s", "to": "1h0m30s", "state": "primary unreachable",
           "primary_fault": "unreachable", "destination_fault": "none"}) + expect(
        **{"from": "30m30s", "to": "1h0m30s", "destination_fault": "none"}) + expect(
        **{"from": "30m30s", "to": "35m30s", "check": "primary", "level": "ok"}) + expect(
        **{"from": "30m30s", "within": "6m1s", "to": "1h0m30s", "check": "primary",
           "level": "warning"}) + expect(
        **{"from": "1h0m30s", "within": "61s", "to": "1h20m", "state": "in sync",
           "primary_fault": "none"}))
    for holds, detail in (during, clean, silent, warned, after):
        assert holds, detail
    assert during[1].startswith("held at ")
    assert "from T+00:31:31 to T+01:00:30" in during[1]


def test_a_state_that_is_not_shown_fails_and_says_what_was(tmp_path: Path) -> None:
    [in_sync, too_soon, critical, never] = verdicts(tmp_path, PRIMARY_OUT + expect(
        **{"from": "35m", "to": "50m", "state": "in sync"}) + expect(
        # The outage cannot be known at the very moment it starts.
        **{"from": "30m30s", "to": "40m", "state": "primary unreachable"}) + expect(
        **{"from": "40m", "to": "50m", "check": "primary", "level": "critical"}) + expect(
        **{"to": "2h", "state": "paused"}))
    assert not in_sync[0]
    assert in_sync[1].startswith("at T+00:35:00 status shows state 'primary unreachable'")
    assert not too_soon[0]
    assert too_soon[1] == "at T+00:30:30 status shows state 'in sync'"
    assert not critical[0]
    assert critical[1] == "at T+00:40:00 status shows check primary: warning"
    assert not never[0]
    assert never[1].startswith("at T+0s status shows state 'disabled'")


def test_faults_are_judged_by_their_kind(tmp_path: Path) -> None:
    [wrong_kind, none] = verdicts(tmp_path, PRIMARY_OUT + expect(
        **{"from": "40m", "to": "50m", "primary_fault": "throttled"}) + expect(
        **{"from": "40m", "to": "50m", "primary_fault": "none"}))
    assert not wrong_kind[0]
    assert "status shows primary fault unreachable since T+00:31:" in wrong_kind[1]
    assert not none[0]


def test_the_bounds_are_sampled_exactly(tmp_path: Path) -> None:
    """A snapshot is taken at from, at from + within and at to, whatever sample_every is."""
    body = tiny(PRIMARY_OUT + expect(**{"from": "31m7s", "within": "13s", "to": "59m59s",
                                        "state": "primary unreachable"}))
    result = run_scenario(load_scenario(write(tmp_path, body)))
    assert result.ok, result.verdicts
    checks = [e["t"] for e in result.journal.select("snapshot") if e["reason"] == "check"]
    assert checks == [31 * 60 + 7, 31 * 60 + 20, 59 * 60 + 59]


def test_judged_on_the_journal_alone() -> None:
    """The checker reads the snapshots' fields; what it was given decides the verdict."""
    loaded = load_scenario(OUTAGE_STATES)
    scenario = loaded.scenario

    def snapshot(t: float, state: str, problems: list[dict[str, str]],
                 reason: str = "") -> dict[str, Any]:
        return {"t": t, "op": "snapshot", "phase": "info", "services": {"orders": {
            "state": state, "state_reason": reason, "primary_fault": None,
            "destination_fault": None, "staleness": 1.0, "problems": problems}}}

    expectation = ExpectState.model_validate({
        "kind": "state", "service": "orders", "from": 100.0, "within": 50.0, "to": 300.0,
        "state": "in sync", "check": "lag", "level": "ok"})
    ok = [snapshot(100, "copying", []), snapshot(150, "in sync", []),
          snapshot(300, "in sync", []), snapshot(301, "lagging", [])]
    lag = [{"check": "lag", "level": "warning", "message": "behind"}]
    cases = [(ok, True), ([*ok[:1], snapshot(150, "in sync", lag), *ok[2:]], False),
             ([*ok[:2], snapshot(299.9, "copying", [])], False), (ok[:1], False)]
    for entries, holds in cases:
        [verdict] = judge(scenario.model_copy(update={"expect": [expectation]}), entries)
        assert verdict.holds is holds, (entries, verdict.detail)
    # The beginning of a state's words (both primary states), and a state with the
    # beginning of its reason.
    down = snapshot(150, "primary unreachable", [])
    primary = expectation.model_copy(update={"state": "primary", "check": None})
    [verdict] = judge(scenario.model_copy(update={"expect": [primary]}),
                      [down, snapshot(300, "primary failing", [])])
    assert verdict.holds, verdict.detail
    [verdict] = judge(scenario.model_copy(update={"expect": [primary]}),
                      [down, snapshot(300, "paused", [], "aws-eu-central-1 unreachable: x")])
    assert not verdict.holds
    paused = expectation.model_copy(update={"state": "paused: aws-eu-central-1", "check": None})
    for state, reason, holds in [("paused", "aws-eu-central-1 unreachable: timed out", True),
                                 ("paused", "aws-eu-west-1 unreachable: timed out", False),
                                 ("failing", "aws-eu-central-1: copy failed", False)]:
        [verdict] = judge(scenario.model_copy(update={"expect": [paused]}),
                          [snapshot(150, "paused", [], "aws-eu-central-1 denied: no"),
                           snapshot(300, state, [], reason)])
        assert verdict.holds is holds, (state, reason, verdict.detail)
        if not holds:
            assert f"status shows state '{state}: {reason}'" in verdict.detail


def test_an_engine_that_never_records_a_fault_fails_the_outage_scenario(
        monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = load_scenario(OUTAGE_STATES)
    assert run_scenario(loaded).ok
    monkeypatch.setattr(engine.catalog.Catalog, "note_fault", lambda *args, **kwargs: None)
    broken = run_scenario(loaded)
    failed = {v.index: v.detail for v in broken.verdicts if not v.holds}
    # The primary outage shows as in sync and the check stays silent; the secondary outage
    # still pauses (the pause is the location's state, not a fault), without its fault.
    assert sorted(failed) == [1, 3, 4, 6]
    assert failed[1].startswith("at T+02:03:01 status shows state ")
    assert "primary fault none" in failed[1]
    assert failed[6].endswith("status shows destination fault none")


@pytest.mark.parametrize("name", ["outage-states", "throttling-storm", "disable-keep-and-delete"])
def test_every_state_shown_is_one_a_scenario_can_name(name: str) -> None:
    """What status shows, state and reason written whole, is an expectation validation
    accepts (simulator.state_expectation), and it matches what was shown; only a paused or
    failing state has a reason."""
    result = run_scenario(load_scenario(SCENARIOS / f"{name}.btar.toml"))
    shown = {(span.state, span.reason) for spans in state_spans(result.journal.entries).values()
             for span in spans}
    assert shown
    for state, reason in shown:
        assert isinstance(state, ServiceState)
        assert state in REASONED_STATES or reason == "", (state, reason)
        assert expected_state(state_text(state, reason)).matches(state, reason), (state, reason)

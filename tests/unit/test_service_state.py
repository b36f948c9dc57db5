"""A service's state is an enum and its reason a field of its own; the texts a person reads
(`btar status`'s table, `state_line`) are written from the two, in the words used before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.api import REASONED_STATES, Fault, RegionStatus, ServiceState, ServiceStatus
from engine.model import RegionRole, RegionState, RestoreWindow

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
PRIMARY, SECONDARY = "aws-eu-west-1", "aws-eu-central-1"
PAUSE = f"{SECONDARY} unreachable: connect timed out"


def region(name: str, role: RegionRole, fault: Fault | None = None) -> RegionStatus:
    return RegionStatus(name, role, RegionState.ACTIVE, "", {}, RestoreWindow(name, role),
                        fault=fault)


def status(state: ServiceState, reason: str = "", *regions: RegionStatus) -> ServiceStatus:
    return ServiceStatus("orders", "postgresql", "aws", PRIMARY, SECONDARY, state, 60.0, None,
                         list(regions), as_of=NOW, state_reason=reason)


def test_the_words_are_those_status_has_always_shown() -> None:
    assert [s.value for s in ServiceState] == [
        "unsupported", "disabled", "primary unreachable", "primary failing", "paused",
        "failing", "waiting for first sync", "lagging", "copying", "in sync"]
    assert {ServiceState.PAUSED, ServiceState.FAILING} == REASONED_STATES


def test_a_reason_follows_its_state_unless_the_fault_is_shown_beside_it() -> None:
    paused = status(ServiceState.PAUSED, PAUSE)
    assert paused.state_with_reason == f"paused: {PAUSE}"
    assert paused.short_state == paused.state_line == f"paused: {PAUSE}"
    fault = Fault("unreachable", "connect timed out", NOW - timedelta(minutes=5))
    shown_beside = status(ServiceState.PAUSED, PAUSE, region(SECONDARY, RegionRole.SECONDARY,
                                                             fault))
    assert shown_beside.short_state == "paused"
    assert shown_beside.state_line == f"paused: {PAUSE}"
    assert status(ServiceState.IN_SYNC).short_state == "in sync"


def test_a_primary_outage_says_since_when() -> None:
    fault = Fault("unreachable", "no route", NOW - timedelta(minutes=23))
    down = status(ServiceState.PRIMARY_UNREACHABLE, "",
                  region(PRIMARY, RegionRole.PRIMARY, fault))
    assert down.state_line == down.short_state == "primary unreachable since 11:37 UTC (23m)"
    assert down.state is ServiceState.PRIMARY_UNREACHABLE
    assert down.state_reason == ""

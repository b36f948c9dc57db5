"""The lane backlog, where the lag comes from, in the detail screen's summary line."""

from __future__ import annotations

from btar_tui.screens.detail import summary_text
from engine.api import LaneBacklog, RegionStatus, ServiceState, ServiceStatus
from engine.model import RegionRole, RegionState, RestoreWindow

REGION = "aws-eu-central-1"


def status(backlog: dict[str, LaneBacklog]) -> ServiceStatus:
    region = RegionStatus(REGION, RegionRole.SECONDARY, RegionState.ACTIVE, "", {},
                          RestoreWindow(REGION, RegionRole.SECONDARY), backlog)
    return ServiceStatus("ledger", "postgresql", "aws", "aws-eu-west-1", REGION,
                         ServiceState.COPYING, 1800.0, 12.0, [region])


def test_summary_names_what_waits_in_each_lane() -> None:
    line = summary_text("ledger", status({"base": LaneBacklog(1, 2 * 10**12),
                                          "log": LaneBacklog(3, 48 * 2**20)})).plain
    assert line.endswith("copying  lag 30m  to copy: log 3 (48.0 MiB), base 1 (1.8 TiB)"), line


def test_summary_without_backlog_says_nothing_more() -> None:
    assert "to copy" not in summary_text("ledger", status({})).plain

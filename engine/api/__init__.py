"""The application API: the one way the CLI, the TUI and the simulator act on btar.

No front end talks to storage or the catalog directly. ``Btar`` is built from parts by
responsibility: installation (configuration, catalog, driver, lookups), management, status
and restoring; the values it answers with are in values.
"""

from engine.api.btar import Btar
from engine.api.restoring import ForkOutcome, parse_segment_name, plan_as_json
from engine.api.values import (
    REASONED_STATES,
    DisableOutcome,
    Driver,
    Fault,
    LagReport,
    LaneBacklog,
    RegionStatus,
    ServiceState,
    ServiceStatus,
    state_text,
)
from engine.catalog import EventRow, ItemRow
from engine.replication import PassOutcome
from engine.restore import PlanChanged, RestorePlan
from engine.runtime import CopyProgress
from engine.timelines import Branch, TimelineView

__all__ = [
    "REASONED_STATES", "Branch", "Btar", "CopyProgress", "DisableOutcome", "Driver", "EventRow",
    "Fault", "ForkOutcome", "ItemRow", "LagReport", "LaneBacklog", "PassOutcome", "PlanChanged",
    "RegionStatus", "RestorePlan", "ServiceState", "ServiceStatus", "TimelineView",
    "parse_segment_name", "plan_as_json", "state_text",
]

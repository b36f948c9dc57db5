"""The application API: the one way the CLI, the TUI and the simulator act on btar.

No front end talks to storage or the catalog directly. ``Btar`` is built from parts by
responsibility: installation (configuration, catalog, driver, lookups), management, status
and restoring; the values it answers with are in values.

Each name is imported from its module when it is first asked for (PEP 562): importing one
part (``engine.api.values``, say) runs this file first, and the command line imports the
parts a command needs only when that command runs, so neither may pull in the whole engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    from engine.clock import Clock, WallClock
    from engine.replication import PassOutcome
    from engine.restore import PlanChanged, RestorePlan
    from engine.runtime import CopyProgress
    from engine.timelines import Branch, TimelineView

#: where each name of the API lives
_HOMES = {
    "Btar": "engine.api.btar",
    **dict.fromkeys(["ForkOutcome", "parse_segment_name", "plan_as_json"],
                    "engine.api.restoring"),
    **dict.fromkeys(["REASONED_STATES", "DisableOutcome", "Driver", "Fault", "LagReport",
                     "LaneBacklog", "RegionStatus", "ServiceState", "ServiceStatus",
                     "state_text"], "engine.api.values"),
    **dict.fromkeys(["EventRow", "ItemRow"], "engine.catalog"),
    **dict.fromkeys(["Clock", "WallClock"], "engine.clock"),
    "PassOutcome": "engine.replication",
    **dict.fromkeys(["PlanChanged", "RestorePlan"], "engine.restore"),
    "CopyProgress": "engine.runtime",
    **dict.fromkeys(["Branch", "TimelineView"], "engine.timelines"),
}

__all__ = [
    "REASONED_STATES", "Branch", "Btar", "Clock", "CopyProgress", "DisableOutcome", "Driver",
    "EventRow", "Fault", "ForkOutcome", "ItemRow", "LagReport", "LaneBacklog", "PassOutcome",
    "PlanChanged", "RegionStatus", "RestorePlan", "ServiceState", "ServiceStatus",
    "TimelineView", "WallClock", "parse_segment_name", "plan_as_json", "state_text",
]


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # asked once: later lookups are plain module attributes
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

"""The simulator as the terminal UI sees it: this module is the contract between them.

btar_tui imports nothing else of the simulator (an import-linter contract in pyproject.toml
enforces it), so the simulator's modules may change freely behind these names:

- finding scenarios: ``SUFFIX``, ``scenario_files`` (a folder's scenario files),
  ``scenario_info`` and ``ScenarioInfo`` (the name and description a picker shows);
- loading one: ``load_scenario`` gives a ``LoadedScenario``, or raises ``ScenarioError``
  (with the file's path and its lines of problems);
- its timeline as marks: ``timeline_marks`` and ``Mark``;
- running it step by step: ``Replay`` (a handle that stays on the thread that built it:
  ``advance``, ``step``, ``run_through``, ``snapshot``, ``result`` once finished);
- what a replay shows: ``ReplaySnapshot`` of ``ServiceFrame`` (a service's status,
  windows and lag) and ``ReplayEvent``; at the end a ``Verdict`` per expectation;
- the times a person types: ``parse_duration`` ("90s", "1h30m") and ``parse_moment`` (a
  duration, or an ISO time with a zone).

A name the TUI needs and this module lacks is added here, not imported from elsewhere.
"""

from simulator.expectations import Verdict
from simulator.marks import Mark, timeline_marks
from simulator.replay import Replay, ReplayEvent, ReplaySnapshot, ServiceFrame
from simulator.scenario import LoadedScenario, ScenarioError, load_scenario
from simulator.scenario_files import SUFFIX, ScenarioInfo, scenario_files, scenario_info
from simulator.units import parse_duration, parse_moment

__all__ = [
    "SUFFIX", "LoadedScenario", "Mark", "Replay", "ReplayEvent", "ReplaySnapshot",
    "ScenarioError", "ScenarioInfo", "ServiceFrame", "Verdict", "load_scenario",
    "parse_duration", "parse_moment", "scenario_files", "scenario_info", "timeline_marks",
]

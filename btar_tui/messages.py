"""Typed messages that thread workers post to the app and its screens.

Workers never touch widgets: they post one of these (``post_message`` is thread-safe) and the
handlers, on the UI thread, update the screen.
"""

from __future__ import annotations

from pathlib import Path

from textual.message import Message

from btar_tui.views import CostData, DetailData, EventView
from engine.api import ForkOutcome, ServiceStatus
from engine.model import Region, RestoreWindow
from engine.restore import PlanChanged, RestorePlan
from simulator.replay_api import Mark, ReplaySnapshot, Verdict


class StatusRefreshed(Message):
    """The status of every service was read."""

    def __init__(self, statuses: list[ServiceStatus],
                 health: dict[str, tuple[int, str]] | None = None) -> None:
        super().__init__()
        self.statuses = statuses
        #: service -> (worst level of `btar check`: 1 warning, 2 critical; its first message)
        self.health = health or {}


class SyncStarted(Message):
    """A replication pass of one service began."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service


class CopyProgressed(Message):
    """One more copy finished: copies done and started so far (from LiveDriver.on_copy)."""

    def __init__(self, service: str, done: int, total: int, bytes_done: int,
                 bytes_total: int) -> None:
        super().__init__()
        self.service = service
        self.done = done
        self.total = total
        self.bytes_done = bytes_done
        self.bytes_total = bytes_total


class SyncFinished(Message):
    """A sync of every replicable service finished; ``problems`` name what went wrong that
    the status does not keep (a sync that could not run), ``faults`` count what it does."""

    def __init__(self, summary: str, problems: list[str], faults: int = 0) -> None:
        super().__init__()
        self.summary = summary
        self.problems = problems
        self.faults = faults


class ActionFailed(Message):
    """An engine call was refused or failed; ``message`` is str(BtarError)."""

    def __init__(self, action: str, message: str, exit_code: int = 1) -> None:
        super().__init__()
        self.action = action
        self.message = message
        self.exit_code = exit_code


class ActionSucceeded(Message):
    """A management action (enable, change region, disable) went through."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__()
        self.action = action
        self.message = message


class DetailLoaded(Message):
    def __init__(self, data: DetailData) -> None:
        super().__init__()
        self.data = data


class EventsLoaded(Message):
    def __init__(self, events: list[EventView]) -> None:
        super().__init__()
        self.events = events


class CostLoaded(Message):
    """The cost report of the additional regions for one period."""

    def __init__(self, data: CostData) -> None:
        super().__init__()
        self.data = data


class RegionsOffered(Message):
    """The qualifying regions of a service (rule 2), each with whether it is configured."""

    def __init__(self, offered: list[tuple[Region, bool]], current: str | None) -> None:
        super().__init__()
        self.offered = offered
        self.current = current


class ForkProgressed(Message):
    """``done`` of ``total`` objects of a fetch batch are fetched and verified."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__()
        self.done = done
        self.total = total


class ForkFinished(Message):
    def __init__(self, outcome: ForkOutcome, into: Path) -> None:
        super().__init__()
        self.outcome = outcome
        self.into = into


class WindowsLoaded(Message):
    """The restorable window of each region of a service (the fork wizard's choices)."""

    def __init__(self, windows: list[RestoreWindow]) -> None:
        super().__init__()
        self.windows = windows


class ReplayStarted(Message):
    """A scenario file was loaded and its world built, at virtual time zero (again after a
    restart, with the same seed); ``marks`` are its timeline entries in time order."""

    def __init__(self, name: str, seed: int, duration: float, command: str,
                 marks: tuple[Mark, ...] = ()) -> None:
        super().__init__()
        self.name = name
        self.seed = seed
        self.duration = duration
        self.command = command
        self.marks = marks


class ReplaySeeking(Message):
    """Going back to ``target`` (virtual seconds): the run restarted and is at ``at``."""

    def __init__(self, target: float, at: float, duration: float) -> None:
        super().__init__()
        self.target = target
        self.at = at
        self.duration = duration


class ReplayJumped(Message):
    """A jump to the next timeline entry stopped at ``t`` where ``marks`` started; no
    marks: there was none left, the replay did not move."""

    def __init__(self, t: float, marks: tuple[Mark, ...]) -> None:
        super().__init__()
        self.t = t
        self.marks = marks


class ReplayAdvanced(Message):
    """The replay moved (or was asked to show another lag period): what the API shows now."""

    def __init__(self, snapshot: ReplaySnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class ReplayFinished(Message):
    """The replay reached the end of the scenario (or crashed): every verdict."""

    def __init__(self, verdicts: list[Verdict], command: str, crashed: str | None,
                 events: int, virtual_seconds: float, wall_seconds: float) -> None:
        super().__init__()
        self.verdicts = verdicts
        self.command = command
        self.crashed = crashed
        self.events = events
        self.virtual_seconds = virtual_seconds
        self.wall_seconds = wall_seconds


class ReplayInvalid(Message):
    """The scenario file is invalid; ``problems`` are ``file:line: key: message`` lines."""

    def __init__(self, path: str, problems: list[str]) -> None:
        super().__init__()
        self.path = path
        self.problems = problems


class WizardPlanned(Message):
    """The plan for one choice (or why there is none) and the region's current window."""

    def __init__(self, request: int, window: RestoreWindow, plan: RestorePlan | None,
                 refusal: str, throughput: float = 0.0, measured: bool = False) -> None:
        super().__init__()
        self.request = request
        self.window = window
        self.plan = plan
        self.refusal = refusal
        self.throughput = throughput
        self.measured = measured


class PlanStale(Message):
    """The confirmed plan no longer held when the run was about to start: nothing ran.
    ``window`` is the region's window now."""

    def __init__(self, error: PlanChanged, window: RestoreWindow) -> None:
        super().__init__()
        self.error = error
        self.window = window

"""The command palette (ctrl+p): the actions of the current screen and service first, then
those of the whole app, then the other services' — leaving out what the engine would refuse."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen

from btar_tui.screens.detail import DetailScreen
from btar_tui.screens.help import key_display, section_for
from btar_tui.screens.services import ServicesScreen
from engine.api import ServiceStatus
from engine.model import REPLICABLE_TYPES, RegionRole

if TYPE_CHECKING:
    from btar_tui.app import BtarApp

#: added to the match score of the current screen's and service's commands, so that among
#: equally good matches they come first ("fork" in the detail of orders: "Fork: orders")
FIRST_BONUS = 0.5


@dataclass(frozen=True)
class Command:
    title: str
    help: str
    callback: Callable[[], object]
    #: of the current screen or service: listed before the others
    first: bool = False


#: (action, title, help before the service's name) of the per-service commands
SERVICE_ACTIONS = (
    ("open", "Open service", "backups, windows, lag and events of"),
    ("enable", "Enable additional region", "start replicating"),
    ("change", "Change region", "move the additional region of"),
    ("disable", "Disable replication", "stop replicating"),
    ("fork", "Fork", "restore latest or a point in time of"),
)


def offered(status: ServiceStatus, action: str) -> bool:
    """Whether the engine would accept ``action`` for the service: only PostgreSQL and MySQL
    get an additional region or a fork (rule 1), enable only when none is set, change only
    when one is (rule 8), disable only while replicating (rule 7)."""
    replicable = status.type in REPLICABLE_TYPES
    enabled = status.additional_region is not None
    replicating = any(region.role in (RegionRole.SECONDARY, RegionRole.PREVIOUS)
                      for region in status.regions)
    return {"open": True, "enable": replicable and not enabled,
            "change": replicable and enabled, "disable": replicable and replicating,
            "fork": replicable}[action]


def service_commands(app: BtarApp, status: ServiceStatus, *, first: bool = False,
                     opened: bool = False) -> list[Command]:
    """The actions the engine would accept for one service; ``opened``: its detail is the
    current screen (no "Open service")."""
    callbacks: dict[str, Callable[[str], None]] = {
        "open": app.open_service, "enable": app.open_enable, "change": app.open_change,
        "disable": app.open_disable, "fork": app.open_fork}
    return [Command(f"{title}: {status.name}", f"{text} {status.name}",
                    partial(callbacks[action], status.name), first)
            for action, title, text in SERVICE_ACTIONS
            if offered(status, action) and not (opened and action == "open")]


def screen_commands(app: BtarApp, screen: Screen[object]) -> list[Command]:
    """The current screen's own keys that the key map offers as commands (tabs, sorting,
    the replay's controls...), run on that screen."""
    section = section_for(type(screen).__name__)
    if section is None:
        return []
    return [Command(key.command, f"{key_display(key)}: {key.meaning}",
                    partial(app.run_action, key.action, screen), True)
            for key in section.keys if key.command and key.action]


def app_commands(app: BtarApp) -> list[Command]:
    section = section_for("BtarApp")
    assert section is not None
    found = [Command(key.command, f"{key_display(key)}: {key.meaning}",
                     partial(app.run_action, key.action))
             for key in section.keys if key.command and key.action]
    return [*found,
            Command("Cost of the additional regions",
                    "$ (services): bytes stored and copied per region, priced", app.action_cost),
            Command("Replay a scenario",
                    "r (services): run a scenario file in the simulator and watch it",
                    app.action_replay)]


def current_service(screen: Screen[object]) -> str | None:
    if isinstance(screen, DetailScreen):
        return screen.service
    if isinstance(screen, ServicesScreen):
        return screen.highlighted_service()
    return None


def commands(app: BtarApp, screen: Screen[object] | None = None) -> list[Command]:
    """Every command for the palette opened over ``screen`` (default: the app's current
    one), in the order they are listed."""
    screen = screen or app.screen
    service = current_service(screen)
    found: list[Command] = []
    status = app.status_of(service) if service else None
    if status is not None:
        found += service_commands(app, status, first=True,
                                  opened=isinstance(screen, DetailScreen))
    found += screen_commands(app, screen)
    found += app_commands(app)
    for other in app.statuses:
        if other.name != service:
            found += service_commands(app, other)
    return found


class BtarCommands(Provider):
    """Searches :func:`commands` with the palette's fuzzy matcher."""

    @property
    def btar_app(self) -> BtarApp:
        return cast("BtarApp", self.app)

    def _commands(self) -> list[Command]:
        return commands(self.btar_app, self.screen)

    async def discover(self) -> Hits:
        for command in self._commands():
            yield DiscoveryHit(command.title, command.callback, help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._commands():
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(score + (FIRST_BONUS if command.first else 0.0),
                          matcher.highlight(command.title), command.callback,
                          text=command.title, help=command.help)

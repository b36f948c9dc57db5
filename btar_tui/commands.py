"""The command palette: every action of the TUI by name (ctrl+p)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from btar_tui.app import BtarApp

Command = tuple[str, str, Callable[[], object]]


def commands(app: BtarApp) -> list[Command]:
    """(title, help, callback) for every action; per-service actions once per service."""
    found: list[Command] = [
        ("Sync now", "one replication pass of every service", app.action_sync_now),
        ("Toggle auto-sync", "replicate continuously, or stop", app.action_toggle_auto_sync),
        ("Event log", "replication events and management actions", app.action_event_log),
        ("Cost of the additional regions", "bytes stored and copied per region, priced",
         app.action_cost),
        ("Help", "keys and the rules of the feature", app.action_help),
        ("Replay a scenario", "run a scenario file in the simulator and watch it",
         app.action_replay),
    ]
    per_service = (
        ("Open service", "backups, windows, lag and events of", app.open_service),
        ("Enable additional region", "start replicating", app.open_enable),
        ("Change region", "move the additional region of", app.open_change),
        ("Disable replication", "stop replicating", app.open_disable),
        ("Fork", "restore latest or a point in time of", app.open_fork),
    )
    for status in app.statuses:
        for title, text, action in per_service:
            found.append((f"{title}: {status.name}", f"{text} {status.name}",
                          partial(action, status.name)))
    return found


class BtarCommands(Provider):
    """Searches :func:`commands` with the palette's fuzzy matcher."""

    @property
    def btar_app(self) -> BtarApp:
        return cast("BtarApp", self.app)

    async def discover(self) -> Hits:
        for title, text, callback in commands(self.btar_app):
            yield DiscoveryHit(title, callback, help=text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, text, callback in commands(self.btar_app):
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, text=title, help=text)

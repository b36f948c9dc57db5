"""The btar TUI application and the entry points the CLI calls (``btar tui``, ``btar demo``)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from textual.app import App
from textual.binding import Binding
from textual.signal import Signal
from textual.timer import Timer

from btar_tui import workers
from btar_tui.bridge import Bridge
from btar_tui.commands import BtarCommands
from btar_tui.demo_feed import DemoFeed
from btar_tui.format import duration, when
from btar_tui.messages import (
    ActionFailed,
    CopyProgressed,
    StatusRefreshed,
    SyncFinished,
    SyncStarted,
)
from btar_tui.screens.cost import CostScreen
from btar_tui.screens.detail import DetailScreen
from btar_tui.screens.disable_dialog import DisableDialog
from btar_tui.screens.events import EventLogScreen
from btar_tui.screens.fork import ForkWizard
from btar_tui.screens.help import HelpScreen
from btar_tui.screens.region_dialog import RegionDialog
from btar_tui.screens.replay import ReplayScreen
from btar_tui.screens.scenario_picker import Choice, ScenarioPicker
from btar_tui.screens.services import ServicesScreen
from btar_tui.sync import sync_all
from btar_tui.views import SyncView, read_status
from engine.api import ServiceStatus
from engine.demo import create_demo
from engine.errors import BtarError
from engine.model import RegionRole
from engine.units import byte_size


class BtarApp(App[int]):
    """Watch and manage replication; every engine call runs in a worker via the bridge.

    By default nothing runs on its own (tests stay deterministic): ``auto_sync`` replicates
    every that many seconds, ``sync_on_start`` syncs once after the first paint,
    ``watch_every`` re-reads the status (for a ``btar sync`` running elsewhere), and
    ``exit_after`` quits after that many seconds.
    """

    # Absolute, so a subclass defined elsewhere (tests, embedders) still finds the styles.
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "btar"
    COMMANDS = App.COMMANDS | {BtarCommands}
    # Shown after the screen's own keys: "? Help" and "q Quit" stay within 80 columns on
    # every screen (a screen hides its less used keys); the key map is screens.help.KEYMAP.
    BINDINGS = [
        Binding("s", "sync_now", "Sync"),
        Binding("a", "toggle_auto_sync", "Auto-sync"),
        Binding("l", "event_log", "Events"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, bridge: Bridge, *, auto_sync: float | None = None,
                 sync_on_start: bool = False, watch_every: float | None = None,
                 exit_after: float | None = None) -> None:
        super().__init__()
        self.bridge = bridge
        self.statuses: list[ServiceStatus] = []
        #: service -> (level, message) of its worst `btar check` problem
        self.health: dict[str, tuple[int, str]] = {}
        self.sync_view = SyncView()
        self.auto_sync = auto_sync is not None
        self.auto_sync_interval = auto_sync or bridge.poll_interval
        self.sync_on_start = sync_on_start
        self.watch_every = watch_every
        self.exit_after = exit_after
        self.syncing = False
        self._auto_timer: Timer | None = None
        #: published on the UI thread after each status read / sync progress change
        self.status_signal: Signal[list[ServiceStatus]] = Signal(self, "status")
        self.sync_signal: Signal[SyncView] = Signal(self, "sync")

    def on_mount(self) -> None:
        self._update_sub_title()
        self.push_screen(ServicesScreen())
        # The first paint happens before any engine call: status and sync come from workers.
        self.refresh_status()
        if self.sync_on_start:
            self.action_sync_now()
        self._auto_timer = self.set_interval(self.auto_sync_interval, self._auto_tick,
                                             pause=not self.auto_sync)
        if self.watch_every:
            self.set_interval(self.watch_every, self._watch_tick)
        if self.exit_after is not None:
            self.set_timer(self.exit_after, lambda: self.exit(0))

    def _update_sub_title(self) -> None:
        auto = f"auto-sync every {duration(self.auto_sync_interval)}" if self.auto_sync \
            else "auto-sync off"
        self.sub_title = f"{self.bridge.config_path.name} · {auto}"

    # -- engine work in workers --------------------------------------------------------------

    def refresh_status(self) -> None:
        bridge = self.bridge
        workers.start(self, "status", lambda: self.post_message(
            StatusRefreshed(*bridge.call(read_status))), exclusive=True)

    def action_sync_now(self) -> None:
        if self.syncing:
            self.notify("a sync is already running", severity="warning")
            return
        self.syncing = True
        workers.start(self, "sync", lambda: sync_all(self.bridge, self.post_message))

    def _auto_tick(self) -> None:
        if not self.syncing:
            self.action_sync_now()

    def _watch_tick(self) -> None:
        if not self.syncing:
            self.refresh_status()

    # -- messages from workers ---------------------------------------------------------------

    def on_status_refreshed(self, message: StatusRefreshed) -> None:
        self.statuses = message.statuses
        self.health = message.health
        self.status_signal.publish(message.statuses)

    def _publish_sync(self, view: SyncView) -> None:
        self.sync_view = view
        self.sync_signal.publish(view)

    def on_sync_started(self, message: SyncStarted) -> None:
        self._publish_sync(SyncView(True, message.service, line=f"syncing {message.service}…"))

    def on_copy_progressed(self, message: CopyProgressed) -> None:
        self._publish_sync(SyncView(
            True, message.service, message.done, message.total, message.bytes_done,
            message.bytes_total,
            f"syncing {message.service}: {message.done}/{message.total} objects, "
            f"{byte_size(message.bytes_done)} of {byte_size(message.bytes_total)}"))

    def on_sync_finished(self, message: SyncFinished) -> None:
        self.syncing = False
        line = f"last sync {when(self.bridge.now())}: {message.summary}"
        if message.faults:
            # Shown by the problems banner for as long as they last (not a toast per sync).
            line += f"; {message.faults} problem{'s' if message.faults != 1 else ''}"
        if message.problems:
            self.notify("\n".join(message.problems), title="sync", severity="warning")
        self._publish_sync(SyncView(False, line=line))

    def on_action_failed(self, message: ActionFailed) -> None:
        if message.action == "sync":
            self.syncing = False
            self._publish_sync(SyncView(False, line=f"sync failed: {message.message}"))
        self.notify(message.message, title=message.action, severity="error")

    # -- navigation and dialogs --------------------------------------------------------------

    def status_of(self, name: str) -> ServiceStatus | None:
        return next((s for s in self.statuses if s.name == name), None)

    def open_service(self, name: str) -> None:
        if isinstance(self.screen, DetailScreen):
            if self.screen.service != name:
                self.switch_screen(DetailScreen(name))  # one detail on the stack at a time
            return
        self.push_screen(DetailScreen(name))

    def _after_action(self, result: str | None) -> None:
        if result:
            self.notify(result)
        self.refresh_status()

    def open_enable(self, name: str) -> None:
        self.push_screen(RegionDialog(name, "enable"), self._after_action)

    def open_change(self, name: str) -> None:
        self.push_screen(RegionDialog(name, "change"), self._after_action)

    def open_disable(self, name: str) -> None:
        status = self.status_of(name)
        regions = [r.region for r in status.regions
                   if r.role in (RegionRole.SECONDARY, RegionRole.PREVIOUS)] if status else []
        self.push_screen(DisableDialog(name, regions), self._after_action)

    def open_fork(self, name: str) -> None:
        self.push_screen(ForkWizard(name), self._after_action)

    def action_toggle_auto_sync(self) -> None:
        self.auto_sync = not self.auto_sync
        if self._auto_timer is not None:
            if self.auto_sync:
                self._auto_timer.resume()
            else:
                self._auto_timer.pause()
        self._update_sub_title()
        every = duration(self.auto_sync_interval)
        self.notify(f"auto-sync on, every {every}" if self.auto_sync else "auto-sync off")
        if self.auto_sync:
            self._auto_tick()

    def action_event_log(self) -> None:
        if not isinstance(self.screen, EventLogScreen):
            self.push_screen(EventLogScreen())

    def action_cost(self) -> None:
        if not isinstance(self.screen, CostScreen):
            self.push_screen(CostScreen())

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_replay(self) -> None:
        """Pick a scenario file, then replay it in the simulator."""
        self.push_screen(ScenarioPicker(), self._replay_chosen)

    def _replay_chosen(self, choice: Choice | None) -> None:
        if choice is not None:
            self.open_replay(*choice)

    def open_replay(self, path: str, seed: int | None = None) -> None:
        self.push_screen(ReplayScreen(path, seed))


# -- entry points ----------------------------------------------------------------------------

def run_tui(config_path: Path) -> int:
    """Open the TUI on an existing configuration; returns the exit code."""
    try:
        bridge = Bridge.open(config_path)
    except BtarError as error:
        sys.stderr.write(f"btar: {error}\n")
        return error.exit_code
    app = BtarApp(bridge, watch_every=bridge.poll_interval)
    try:
        app.run()
    finally:
        bridge.close()
    return app.return_code or 0


def run_demo_tui(root: Path | None, *, interval: float, duration: float | None) -> int:
    """Build a demo world (in ``root`` or a temporary folder), produce backups in a thread
    and open the TUI replicating live every ``interval`` seconds; quit after ``duration``
    seconds, or when the user does."""
    holder = tempfile.TemporaryDirectory(prefix="btar-demo-") if root is None else None
    base = Path(holder.name) if holder else root
    assert base is not None
    feed: DemoFeed | None = None
    bridge: Bridge | None = None
    try:
        config = create_demo(base)
        feed = DemoFeed(base, interval)
        feed.start()
        bridge = Bridge.open(config, actor="btar demo")
        app = BtarApp(bridge, auto_sync=interval, sync_on_start=True, exit_after=duration)
        app.run()
        if root is not None:
            sys.stdout.write(f"btar demo: world kept under {base.resolve()}\n"
                             f"  btar --config {config} status\n")
        return app.return_code or 0
    except BtarError as error:
        sys.stderr.write(f"btar: {error}\n")
        return error.exit_code
    finally:
        if feed is not None:
            feed.stop()
        if bridge is not None:
            bridge.close()
        if holder is not None:
            holder.cleanup()

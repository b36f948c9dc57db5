"""Command palette, help, event log, auto-sync with the demo producer, the bridge, and the
import contract of the front end."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from textual.command import CommandList, CommandPalette
from textual.notifications import SeverityLevel
from textual.widgets import DataTable, Static, TabbedContent

from btar_tui.app import BtarApp, run_tui
from btar_tui.bridge import Bridge
from btar_tui.commands import commands
from btar_tui.demo_feed import DemoFeed
from btar_tui.screens.detail import DetailScreen
from btar_tui.screens.events import EventLogScreen
from btar_tui.screens.fork import ForkWizard
from btar_tui.screens.help import HelpScreen
from btar_tui.screens.services import ServicesScreen
from engine.api import Btar
from engine.demo import create_demo
from engine.errors import Unreachable
from tests.tui.conftest import SIZE, AppPilot, make_app, run_async, settle


async def run_palette_command(pilot: AppPilot, app: BtarApp, typed: str) -> None:
    await pilot.press("ctrl+p")
    await settle(pilot)
    assert isinstance(app.screen, CommandPalette)
    await pilot.press(*typed)
    await pilot.pause(0.3)  # the palette searches in a task
    await pilot.press("enter")
    await settle(pilot)


@run_async
async def test_palette_opens_the_event_log(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run_palette_command(pilot, app, "event")
        assert isinstance(app.screen, EventLogScreen)
        table = app.screen.query_one(DataTable)
        messages = [str(table.get_row_at(i)[4]) for i in range(table.row_count)]
        assert messages.count("additional backup region enabled") == 3
        await pilot.press("escape")
        assert isinstance(app.screen, ServicesScreen)


@run_async
async def test_palette_runs_per_service_actions(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run_palette_command(pilot, app, "fork: orders")
        assert isinstance(app.screen, ForkWizard)
        assert app.screen.service == "orders"


def titles(app: BtarApp) -> list[str]:
    return [command.title for command in commands(app, app.screen)]


@run_async
async def test_palette_hides_actions_the_engine_would_refuse(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        found = titles(app)
        # sessions is a redis service (rule 1): it can only be looked at.
        assert [t for t in found if t.endswith(": sessions")] == ["Open service: sessions"]
        assert [t for t in found if t.endswith(": orders")] == [
            "Open service: orders", "Change region: orders", "Disable replication: orders",
            "Fork: orders"]  # enabled already: no enable
        synced.call(lambda b: b.disable("orders", keep=True, delete=False, confirmed=True))
        app.refresh_status()
        await settle(pilot)
        assert [t for t in titles(app) if t.endswith(": orders")] == [
            "Open service: orders", "Enable additional region: orders", "Fork: orders"]
        # What the palette lists when searched.
        await pilot.press("ctrl+p")
        await settle(pilot)
        await pilot.press(*"able: orders")
        await pilot.pause(0.3)
        listed = app.screen.query_one(CommandList)
        prompts = [str(listed.get_option_at_index(i).prompt)
                   for i in range(listed.option_count)]
        assert any("Enable additional region: orders" in p for p in prompts)
        assert not any("Disable replication: orders" in p for p in prompts)


@run_async
async def test_palette_follows_the_screen(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        # Services: the highlighted service's actions, then the screen's own commands.
        found = titles(app)
        assert found[:6] == ["Open service: billing", "Change region: billing",
                             "Disable replication: billing", "Fork: billing",
                             "Filter services", "Clear the filter"]
        assert {"Sort by the next column", "Reverse the sort", "Sync now"} <= set(found)
        await pilot.press("down", "down", "enter")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        # The detail: its service's actions first (it is open already), then its tabs.
        found = titles(app)
        assert found[:6] == ["Change region: orders", "Disable replication: orders",
                             "Fork: orders", "Show the backups", "Show the lag chart",
                             "Show this service's events"]
        assert "Open service: orders" not in found
        assert "Filter services" not in found
        assert "Open service: billing" in found
        await run_palette_command(pilot, app, "show the lag")
        assert isinstance(app.screen, DetailScreen)
        assert app.screen.query_one(TabbedContent).active == "lag-tab"
        # Among equal matches ("Fork: <every service>") this service's comes first.
        await run_palette_command(pilot, app, "fork")
        assert isinstance(app.screen, ForkWizard)
        assert app.screen.service == "orders"


@run_async
async def test_help_lists_keys_and_the_rules(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text", Static).render())
        assert "Rules of the feature" in text
        assert "8. A new region starts fresh" in text
        assert "ctrl+p" in text
        await pilot.press("escape")
        assert isinstance(app.screen, ServicesScreen)


@run_async
async def test_live_demo_replicates_new_backups_with_auto_sync(tmp_path: Path) -> None:
    config = create_demo(tmp_path / "live")
    feed = DemoFeed(tmp_path / "live", interval=0.2)
    bridge = Bridge.open(config)
    app = BtarApp(bridge, auto_sync=0.3, sync_on_start=True)
    feed.start()
    try:
        async with app.run_test(size=SIZE) as pilot:
            deadline = time.monotonic() + 15
            seen = 0
            while time.monotonic() < deadline:
                await pilot.pause(0.2)
                orders = next((s for s in app.statuses if s.name == "orders"), None)
                published = orders.regions[1].items.get("available", 0) if orders else 0
                if feed.segments >= 3 and published >= 39 + 3:
                    seen = published
                    break
            assert seen, "the secondary never caught up with the demo producer"
            assert app.auto_sync
            assert "auto-sync every" in app.sub_title
            await pilot.press("a")
            assert not app.auto_sync
            assert "auto-sync off" in app.sub_title
            await settle(pilot)
    finally:
        feed.stop()
        bridge.close()


@run_async
async def test_exit_after_quits_on_its_own(synced: Bridge) -> None:
    app = make_app(synced, exit_after=0.3)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(1.0)
    assert app.return_code == 0


def test_bridge_serialises_engine_calls(synced: Bridge) -> None:
    inside = 0
    overlaps: list[int] = []

    def work(_: object) -> None:
        nonlocal inside
        inside += 1
        overlaps.append(inside)
        time.sleep(0.01)
        inside -= 1

    threads = [threading.Thread(target=lambda: synced.call(work)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == [1] * 8


class RecordingApp(BtarApp):
    """Records notifications (what the user is told) instead of only toasting them."""

    def __init__(self, bridge: Bridge) -> None:
        super().__init__(bridge)
        self.told: list[tuple[str, str]] = []

    def notify(self, message: str, *, title: str = "",
               severity: SeverityLevel = "information", timeout: float | None = None,
               markup: bool = True) -> None:
        self.told.append((severity, message))
        super().notify(message, title=title, severity=severity,
                       timeout=timeout, markup=markup)


@run_async
async def test_engine_errors_become_notifications_not_tracebacks(
        synced: Bridge, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_sync(self: Btar, names: object = None) -> list[object]:
        raise Unreachable("aws-eu-central-1", "", "connection refused")

    def broken_status(self: Btar) -> list[object]:
        raise RuntimeError("catalog exploded")

    app = RecordingApp(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        monkeypatch.setattr(Btar, "sync", broken_sync)
        await pilot.press("s")
        await settle(pilot)
        assert not app.syncing
        assert ("warning", "orders: aws-eu-central-1: connection refused") in [
            (severity, line) for severity, text in app.told for line in text.splitlines()]
        monkeypatch.setattr(Btar, "status", broken_status)
        app.refresh_status()
        await settle(pilot)
        assert ("error", "unexpected error: RuntimeError: catalog exploded") in app.told
        assert app.is_running


def test_run_tui_reports_a_bad_configuration(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert run_tui(tmp_path / "missing.toml") == 2
    assert capsys.readouterr().err.startswith("btar: ")

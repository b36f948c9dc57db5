"""The fork wizard: region choice, live validation against the window, plan, run."""

from __future__ import annotations

import json

from textual.widgets import Button, Input, ProgressBar, RadioButton, Select, Static

from btar_tui.app import BtarApp
from btar_tui.bridge import Bridge
from btar_tui.screens.fork import ForkWizard
from btar_tui.screens.services import ServicesScreen
from tests.tui.conftest import SIZE, AppPilot, make_app, run_async, settle


async def open_wizard(pilot: AppPilot, app: BtarApp) -> ForkWizard:
    await settle(pilot)
    await pilot.press("down", "down", "f")  # orders
    await settle(pilot)
    wizard = app.screen
    assert isinstance(wizard, ForkWizard)
    return wizard


def plan_text(wizard: ForkWizard) -> str:
    return str(wizard.query_one("#plan", Static).render())


async def point_in_time(pilot: AppPilot, wizard: ForkWizard, typed: str) -> None:
    """Choose "point in time" with the keyboard, then paste the time (typing it key by key
    is slow in Pilot; the validation on each key press is tested with the final "Z")."""
    await pilot.press("tab", "right", "enter")
    assert wizard.query_one("#pitr", RadioButton).value
    target = wizard.query_one("#target", Input)
    assert target.has_focus
    target.insert_text_at_cursor(typed)
    await settle(pilot)


@run_async
async def test_latest_is_planned_from_the_secondary(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, app)
        assert wizard.query_one("#fork-region", Select).value == "aws-eu-central-1"
        text = plan_text(wizard)
        assert "restore to   2026-01-15T12:00:00Z (latest) in aws-eu-central-1" in text
        assert "base backup  base/20260115T120000Z" in text
        assert "estimate" in text
        assert "data loss    0s" in text
        assert not wizard.query_one("#run", Button).disabled


@run_async
async def test_a_target_outside_the_window_is_refused_with_the_window(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, app)
        await point_in_time(pilot, wizard, "2026-01-15T08:00:00Z")
        text = plan_text(wizard)
        assert text.startswith("refused by rule 5: 2026-01-15T08:00:00Z is outside the "
                               "restorable window of aws-eu-central-1")
        assert "2026-01-15T09:00:00Z .. 2026-01-15T12:00:00Z" in text
        assert wizard.query_one("#run", Button).disabled


@run_async
async def test_a_malformed_time_is_explained_and_a_good_one_planned(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, app)
        await point_in_time(pilot, wizard, "2026-01-15T11:00:00")
        assert "has no time zone" in plan_text(wizard)
        assert wizard.query_one("#run", Button).disabled
        await pilot.press("Z")
        await settle(pilot)
        text = plan_text(wizard)
        assert "restore to   2026-01-15T11:00:00Z in aws-eu-central-1" in text
        assert "base backup  base/20260115T103000Z" in text
        assert "log segments 6: log/1/0000000019 .. log/1/0000000024" in text
        assert not wizard.query_one("#run", Button).disabled


@run_async
async def test_a_secondary_never_synced_has_no_window(bridge: Bridge) -> None:
    app = make_app(bridge)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, app)
        assert plan_text(wizard) == ("refused by rule 5: aws-eu-central-1 holds no complete "
                                     "base backup yet, so nothing can be restored")


@run_async
async def test_fork_latest_runs_with_progress_and_lays_out_the_restore(
        synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, app)
        assert wizard.query_one("#into", Input).value == "forks/orders-20260115T120100Z"
        await pilot.click("#run")
        await settle(pilot)
        into = synced.config_dir / "forks" / "orders-20260115T120100Z"
        text = plan_text(wizard)
        assert text.startswith(f"Fork ready: {into}")
        assert "restore point 2026-01-15T12:00:00Z; fetched 3 objects" in text
        assert "state.json" in text
        bar = wizard.query_one("#fork-bar", ProgressBar)
        assert bar.display
        assert bar.percentage == 1.0
        assert wizard.query_one("#run", Button).disabled
        await pilot.press("escape")
        assert isinstance(app.screen, ServicesScreen)
    assert json.loads((into / "state.json").read_text())  # the key-value state restored
    assert json.loads((into / "fork.json").read_text())["state"] == "ready"

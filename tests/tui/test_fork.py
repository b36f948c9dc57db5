"""The fork wizard: region choice, live validation against the window, plan, run."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from textual.widgets import Button, Input, ProgressBar, RadioButton, Select, Static

from btar_tui.app import BtarApp
from btar_tui.bridge import Bridge
from btar_tui.clock import FixedClock
from btar_tui.screens.fork import ForkWizard, temporary_demo_world
from btar_tui.screens.services import ServicesScreen
from engine.demo import demo_producers
from engine.errors import BadInput
from engine.model import parse_iso
from engine.restore import PlanChanged
from tests.tui.conftest import (
    APP_NOW,
    DEMO_NOW,
    SIZE,
    AppPilot,
    copy_world,
    freeze_world,
    make_app,
    run_async,
    settle,
)

REGION = "aws-eu-central-1"
WINDOW = "2026-01-15T09:00:00Z .. 2026-01-15T12:00:00Z"
#: a time with a fraction of a second, or the CLI's flag: neither may reach the user
LEAKS = re.compile(r"\d{2}:\d{2}:\d{2}\.\d|--latest")


async def open_wizard(pilot: AppPilot, app: BtarApp) -> ForkWizard:
    await settle(pilot)
    await pilot.press("down", "down", "f")  # orders
    await settle(pilot)
    wizard = app.screen
    assert isinstance(wizard, ForkWizard)
    return wizard


def plan_text(wizard: ForkWizard) -> str:
    return str(wizard.query_one("#plan", Static).render())


def window_line(wizard: ForkWizard) -> str:
    return str(wizard.query_one("#fork-window", Static).render())


async def choose_point_in_time(pilot: AppPilot, wizard: ForkWizard) -> None:
    """Choose "point in time" with the keyboard: the target gets the focus."""
    await pilot.press("tab", "right", "enter")
    assert wizard.query_one("#pitr", RadioButton).value
    assert wizard.query_one("#target", Input).has_focus
    await settle(pilot)


async def point_in_time(pilot: AppPilot, wizard: ForkWizard, typed: str) -> None:
    """Choose "point in time", then replace the suggested time by pasting ``typed`` (typing it
    key by key is slow in Pilot; the validation on each key press is tested with a "Z")."""
    await choose_point_in_time(pilot, wizard)
    target = wizard.query_one("#target", Input)
    target.clear()
    target.insert_text_at_cursor(typed)
    await settle(pilot)


def withdraw(bridge: Bridge, item_id: str) -> None:
    """Retention takes an item out of the region (as a prune running elsewhere would)."""
    bridge.call(lambda b: b.catalog.withdraw_items("orders", REGION, [item_id], APP_NOW,
                                                   "retention"))


@run_async
async def test_latest_is_planned_from_the_secondary(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, app)
        assert wizard.query_one("#fork-region", Select).value == REGION
        text = plan_text(wizard)
        assert f"restore to   2026-01-15T12:00:00Z (latest) in {REGION}" in text
        assert "base backup  base/20260115T120000Z" in text
        assert "estimate" in text
        assert "data loss    0s" in text
        assert not wizard.query_one("#run", Button).disabled
        assert not wizard.query_one("#fork-window", Static).display  # latest: no time to pick


@run_async
async def test_point_in_time_shows_the_window_and_suggests_a_time_inside_it(
        synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, app)
        await choose_point_in_time(pilot, wizard)
        # Before anything is typed: the window, and a time inside it, already planned.
        assert wizard.query_one("#fork-window", Static).display
        assert window_line(wizard) == f"restorable {WINDOW}"
        suggested = wizard.query_one("#target", Input).value
        assert suggested == "2026-01-15T11:55:00Z"
        window = synced.call(lambda b: b.window("orders", REGION))
        assert window.covers(parse_iso(suggested))
        assert f"restore to   2026-01-15T11:55:00Z in {REGION}" in plan_text(wizard)
        assert not wizard.query_one("#run", Button).disabled
        # Back to latest and again: the suggestion stays, a typed time is kept.
        target = wizard.query_one("#target", Input)
        target.clear()
        target.insert_text_at_cursor("2026-01-15T10:00:00Z")
        await pilot.press("shift+tab", "left", "enter", "right", "enter")
        await settle(pilot)
        assert target.value == "2026-01-15T10:00:00Z"
        assert "restore to   2026-01-15T10:00:00Z" in plan_text(wizard)


@run_async
async def test_a_target_outside_the_window_is_refused_with_the_window(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, app)
        await point_in_time(pilot, wizard, "2026-01-15T08:00:00Z")
        text = plan_text(wizard)
        assert text == (f"refused by rule 5: 2026-01-15T08:00:00Z is outside the restorable "
                        f"window of {REGION} ({WINDOW}); pick a time inside it or choose the "
                        "latest point")
        assert not LEAKS.search(text)
        assert wizard.query_one("#run", Button).disabled
        # Enter on a refusal runs nothing.
        await pilot.press("enter")
        await settle(pilot)
        assert wizard.summary is None
        assert not (synced.config_dir / "forks").exists()


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
        assert f"restore to   2026-01-15T11:00:00Z in {REGION}" in text
        assert "base backup  base/20260115T103000Z" in text
        assert "log segments 6: log/1/0000000019 .. log/1/0000000024" in text
        assert not wizard.query_one("#run", Button).disabled


@run_async
async def test_a_secondary_never_synced_has_no_window(bridge: Bridge) -> None:
    app = make_app(bridge)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, app)
        assert plan_text(wizard) == (f"refused by rule 5: {REGION} holds no complete "
                                     "base backup yet, so nothing can be restored")
        await choose_point_in_time(pilot, wizard)
        assert window_line(wizard) == "restorable nothing restorable yet"
        assert wizard.query_one("#target", Input).value == ""  # nothing to suggest


@run_async
async def test_fork_latest_runs_with_progress_and_lays_out_the_restore(
        synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, app)
        assert wizard.query_one("#into", Input).value == "forks/orders-20260115T120100Z"
        assert wizard.plan is not None
        planned = len(wizard.plan.objects)
        assert f"to fetch     {planned} objects" in plan_text(wizard)
        await pilot.click("#run")
        await settle(pilot)
        into = synced.config_dir / "forks" / "orders-20260115T120100Z"
        text = plan_text(wizard)
        assert text.startswith(f"Fork ready in {into}\n")
        assert (f"restored to 2026-01-15T12:00:00Z (the latest point when planned) in "
                f"{REGION}, as planned\n") in text
        # What ran is what was shown: every planned object, none more.
        assert f"objects: {planned} of {planned} planned, {planned} fetched" in text
        assert "state.json" in text
        # What next: the demo's data has no server to start; where it is and how to read it.
        state = into / "state.json"
        assert text.endswith(f"Next steps\n• read the data at 2026-01-15T12:00:00Z: cat {state}")
        assert "btar demo deletes" not in text  # a world of the user's own is kept
        assert not LEAKS.search(text)
        bar = wizard.query_one("#fork-bar", ProgressBar)
        assert bar.display
        assert bar.percentage == 1.0
        assert wizard.query_one("#run", Button).disabled
        into_row = wizard.query_one("#into", Input).parent
        assert into_row is not None
        assert not into_row.display  # the result took the form's place
        await pilot.press("escape")
        assert isinstance(app.screen, ServicesScreen)
    assert json.loads(state.read_text())  # the key-value state restored
    assert json.loads((into / "fork.json").read_text())["state"] == "ready"


@run_async
async def test_enter_in_the_target_runs_the_plan_shown(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, app)
        await choose_point_in_time(pilot, wizard)
        shown = wizard.plan
        assert shown is not None
        assert shown.effective_target == parse_iso("2026-01-15T11:55:00Z")
        await pilot.press("enter")  # in the target field, as a user confirms a typed time
        await settle(pilot)
        text = plan_text(wizard)
        assert text.startswith("Fork ready in ")
        assert "restored to 2026-01-15T11:55:00Z (the chosen point)" in text
        count = len(shown.objects)
        assert f"objects: {count} of {count} planned, {count} fetched" in text
    into = synced.config_dir / "forks" / "orders-20260115T120100Z"
    ran = json.loads((into / "fork.json").read_text())["plan"]
    assert ran["effective_target"] == "2026-01-15T11:55:00Z"
    assert (ran["base_backup"], ran["objects"]) == (shown.base_id, len(shown.objects))


@run_async
async def test_the_plan_confirmed_runs_even_if_the_window_grew(synced: Bridge) -> None:
    """Latest is the latest point when the plan was shown: a segment copied meanwhile does
    not move the target nor add objects."""
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, app)
        shown = wizard.plan
        assert shown is not None
        world = synced.config_dir
        for producer in demo_producers(world):
            producer.resume()
            producer.segment(DEMO_NOW + timedelta(minutes=5))
        freeze_world(world, DEMO_NOW + timedelta(minutes=1))
        synced.call(lambda b: b.sync())
        assert synced.call(lambda b: b.window("orders", REGION)).end == \
            DEMO_NOW + timedelta(minutes=5)
        await pilot.click("#run")
        await settle(pilot)
        text = plan_text(wizard)
        assert "restored to 2026-01-15T12:00:00Z (the latest point when planned)" in text
        count = len(shown.objects)
        assert f"objects: {count} of {count} planned, {count} fetched" in text


@run_async
async def test_a_plan_made_stale_is_refused_and_the_new_plan_shown(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, app)
        assert "base backup  base/20260115T120000Z" in plan_text(wizard)
        withdraw(synced, "base/20260115T120000Z")  # after the plan was shown
        await pilot.click("#run")
        await settle(pilot)
        text = plan_text(wizard)
        assert text.startswith("The plan you confirmed no longer holds: base backup "
                               f"base/20260115T120000Z is no longer restorable in {REGION} "
                               "(it is deleting). Nothing was fetched.\n"
                               "New plan, Fork runs this one:\n")
        assert "base backup  base/20260115T103000Z" in text
        assert wizard.summary is None
        into = synced.config_dir / "forks" / "orders-20260115T120100Z"
        assert not into.exists()  # nothing was written for the stale plan
        # The new plan, now shown, is the one the next confirmation runs.
        shown = wizard.plan
        assert shown is not None
        assert shown.base_id == "base/20260115T103000Z"
        run = wizard.query_one("#run", Button)
        assert not run.disabled
        # The new plan leaves the focus on Fork: Enter confirms it. A button ignores presses
        # while it still shows the last one (0.2 s): a person cannot be that fast, a test can.
        assert app.focused is run
        for _ in range(40):
            if not run.has_class("-active"):
                break
            await pilot.pause(0.05)
        await pilot.press("enter")
        await settle(pilot)
        count = len(shown.objects)
        assert f"objects: {count} of {count} planned, {count} fetched" in plan_text(wizard)
    assert json.loads((into / "fork.json").read_text())["plan"]["base_backup"] == \
        "base/20260115T103000Z"


@run_async
async def test_a_stale_plan_with_no_replacement_is_refused(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, app)
        await point_in_time(pilot, wizard, "2026-01-15T09:10:00Z")
        assert "base backup  base/20260115T090000Z" in plan_text(wizard)
        withdraw(synced, "base/20260115T090000Z")
        await pilot.press("enter")
        await settle(pilot)
        text = plan_text(wizard)
        assert text == (
            "The plan you confirmed no longer holds: base backup base/20260115T090000Z is no "
            f"longer restorable in {REGION} (it is deleting). Nothing was fetched.\n"
            "refused by rule 5: 2026-01-15T09:10:00Z is outside the restorable window of "
            f"{REGION} (2026-01-15T10:30:00Z .. 2026-01-15T12:00:00Z); pick a time inside it "
            "or choose the latest point")
        assert window_line(wizard) == "restorable 2026-01-15T10:30:00Z .. 2026-01-15T12:00:00Z"
        assert wizard.query_one("#run", Button).disabled
        assert not wizard.query_one("#target", Input).disabled  # the user picks again
    assert not (synced.config_dir / "forks").exists()


@run_async
async def test_the_demo_says_its_forks_go_when_it_quits(
        tmp_path: Path, templates: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """`btar demo` builds its world in a temporary folder removed on quit: the result says
    so, with the path, instead of the fork vanishing without a word."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    world = tmp_path.resolve() / "btar-demo-x1y2"
    config = copy_world(templates["synced"], world)
    assert temporary_demo_world(world) == world
    bridge = Bridge.open(config, clock=FixedClock(APP_NOW), actor="tui test")
    try:
        app = make_app(bridge)
        async with app.run_test(size=SIZE) as pilot:
            wizard = await open_wizard(pilot, app)
            await pilot.click("#run")
            await settle(pilot)
            text = plan_text(wizard)
            assert (f"btar demo deletes its temporary world {world}, this fork included, "
                    "when you quit") in text
            assert "btar demo --dir DIR" in text
    finally:
        bridge.close()


def test_the_engine_runs_only_the_plan_it_is_given_for_its_own_request(
        synced: Bridge, tmp_path: Path) -> None:
    """Btar.fork(plan=...) refuses a plan made for another request, and a plan that no
    longer holds before writing anything, naming what planning now gives."""
    latest = synced.call(lambda b: b.plan_fork("orders", REGION))
    at = parse_iso("2026-01-15T11:00:00Z")
    with pytest.raises(BadInput, match="the plan given restores orders in "
                       f"{REGION} to the latest point, not orders in {REGION} to "
                       "2026-01-15T11:00:00Z"):
        synced.call(lambda b: b.fork("orders", REGION, at, tmp_path / "a", plan=latest))
    withdraw(synced, latest.base_id)
    with pytest.raises(PlanChanged) as raised:
        synced.call(lambda b: b.fork("orders", REGION, None, tmp_path / "b", plan=latest))
    assert raised.value.replacement is not None
    assert raised.value.replacement.base_id == "base/20260115T103000Z"
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()

"""Enable, change region and disable dialogs, with the refusals of the rules."""

from __future__ import annotations

from textual.widgets import Button, Input, OptionList, RadioButton, Static

from btar_tui.app import BtarApp
from btar_tui.bridge import Bridge
from btar_tui.screens.disable_dialog import DisableDialog
from btar_tui.screens.region_dialog import RegionDialog
from btar_tui.screens.services import ServicesScreen
from tests.tui.conftest import SIZE, AppPilot, make_app, run_async, settle

ROWS = {"billing": 0, "inventory": 1, "orders": 2, "sessions": 3}


async def open_dialog(pilot: AppPilot, app: BtarApp, service: str, key: str) -> object:
    await settle(pilot)
    await pilot.press(*["down"] * ROWS[service], key)
    await settle(pilot)
    return app.screen


def options(dialog: RegionDialog) -> dict[str, bool]:
    """Offered region id -> usable."""
    found = dialog.query_one("#regions", OptionList)
    return {str(found.get_option_at_index(i).id): not found.get_option_at_index(i).disabled
            for i in range(found.option_count)}


def state_of(app: BtarApp, name: str) -> str:
    return next(s.state for s in app.statuses if s.name == name)


@run_async
async def test_enable_on_a_redis_service_is_refused_in_the_dialog(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_dialog(pilot, app, "sessions", "e")
        assert isinstance(dialog, RegionDialog)
        error = str(dialog.query_one("#dialog-error", Static).render())
        assert error.startswith("refused by rule 1: sessions is a redis service")
        assert dialog.query_one("#confirm", Button).disabled
        assert options(dialog) == {}
        await pilot.press("escape")
        assert isinstance(app.screen, ServicesScreen)


@run_async
async def test_only_regions_of_the_same_provider_are_offered(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_dialog(pilot, app, "orders", "e")
        assert isinstance(dialog, RegionDialog)
        offered = options(dialog)
        assert offered
        assert all(region.startswith("aws-") for region in offered)
        assert "aws-eu-west-1" not in offered  # the primary itself (rule 2)
        assert "google-europe-north1" not in offered  # configured, but another provider
        # the current additional region and regions without a location cannot be picked
        assert not any(offered.values())
        assert dialog.query_one("#confirm", Button).disabled
        prompt = dialog.query_one("#regions", OptionList).get_option_at_index(0).prompt
        assert "km" in str(prompt)
        assert "current" in str(prompt)


@run_async
async def test_enable_then_sync_brings_the_service_in_sync(bridge: Bridge) -> None:
    bridge.call(lambda b: b.disable("orders", keep=True, delete=False, confirmed=True))
    app = make_app(bridge)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert state_of(app, "orders") == "disabled"
        dialog = await open_dialog(pilot, app, "orders", "e")
        assert isinstance(dialog, RegionDialog)
        assert options(dialog)["aws-eu-central-1"] is True
        assert not dialog.query_one("#confirm", Button).disabled
        await pilot.press("enter")  # the highlighted, usable region
        await settle(pilot)
        assert isinstance(app.screen, ServicesScreen)
        assert state_of(app, "orders") == "waiting for first sync"
        await pilot.press("s")
        await settle(pilot)
        assert state_of(app, "orders") == "in sync"


@run_async
async def test_change_region_offers_no_usable_region_without_a_location(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_dialog(pilot, app, "billing", "c")
        assert isinstance(dialog, RegionDialog)
        assert dialog.mode == "change"
        offered = options(dialog)
        assert all(region.startswith("google-") for region in offered)
        assert offered["google-europe-north1"] is False  # the current one
        hint = str(dialog.query_one("#region-hint", Static).render())
        assert "0 usable" in hint


@run_async
async def test_disable_delete_needs_the_name_typed_exactly(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_dialog(pilot, app, "orders", "d")
        assert isinstance(dialog, DisableDialog)
        confirm = dialog.query_one("#confirm", Button)
        name = dialog.query_one("#confirm-name", Input)
        assert not confirm.disabled
        assert name.disabled
        await pilot.press("down", "enter")  # choose "delete"
        assert dialog.query_one("#delete", RadioButton).value
        assert confirm.disabled
        assert not name.disabled
        assert name.has_focus
        await pilot.press(*"order")
        assert confirm.disabled
        await pilot.press("enter")  # Enter must not bypass the disabled button
        assert app.screen is dialog
        await pilot.press("s")
        assert not confirm.disabled
        await pilot.click("#confirm")
        await settle(pilot)
        assert isinstance(app.screen, ServicesScreen)
        assert state_of(app, "orders") == "disabled"
    secondary = synced.config_dir / "regions" / "aws-eu-central-1" / "orders"
    assert not [p for p in secondary.rglob("*") if p.is_file()]


@run_async
async def test_disable_keep_lists_the_copies_as_retained(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await open_dialog(pilot, app, "inventory", "d")
        await pilot.click("#confirm")
        await settle(pilot)
        status = next(s for s in app.statuses if s.name == "inventory")
        assert status.state == "disabled"
        assert [str(r.role) for r in status.regions] == ["primary", "retained"]


@run_async
async def test_disable_refusal_is_shown_in_the_dialog(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_dialog(pilot, app, "sessions", "d")
        await pilot.click("#confirm")
        await settle(pilot)
        assert app.screen is dialog
        error = str(dialog.query_one("#dialog-error", Static).render())
        assert error.startswith("refused by rule 7: sessions has no additional backup region")

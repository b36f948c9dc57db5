"""Enable, change region and disable dialogs, with the refusals of the rules."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from textual.widgets import Button, Input, OptionList, RadioButton, Static

from btar_tui.app import BtarApp
from btar_tui.bridge import Bridge
from btar_tui.clock import FixedClock
from btar_tui.screens.disable_dialog import DisableDialog
from btar_tui.screens.region_dialog import RegionDialog
from btar_tui.screens.services import ServicesScreen
from engine import rules
from engine.demo import DEMO_SPARE_REGIONS
from engine.regions import distance_km, get_region
from tests.tui.conftest import APP_NOW, SIZE, AppPilot, make_app, run_async, settle

ROWS = {"billing": 0, "inventory": 1, "orders": 2, "sessions": 3}


async def open_dialog(pilot: AppPilot, app: BtarApp, service: str, key: str) -> object:
    await settle(pilot)
    await pilot.press(*["down"] * ROWS[service], key)
    await settle(pilot)
    return app.screen


def options(dialog: RegionDialog) -> dict[str, bool]:
    """Offered region id -> usable, in the order listed."""
    found = dialog.query_one("#regions", OptionList)
    listed = [str(found.get_option_at_index(i).id) for i in range(found.option_count)]
    assert listed == list(dialog.reasons)
    return {region: not dialog.reasons[region] for region in listed}


def screen_lines(app: BtarApp) -> list[str]:
    """The screen as plain text, one string per row (no colour, no style)."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def screen_words(app: BtarApp) -> str:
    """The screen's text with its rows joined (a dialog's line may wrap) and box edges gone."""
    return " ".join(line.strip(" │") for line in screen_lines(app))


def error_of(dialog: object) -> str:
    assert isinstance(dialog, RegionDialog | DisableDialog)
    return str(dialog.query_one("#dialog-error", Static).render())


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
        assert options(dialog) == {}
        await pilot.click("#confirm")  # does nothing, but says why, and stays
        await settle(pilot)
        assert app.screen is dialog
        assert error_of(dialog) == error
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
        # orders already replicates (rule 8): enable picks nothing, and says so
        assert not any(offered.values())
        listed = dialog.query_one("#regions", OptionList)
        current = listed.get_option_at_index(list(offered).index("aws-eu-central-1")).prompt
        assert "km" in str(current)
        assert "current" in str(current)
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is dialog
        assert "orders already replicates to aws-eu-central-1 (rule 8)" in error_of(dialog)


@run_async
async def test_enable_then_sync_brings_the_service_in_sync(bridge: Bridge) -> None:
    bridge.call(lambda b: b.disable("orders", keep=True, delete=False, confirmed=True))
    app = make_app(bridge)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert state_of(app, "orders") == "disabled"
        dialog = await open_dialog(pilot, app, "orders", "e")
        assert isinstance(dialog, RegionDialog)
        offered = options(dialog)
        assert offered["aws-eu-central-1"] is True
        assert offered["aws-eu-north-1"] is True
        # the farthest usable region is highlighted first
        assert dialog.highlighted_region() == "aws-eu-north-1"
        assert error_of(dialog) == ""
        await pilot.press("enter")  # the highlighted, usable region
        await settle(pilot)
        assert isinstance(app.screen, ServicesScreen)
        assert state_of(app, "orders") == "waiting for first sync"
        assert bridge.call(lambda b: b.additional_region("orders")) == "aws-eu-north-1"
        await pilot.press("s")
        await settle(pilot)
        assert state_of(app, "orders") == "in sync"


def test_the_demo_has_a_spare_region_with_a_location_per_provider(synced: Bridge) -> None:
    """btar init --demo and the TUI's demo share create_demo: its configuration names a
    location for a region no service uses, per provider, and the folder exists."""
    regions = tomllib.loads(synced.config_path.read_text(encoding="utf-8"))["regions"]
    assert DEMO_SPARE_REGIONS == ("aws-eu-north-1", "google-europe-north2")
    for region in DEMO_SPARE_REGIONS:
        assert regions[region] == f"file://{synced.config_dir / 'regions' / region}"
        assert (synced.config_dir / "regions" / region).is_dir()
    orders, billing = synced.call(
        lambda b: (b.offered_regions("orders"), b.offered_regions("billing")))
    assert (get_region("aws-eu-north-1"), True) in orders
    assert (get_region("google-europe-north2"), True) in billing


@run_async
async def test_change_region_in_the_demo_has_a_usable_target(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_dialog(pilot, app, "billing", "c")
        assert isinstance(dialog, RegionDialog)
        assert dialog.mode == "change"
        offered = options(dialog)
        assert all(region.startswith("google-") for region in offered)
        assert offered["google-europe-north1"] is False  # the current one
        assert [r for r, usable in offered.items() if usable] == ["google-europe-north2"]
        hint = str(dialog.query_one("#region-hint", Static).render())
        assert "1 usable" in hint
        assert dialog.highlighted_region() == "google-europe-north2"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ServicesScreen)
    assert synced.call(lambda b: b.additional_region("billing")) == "google-europe-north2"


@run_async
async def test_enter_or_the_button_on_a_greyed_row_explains_and_stays(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_dialog(pilot, app, "orders", "c")
        assert isinstance(dialog, RegionDialog)
        await pilot.press("home")  # the farthest region: no location configured
        greyed = dialog.highlighted_region()
        assert greyed is not None
        assert options(dialog)[greyed] is False
        why = f"{greyed} has no backup location in [regions]; add one to btar.toml"
        assert error_of(dialog) == why  # said as soon as the row is highlighted
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is dialog
        assert error_of(dialog) == why
        assert not dialog.query_one("#confirm", Button).disabled
        await pilot.click("#confirm")
        await settle(pilot)
        assert app.screen is dialog
        assert error_of(dialog) == why
        assert why in screen_words(app)  # on screen, not only stored
        dialog.query_one("#regions", OptionList).focus()  # the click focused the button
        listed = list(dialog.reasons)  # aws-eu-north-1: a location, not the current one
        await pilot.press("end", *["up"] * (len(listed) - 1 - listed.index("aws-eu-north-1")))
        assert dialog.highlighted_region() == "aws-eu-north-1"
        assert error_of(dialog) == ""
    assert synced.call(lambda b: b.additional_region("orders")) == "aws-eu-central-1"


@pytest.mark.parametrize("service", ["orders", "billing"])
@run_async
async def test_regions_are_listed_farthest_first_as_the_engine_offers(synced: Bridge,
                                                                       service: str) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_dialog(pilot, app, service, "c")
        assert isinstance(dialog, RegionDialog)
        engine_order = [r.id for r in rules.offered_regions(synced.call(
            lambda b: b.service(service)))]
        assert list(options(dialog)) == engine_order
        primary = get_region(synced.call(lambda b: b.service(service)).region)
        distances = [distance_km(primary, get_region(r)) for r in engine_order]
        assert distances == sorted(distances, reverse=True)
        assert "farthest first" in str(dialog.query_one("#region-hint", Static).render())


@pytest.mark.parametrize("size", [(120, 36), (80, 24)])
@pytest.mark.parametrize("service", ["billing", "orders"])
@run_async
async def test_no_region_row_wraps(synced: Bridge, size: tuple[int, int], service: str) -> None:
    app = make_app(synced)
    async with app.run_test(size=size) as pilot:
        dialog = await open_dialog(pilot, app, service, "c")
        assert isinstance(dialog, RegionDialog)
        listed = dialog.query_one("#regions", OptionList)
        assert listed.virtual_size.height == listed.option_count  # one line per region
        area = listed.content_region
        rows = [line[area.x:area.right] for line in screen_lines(app)[area.y:area.bottom]]
        assert len(rows) == min(area.height, listed.option_count)
        cut = 0
        for row in rows:  # every visible row is a whole region: id, distance, name
            region = row.split()[0]
            assert region in options(dialog), row
            assert " km " in row, row
            name = get_region(region).name
            assert name in row or ("…" in row and row.count("…") == 1), row
            cut += name not in row
        if size[0] >= 120:
            assert not cut  # the dialog widens to show whole names
        elif service == "billing":
            assert cut  # at 80 columns the long names are cut with an ellipsis, not wrapped


@run_async
async def test_the_chosen_disable_mode_is_visible_without_colour(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_dialog(pilot, app, "orders", "d")
        assert isinstance(dialog, DisableDialog)

        def marks() -> tuple[str, str]:
            text = "\n".join(screen_lines(app))
            keep = next(line for line in text.splitlines() if "keep them" in line)
            delete = next(line for line in text.splitlines() if "delete them" in line)
            return keep.split("keep them")[0][-4:-1], delete.split("delete them")[0][-4:-1]

        assert marks() == ("(•)", "( )")
        assert dialog.query_one("#keep", RadioButton).render().plain.startswith("(•) keep")
        await pilot.press("down", "enter")  # choose "delete"
        assert marks() == ("( )", "(•)")
        assert dialog.query_one("#delete", RadioButton).render().plain.startswith("(•) delete")


@run_async
async def test_the_confirmation_field_is_a_visible_input(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_dialog(pilot, app, "orders", "d")
        assert isinstance(dialog, DisableDialog)
        await pilot.press("down", "enter")  # choose "delete": the field takes the focus
        name = dialog.query_one("#confirm-name", Input)
        assert name.has_focus
        assert name.styles.border_top[0] == "tall"
        assert name.styles.border_bottom[0] == "tall"
        lines = screen_lines(app)
        box = name.region
        assert set(lines[box.y][box.x + 1:box.right - 1]) == {"▔"}  # its top edge
        assert set(lines[box.bottom - 1][box.x + 1:box.right - 1]) == {"▁"}  # its bottom
        assert "type orders to confirm the deletion" in lines[box.y + 1]


def with_retention(config: Path, service: str) -> None:
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace(
        f'name = "{service}"\n',
        f'name = "{service}"\nretention = {{ keep_count = 7, keep_age = "14d" }}\n'),
        encoding="utf-8")


@pytest.mark.parametrize("retention", [False, True])
@run_async
async def test_the_retention_sentence_shows_only_with_a_retention_policy(
        demo_config: Path, retention: bool) -> None:
    if retention:
        with_retention(demo_config, "orders")
    opened = Bridge.open(demo_config, clock=FixedClock(APP_NOW), actor="tui test")
    try:
        app = make_app(opened)
        async with app.run_test(size=SIZE) as pilot:
            dialog = await open_dialog(pilot, app, "orders", "d")
            assert isinstance(dialog, DisableDialog)
            note = dialog.query_one("#keep-note", Static)
            text = "\n".join(screen_lines(app))
            assert "until their retention runs out" not in text
            if retention:
                assert note.display
                assert str(note.render()) == (
                    "Kept copies: the retention policy of orders (keep 7 base backups, and any "
                    "younger than 14d) applies only while replicating; btar deletes none of them.")
                assert "retention policy of orders" in text
            else:
                assert not note.display
                assert "retention" not in text
    finally:
        opened.close()


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
        assert error_of(dialog) == "type orders exactly in the field above to confirm the deletion"
        await pilot.press(*"order")
        assert confirm.disabled
        await pilot.press("enter")  # Enter must not bypass the disabled button: it says why
        assert app.screen is dialog
        assert error_of(dialog) == "type orders exactly in the field above to confirm the deletion"
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

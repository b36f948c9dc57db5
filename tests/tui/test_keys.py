"""The keys: one key map (help, docs, palette) that matches the bindings of every screen, the
detail's tab keys and its `l`, and a footer that keeps `? Help` and `q Quit` at 80x24."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent
from textual.widgets._footer import FooterKey

import btar_tui.screens
from btar_tui.app import BtarApp
from btar_tui.bridge import Bridge
from btar_tui.screens.detail import DetailScreen
from btar_tui.screens.events import EventLogScreen
from btar_tui.screens.help import KEYMAP, HelpScreen, Section, key_display, keymap_markdown
from btar_tui.screens.services import ServicesScreen
from tests.tui.conftest import SIZE, AppPilot, make_app, run_async, settle

DOCS = Path(__file__).resolve().parents[2] / "docs" / "tui.md"


def screens_with_bindings() -> dict[str, type]:
    """Every screen of btar_tui that declares BINDINGS, and the app, by class name."""
    found: dict[str, type] = {"BtarApp": BtarApp}
    for info in pkgutil.iter_modules(btar_tui.screens.__path__):
        module = importlib.import_module(f"btar_tui.screens.{info.name}")
        for name, value in vars(module).items():
            if (isinstance(value, type) and issubclass(value, Screen)
                    and value.__module__ == module.__name__ and "BINDINGS" in vars(value)):
                found[name] = value
    return found


def bound(owner: type) -> set[tuple[str, str]]:
    """(key, action) of each key a class binds itself."""
    pairs: set[tuple[str, str]] = set()
    bindings: list[BindingType] = vars(owner)["BINDINGS"]
    for binding in bindings:
        keys, action = (binding.key, binding.action) if isinstance(binding, Binding) \
            else (binding[0], binding[1])
        pairs.update((key.strip(), action) for key in keys.split(","))
    return pairs


def documented(section: Section) -> set[tuple[str, str]]:
    return {(name, key.action) for key in section.keys if key.action is not None
            for name in key.keys.split(",")}


def test_the_key_map_matches_the_bindings_of_every_screen() -> None:
    classes = screens_with_bindings()
    app_keys = bound(BtarApp)
    covered = {name for section in KEYMAP for name in section.screens}
    assert set(classes) <= covered, f"screens with keys missing from KEYMAP: " \
        f"{set(classes) - covered}"
    for section in KEYMAP:
        for name in section.screens:
            assert name in classes, f"KEYMAP names {name}, which binds no keys"
            # A screen may bind an app key again only to keep it out of its footer.
            keys = {(key, action) for key, action in bound(classes[name])
                    if not (action.startswith("app.") and (key, action[4:]) in app_keys)}
            assert keys == documented(section), (
                f"{name}: bound but not in KEYMAP {keys - documented(section)}, "
                f"in KEYMAP but not bound {documented(section) - keys}")


def test_the_docs_hold_the_key_map() -> None:
    assert keymap_markdown() in DOCS.read_text(encoding="utf-8"), \
        "docs/tui.md differs from KEYMAP: paste keymap_markdown() between its keymap markers"


@run_async
async def test_the_help_shows_the_key_map(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        lines = str(app.screen.query_one("#help-text", Static).render()).splitlines()
        for section in KEYMAP:
            assert section.title in lines
            for key in section.keys:
                assert any(line.split() == [*key_display(key).split(), *key.meaning.split()]
                           for line in lines), key
        assert max(len(line) for line in lines) <= SIZE[0] - 6  # border, padding, scrollbar


def footer_shown(app: BtarApp) -> list[str]:
    """The footer's keys that are wholly on screen, left of the palette key."""
    footer = app.screen.query_one(Footer)
    keys = list(footer.query(FooterKey))
    palette = [key for key in keys if key.has_class("-command-palette")]
    limit = palette[0].region.x if palette else SIZE[0]
    return [f"{key.key_display} {key.description}".strip() for key in keys
            if key not in palette and key.region.width and key.region.right <= limit]


@run_async
async def test_footer_keeps_help_and_quit_at_80_columns(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert footer_shown(app) == ["/ Filter", "o Sort", "s Sync", "a Auto-sync",
                                     "l Events", "? Help", "q Quit"]
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        assert footer_shown(app) == ["esc Back", "1", "2", "3", "f Fork", "p Period",
                                     "s Sync", "? Help", "q Quit"]
        await pilot.press("escape", "l")
        await settle(pilot)
        assert isinstance(app.screen, EventLogScreen)
        assert footer_shown(app)[-2:] == ["? Help", "q Quit"]


async def open_orders(pilot: AppPilot, app: BtarApp) -> DetailScreen:
    await settle(pilot)
    await pilot.press("down", "down", "enter")
    await settle(pilot)
    screen = app.screen
    assert isinstance(screen, DetailScreen)
    assert screen.service == "orders"
    return screen


@run_async
async def test_number_keys_switch_the_detail_tabs(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_orders(pilot, app)
        tabs = screen.query_one(TabbedContent)
        assert tabs.active == "backups-tab"
        await pilot.press("2")
        assert tabs.active == "lag-tab"
        await pilot.press("3")
        assert tabs.active == "events-tab"
        assert screen.query_one("#events", DataTable).has_focus
        await pilot.press("1")
        assert tabs.active == "backups-tab"
        assert screen.query_one("#backups", DataTable).has_focus
        await pilot.press("a")  # the app's auto-sync key still works here, unlisted
        assert app.auto_sync
        await pilot.press("a")


@run_async
async def test_l_shows_the_services_events_in_the_detail_the_log_elsewhere(
        synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_orders(pilot, app)
        await pilot.press("l")
        await settle(pilot)
        assert app.screen is screen  # not the event log of every service
        assert screen.query_one(TabbedContent).active == "events-tab"
        events = screen.query_one("#events", DataTable)
        assert events.row_count == 1
        assert str(events.get_row_at(0)[2]) == "aws-eu-central-1"
        await pilot.press("escape")
        assert isinstance(app.screen, ServicesScreen)
        await pilot.press("l")
        await settle(pilot)
        assert isinstance(app.screen, EventLogScreen)
        table = app.screen.query_one(DataTable)
        assert {str(table.get_row_at(i)[2]) for i in range(table.row_count)} == {
            "billing", "inventory", "orders"}

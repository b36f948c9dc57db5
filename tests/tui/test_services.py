"""The services screen: states, filter, sort, opening the detail, syncing with progress, the
hint of kept copies, and columns fitted to the terminal."""

from __future__ import annotations

from dataclasses import replace

from rich.text import Text
from textual.widgets import DataTable, Input, Static

from btar_tui.app import BtarApp
from btar_tui.bridge import Bridge
from btar_tui.screens.detail import DetailScreen
from btar_tui.screens.services import ServicesScreen, fit_columns, matches, sort_statuses
from btar_tui.views import SyncView
from engine.api import ServiceState, ServiceStatus
from tests.tui.conftest import SIZE, make_app, run_async, settle

WIDE = (120, 24)


def labels(app: BtarApp) -> list[str]:
    table = app.screen.query_one("#services", DataTable)
    return [column.label.plain for column in table.ordered_columns]


def rows(app: BtarApp) -> list[list[str]]:
    table = app.screen.query_one("#services", DataTable)
    return [[str(c.plain if isinstance(c, Text) else c) for c in table.get_row_at(i)]
            for i in range(table.row_count)]


@run_async
async def test_lists_every_service_with_state_lag_and_window_end(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ServicesScreen)
        table = {r[0]: r for r in rows(app)}
        assert list(table) == ["billing", "inventory", "orders", "sessions"]
        # 80 columns: no room for the primary region (the detail shows it).
        assert labels(app) == ["SERVICE ▲", "TYPE", "STATE", "LAG", "WINDOW END", "ADDITIONAL"]
        assert table["orders"][1:] == ["pgsql", "in sync", "0s", "01-15 12:00:00",
                                       "aws-eu-central-1"]
        assert table["sessions"][1:4] == ["redis", "unsupported", "-"]
        assert table["billing"][5] == "google-europe-north1"
    async with make_app(synced).run_test(size=WIDE) as pilot:
        await settle(pilot)
        assert labels(pilot.app)[-1] == "PRIMARY"
        assert {r[0]: r[6] for r in rows(pilot.app)}["orders"] == "aws-eu-west-1"


@run_async
async def test_filter_narrows_and_escape_clears(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"google")
        assert [r[0] for r in rows(app)] == ["billing"]
        assert app.screen.query_one("#filter", Input).value == "google"
        await pilot.press("enter")  # back to the table; "s" must not be typed into the filter
        await pilot.press("escape")
        assert [r[0] for r in rows(app)] == ["billing", "inventory", "orders", "sessions"]
        await pilot.press("slash", *"redis")
        assert [r[0] for r in rows(app)] == ["sessions"]


@run_async
async def test_sort_by_key_and_by_clicking_a_header(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ServicesScreen)
        await pilot.press("o")  # name -> type
        assert screen.sort_column == "type"
        assert [r[1] for r in rows(app)] == ["mysql", "pgsql", "pgsql", "redis"]
        await pilot.press("o")  # type -> state
        assert [r[2] for r in rows(app)][-1] == "unsupported"
        # Clicking the SERVICE header sorts by name; clicking it again reverses.
        await pilot.click("#services", offset=(3, 0))
        assert screen.sort_column == "name"
        await pilot.click("#services", offset=(3, 0))
        assert [r[0] for r in rows(app)] == ["sessions", "orders", "inventory", "billing"]
        table = screen.query_one("#services", DataTable)
        assert "▼" in table.ordered_columns[0].label.plain


@run_async
async def test_enter_opens_the_detail_and_escape_returns(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("down", "down", "enter")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        assert app.screen.service == "orders"
        await pilot.press("escape")
        assert isinstance(app.screen, ServicesScreen)


@run_async
async def test_sync_copies_with_progress_and_refreshes(bridge: Bridge) -> None:
    app = make_app(bridge)
    views: list[SyncView] = []
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        # No restorable point in the additional region yet: what `btar check` calls critical.
        assert {r[0]: r[2] for r in rows(app)}["orders"] == "!! waiting for first sync"
        assert app.health["orders"][0] == 2
        app.sync_signal.subscribe(app, views.append, immediate=True)
        await pilot.press("s")
        await settle(pilot)
        states = {r[0]: r[2] for r in rows(app)}
        assert states == {"billing": "in sync", "inventory": "in sync", "orders": "in sync",
                          "sessions": "unsupported"}
        assert app.health == {}
    copying = [v for v in views if v.running and v.total]
    assert copying, "no copy progress reached the UI"
    assert any(v.done == v.total for v in copying)
    assert {v.service for v in copying} == {"billing", "inventory", "orders"}
    assert not views[-1].running
    assert "117 items published" in views[-1].line


@run_async
async def test_filter_words_must_all_match_each_any_field(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"aws sync")
        assert [r[0] for r in rows(app)] == ["inventory", "orders"]
        await pilot.press("escape", "slash", *"SQL aws")  # case-insensitive, any order
        assert [r[0] for r in rows(app)] == ["inventory", "orders"]
        await pilot.press("escape", "slash", *"postgresql google")
        assert [r[0] for r in rows(app)] == ["billing"]
        await pilot.press("escape", "slash", *"pgsql")  # the type as the table writes it
        assert [r[0] for r in rows(app)] == ["billing", "orders"]
        await pilot.press("escape", "slash", *"aws google")  # no service is on both
        assert rows(app) == []
        await pilot.press("escape", "slash", *"  ")  # blanks only: every service
        assert len(rows(app)) == 4


def status(name: str, lag: float | None, additional: str | None = "aws-eu-central-1"
           ) -> ServiceStatus:
    return ServiceStatus(name, "postgresql", "aws", "aws-eu-west-1", additional,
                         ServiceState.IN_SYNC if additional else ServiceState.DISABLED, lag,
                         None)


def test_missing_values_sort_last_in_both_directions() -> None:
    statuses = [status("a", 30.0), status("b", None, None), status("c", 600.0),
                status("d", None), status("e", 0.0)]
    ascending = [s.name for s in sort_statuses(statuses, "lag")]
    descending = [s.name for s in sort_statuses(statuses, "lag", reverse=True)]
    assert ascending == ["e", "a", "c", "b", "d"]
    assert descending == ["c", "a", "e", "b", "d"]
    assert [s.name for s in sort_statuses(statuses, "additional", reverse=True)][-1] == "b"
    assert not matches(statuses[0], "aws redis")
    assert matches(statuses[0], "eu-west  SYNC")


@run_async
async def test_reverse_sort_keeps_services_without_a_value_last(synced: Bridge) -> None:
    # Lags of 0s, 45s and 2m, and none (sessions, a redis service).
    lags = {"orders": 45.0, "billing": 120.0}
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.statuses = [replace(s, current_lag_seconds=lags.get(s.name, s.current_lag_seconds))
                        for s in app.statuses]
        screen = app.screen
        assert isinstance(screen, ServicesScreen)
        await pilot.press("o", "o", "o")  # name -> type -> state -> lag
        assert screen.sort_column == "lag"
        assert [r[0] for r in rows(app)] == ["inventory", "orders", "billing", "sessions"]
        await pilot.press("O")  # shift+o: reverse; "-" stays last
        assert screen.sort_reverse
        assert [r[0] for r in rows(app)] == ["billing", "orders", "inventory", "sessions"]
        assert labels(app)[3] == "LAG ▼"
        await pilot.press("O")
        assert [r[0] for r in rows(app)] == ["inventory", "orders", "billing", "sessions"]
        await pilot.press("o")  # the next column, ascending again
        assert screen.sort_column == "window"
        assert not screen.sort_reverse


@run_async
async def test_a_disabled_service_says_where_its_copies_were_kept(synced: Bridge) -> None:
    synced.call(lambda b: b.disable("orders", keep=True, delete=False, confirmed=True))
    app = make_app(synced)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        orders = {r[0]: r for r in rows(app)}["orders"]
        assert orders[2:4] == ["disabled (copies kept in aws-eu-central-1)", "-"]
        assert orders[5] == "-"  # no additional region any more
        await pilot.press("slash", *"disabled kept", "enter")
        assert [r[0] for r in rows(app)] == ["orders"]
        await pilot.press("enter")
        await settle(pilot)
        summary = str(app.screen.query_one("#detail-summary", Static).render())
        assert "disabled (copies kept in aws-eu-central-1)" in summary
    # At 80 columns the state is cut to fit, not the hint lost: the cell keeps it.
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#services", DataTable)
        assert sum(c.get_render_width(table) for c in table.ordered_columns) <= SIZE[0] - 1
        assert {r[0]: r[2] for r in rows(app)}["orders"].startswith("disabled (copies kept")


@run_async
async def test_columns_fit_80_columns_in_every_state(bridge: Bridge) -> None:
    """Before the first sync the states are long ("!! waiting for first sync"): the table
    still fits 80 columns (one left for a scrollbar) with the states whole, the additional
    regions cut; at 120 everything is whole, the primary region too."""
    app = make_app(bridge)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#services", DataTable)
        assert sum(c.get_render_width(table) for c in table.ordered_columns) <= SIZE[0] - 1
        widths = {str(c.key.value): c.width for c in table.ordered_columns}
        assert "primary" not in widths
        assert widths["state"] == len("!! waiting for first sync")
        assert widths["additional"] < len("google-europe-north1")
        await pilot.resize_terminal(*WIDE)
        await settle(pilot)
        table = app.screen.query_one("#services", DataTable)
        widths = {str(c.key.value): c.width for c in table.ordered_columns}
        assert widths["additional"] == len("google-europe-north1")
        assert widths["primary"] == len("google-europe-west1")
        assert sum(c.get_render_width(table) for c in table.ordered_columns) <= WIDE[0] - 1


def test_fit_columns_drops_the_primary_then_cuts_region_name_state() -> None:
    natural = {"name": 9, "type": 10, "state": 25, "lag": 3, "window": 14,
               "additional": 20, "primary": 19}
    assert fit_columns(natural, 200) == natural
    in_sync = {**natural, "state": 11}
    assert fit_columns(in_sync, 99) == {**in_sync, "primary": 18}  # cut a little: kept
    fitted = fit_columns(natural, 79)
    assert "primary" not in fitted
    assert sum(w + 2 for w in fitted.values()) == 79
    assert {k: fitted[k] for k in ("type", "lag", "window")} == {"type": 10, "lag": 3,
                                                                 "window": 14}
    # The additional region gives up width first, then the name, then the state.
    assert (fitted["additional"], fitted["name"], fitted["state"]) == (12, 9, 19)
    # Never below the minimums: the table then scrolls sideways.
    assert fit_columns(natural, 20) == {"name": 9, "type": 10, "state": 14, "lag": 3,
                                        "window": 14, "additional": 12}

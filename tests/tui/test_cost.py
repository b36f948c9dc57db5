"""The cost screen: bytes stored and copied per additional region, priced, per period."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

from textual.widgets import DataTable, Static
from textual.widgets._footer import FooterKey

from btar_tui.bridge import Bridge
from btar_tui.clock import FixedClock
from btar_tui.screens.cost import CostScreen
from btar_tui.screens.services import ServicesScreen
from engine.lag import Period
from tests.tui.conftest import APP_NOW, SIZE, AppPilot, make_app, run_async, settle
from tests.tui.test_app import run_palette_command


def rows(screen: CostScreen) -> list[list[str]]:
    table = screen.query_one(DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def header(screen: CostScreen) -> list[str]:
    return [str(column.label) for column in screen.query_one(DataTable).ordered_columns]


def plain(screen: CostScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def open_cost(pilot: AppPilot) -> CostScreen:
    await settle(pilot)
    await pilot.press("dollar_sign")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, CostScreen)
    return screen


@run_async
async def test_rows_total_and_note(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_cost(pilot)
        assert screen.period == Period.MONTH
        assert header(screen) == ["SERVICE", "REGION", "ROLE", "STORED", "USD/MO", "COPIED",
                                  "USD"]
        assert "copies in the last month" in screen.sub_title
        found = rows(screen)
        assert [(r[0], r[1], r[2]) for r in found] == [
            ("billing", "google-europe-north1", "secondary"),
            ("inventory", "aws-eu-central-1", "secondary"),
            ("orders", "aws-eu-central-1", "secondary")]
        assert screen.data is not None
        for row, line in zip(found, screen.data.lines, strict=True):
            assert line.bytes_stored > 0
            assert line.storage_cost_month > 0
            assert line.bytes_copied == line.bytes_stored  # every copy was made this month
            assert row[3] == row[5]
            assert row[3].endswith("KiB")
            assert row[4] == row[6] == "0.0000"  # a few KiB cost next to nothing
        assert plain(screen, "#cost-total") == (
            "total: 0.0000 USD/month stored · 0.0000 USD copied in the last month")
        assert "[cost] in the configuration" in plain(screen, "#cost-note")
        # Fits 80 columns: no horizontal scrolling.
        table = screen.query_one(DataTable)
        assert table.virtual_size.width <= SIZE[0]
        keys = sorted((key.region.x, key.region.right) for key in screen.query(FooterKey))
        assert all(left[1] <= right[0] for left, right in pairwise(keys))
        assert keys[-1][1] <= SIZE[0]
        await pilot.press("escape")
        assert isinstance(app.screen, ServicesScreen)


@run_async
async def test_period_switch_counts_only_the_copies_of_that_period(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(synced.clock, FixedClock)
        # Two hours after the sync: the copies fall in the last day, not the last hour.
        synced.clock.moment = APP_NOW + timedelta(hours=2)
        screen = await open_cost(pilot)
        await pilot.press("p")
        await settle(pilot)
        assert screen.period == Period.YEAR
        assert "last year" in screen.sub_title
        assert all(r[5] != "0 B" for r in rows(screen))
        await pilot.press("p")
        await settle(pilot)
        assert screen.period == Period.HOUR
        assert "last hour" in screen.sub_title
        hour = rows(screen)
        assert len(hour) == 3
        assert all(r[5] == "0 B" for r in hour)
        assert screen.data is not None
        assert all(line.copy_cost == 0 for line in screen.data.lines)
        assert all(r[3].endswith("KiB") for r in hour)  # still stored
        assert plain(screen, "#cost-total").endswith("0.0000 USD copied in the last hour")
        await pilot.press("p")
        await settle(pilot)
        assert screen.period == Period.DAY
        assert all(r[5] == r[3] for r in rows(screen))


@run_async
async def test_nothing_stored_before_the_first_sync(bridge: Bridge) -> None:
    app = make_app(bridge)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_cost(pilot)
        found = rows(screen)
        assert len(found) == 3
        assert all(r[3] == "0 B" for r in found)
        assert all(r[5] == "0 B" for r in found)


@run_async
async def test_palette_opens_the_cost_screen(synced: Bridge) -> None:
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run_palette_command(pilot, app, "cost of the")
        assert isinstance(app.screen, CostScreen)
        assert len(rows(app.screen)) == 3

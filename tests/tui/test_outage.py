"""A primary outage on screen: the services row says "primary unreachable" with the mark
`btar check` gives it, one banner line per failing region says how and why for as long as it
lasts, and the detail says the same."""

from __future__ import annotations

import shutil
from pathlib import Path

from textual.widgets import DataTable, Static

from btar_tui.bridge import Bridge
from btar_tui.screens.detail import DetailScreen
from engine.alerts import AlertsConfig
from engine.api import Btar
from tests.tui.conftest import SIZE, make_app, run_async, settle


@run_async
async def test_a_primary_outage_is_marked_and_explained(synced: Bridge) -> None:
    world = Path(synced.call(lambda b: str(b.storage("aws-eu-west-1").root))).parent.parent
    shutil.move(world / "regions" / "aws-eu-west-1", world / "away")

    def outage(btar: Btar) -> None:
        btar.alerts = AlertsConfig(primary_unreachable_warning=0)  # raised as soon as seen
        btar.sync()

    synced.call(outage)
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#services", DataTable)
        states = {str(table.get_row_at(i)[0]): table.get_row_at(i)[2].plain
                  for i in range(table.row_count)}
        assert states["orders"] == "! primary unreachable"
        assert states["inventory"] == "! primary unreachable"
        assert states["billing"] == "in sync"
        banner = app.screen.query_one("#problems", Static)
        lines = str(banner.render()).splitlines()
        assert banner.display
        assert [line.split(" since ")[0] for line in lines] == [
            "inventory: aws-eu-west-1 (primary) missing", "orders: aws-eu-west-1 (primary) missing"]
        assert all("the location folder does not exist" in line for line in lines)
        await pilot.press("down", "down", "enter")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        summary = str(app.screen.query_one("#detail-summary", Static).render())
        assert "primary unreachable since " in summary
        assert "aws-eu-west-1 (primary) missing since " in summary
        assert "the location folder does not exist" in summary
        await pilot.press("escape")
        shutil.move(world / "away", world / "regions" / "aws-eu-west-1")
        await pilot.press("s")  # mended: the next sync clears the banner
        await settle(pilot)
        assert not app.screen.query_one("#problems", Static).display

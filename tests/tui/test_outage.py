"""A primary outage on screen: the services row says "primary unreachable" with the mark
`btar check` gives it, and the detail says which region fails, how and why."""

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
        await pilot.press("down", "down", "enter")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        summary = str(app.screen.query_one("#detail-summary", Static).render())
        assert "primary unreachable since " in summary
        assert "aws-eu-west-1 (primary) missing since " in summary
        assert "the location folder does not exist" in summary

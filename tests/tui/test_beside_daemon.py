"""The TUI beside a `btar sync` daemon: it never replicates a catalog the daemon holds."""

from __future__ import annotations

from pathlib import Path

from btar_tui.app import BtarApp
from btar_tui.bridge import Bridge
from engine.catalog import CatalogLock
from tests.tui.conftest import SIZE, make_app, run_async, settle


def _published(app: BtarApp) -> int:
    return sum(region.items.get("available", 0) for status in app.statuses
               for region in status.regions[1:])


@run_async
async def test_sync_defers_to_a_daemon_holding_the_catalog(bridge: Bridge,
                                                          demo_config: Path) -> None:
    # What `btar sync` (the daemon) holds while it runs: the lock file beside the catalog.
    daemon = CatalogLock(demo_config.parent / "btar.sqlite")
    try:
        app = make_app(bridge)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("s")
            await settle(pilot)
            assert "not synced here: btar sync (pid" in app.sync_view.line
            assert "replicates this catalog" in app.sync_view.line
            assert _published(app) == 0  # nothing was copied beside the daemon
    finally:
        daemon.release()


@run_async
async def test_sync_holds_the_catalog_lock_while_it_copies(bridge: Bridge,
                                                          demo_config: Path) -> None:
    app = make_app(bridge)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        assert app.sync_view.line.startswith("last sync"), app.sync_view.line
        assert _published(app) > 0
    # Released afterwards: a daemon can start.
    CatalogLock(demo_config.parent / "btar.sqlite").release()

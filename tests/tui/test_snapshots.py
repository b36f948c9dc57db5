"""Snapshots (SVG) of the main views at 80x24, on the frozen demo world of conftest.

Regenerate after an intended change of the screens:
    .venv/bin/python -m pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from collections.abc import Callable

from btar_tui.bridge import Bridge
from tests.tui.conftest import SIZE, AppPilot, make_app, settle


def keys_then_settle(*keys: str) -> Callable[[AppPilot], object]:
    async def run_before(pilot: AppPilot) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run_before


def test_services_screen(synced: Bridge, snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(make_app(synced), terminal_size=SIZE, run_before=keys_then_settle())


def test_service_detail(synced: Bridge, snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(make_app(synced), terminal_size=SIZE,
                        run_before=keys_then_settle("down", "down", "enter"))


def test_service_detail_lag_tab(synced: Bridge, snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(make_app(synced), terminal_size=SIZE,
                        run_before=keys_then_settle("down", "down", "enter", "p"))


def test_fork_wizard(synced: Bridge, snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(make_app(synced), terminal_size=SIZE,
                        run_before=keys_then_settle("down", "down", "f"))


def test_enable_dialog(synced: Bridge, snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(make_app(synced), terminal_size=SIZE,
                        run_before=keys_then_settle("down", "down", "e"))

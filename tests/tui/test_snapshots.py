"""Snapshots (SVG) of the main views at 80x24 and at 120x36, on the frozen demo world of
conftest.

Regenerate after an intended change of the screens:
    .venv/bin/python -m pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from btar_tui.bridge import Bridge
from tests.tui.conftest import SIZE, AppPilot, make_app, settle

#: a roomier terminal: every column of the services table, the dialogs at their full width
WIDE = (120, 36)


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


@pytest.mark.parametrize("keys", [(), ("down", "down", "enter"), ("down", "down", "enter", "2"),
                                  ("down", "down", "f"), ("down", "down", "e")],
                         ids=["services", "detail", "lag-tab", "fork", "enable"])
def test_wide_terminal(synced: Bridge, snap_compare: Callable[..., bool],
                       keys: tuple[str, ...]) -> None:
    assert snap_compare(make_app(synced), terminal_size=WIDE, run_before=keys_then_settle(*keys))

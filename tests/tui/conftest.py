"""Fixtures for the TUI tests: a demo world frozen in time, a bridge, and a settle helper.

Everything shown must be the same on every run and every day: the demo is created at a fixed
moment, its primary files get that moment as modification time (the engine reads an item's
completion time from it), and the app's bridge runs on a fixed clock one minute later, so
every lag is exactly 60 s.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from btar_tui.app import BtarApp
from btar_tui.bridge import Bridge
from btar_tui.clock import FixedClock
from engine.demo import create_demo
from engine.runtime import WallClock

DEMO_NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
APP_NOW = DEMO_NOW + timedelta(minutes=1)
SIZE = (80, 24)
AppPilot = Pilot[int]


def freeze_world(root: Path, moment: datetime) -> None:
    stamp = moment.timestamp()
    for path in (root / "regions").rglob("*"):
        if path.is_file():
            os.utime(path, (stamp, stamp))


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two frozen demo worlds built once: "fresh" (additional regions enabled, nothing
    copied yet) and "synced" (after one sync). Tests get copies of them."""
    base = tmp_path_factory.mktemp("templates")
    with pytest.MonkeyPatch.context() as patch:
        # create_demo stamps its "enabled" events with the wall clock: pin it.
        patch.setattr(WallClock, "now", lambda self: DEMO_NOW)
        for kind in ("fresh", "synced"):
            create_demo(base / kind, now=DEMO_NOW)
            freeze_world(base / kind, DEMO_NOW)
    synced = Bridge.open(base / "synced" / "btar.toml", clock=FixedClock(APP_NOW))
    try:
        synced.call(lambda b: b.sync())
    finally:
        synced.close()
    return {kind: (base / kind).resolve() for kind in ("fresh", "synced")}


def copy_world(template: Path, target: Path) -> Path:
    """Copy a world (keeping file times) and point its configuration at the copy."""
    shutil.copytree(template, target)
    config = target / "btar.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(str(template), str(target)),
                      encoding="utf-8")
    return config


@pytest.fixture
def demo_config(tmp_path: Path, templates: dict[str, Path]) -> Path:
    """A demo world (4 services, 3 h of backups, additional regions enabled, not synced)."""
    return copy_world(templates["fresh"], tmp_path.resolve() / "world")


@pytest.fixture
def bridge(demo_config: Path) -> Iterator[Bridge]:
    opened = Bridge.open(demo_config, clock=FixedClock(APP_NOW), actor="tui test")
    yield opened
    opened.close()


@pytest.fixture
def synced(tmp_path: Path, templates: dict[str, Path]) -> Iterator[Bridge]:
    """A bridge on a world after one sync: every secondary holds the whole history."""
    config = copy_world(templates["synced"], tmp_path.resolve() / "world")
    opened = Bridge.open(config, clock=FixedClock(APP_NOW), actor="tui test")
    yield opened
    opened.close()


def make_app(bridge: Bridge, **options: Any) -> BtarApp:
    """Nothing runs on its own unless asked (auto-sync, sync on start): deterministic."""
    return BtarApp(bridge, **options)


async def settle(pilot: AppPilot, rounds: int = 20) -> None:
    """Wait until no worker runs and every message they posted has been handled."""
    for _ in range(rounds):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in pilot.app.workers):
            await pilot.pause()
            if not any(w.is_running for w in pilot.app.workers):
                return
    raise AssertionError("workers kept running")


def run_async(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test in a fresh event loop (no asyncio plugin is installed; pytest still
    sees the wrapped signature, so fixtures work)."""

    @functools.wraps(test)
    def runner(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return runner

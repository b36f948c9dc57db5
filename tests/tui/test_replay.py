"""The scenario replay view: pick a scenario, step it, play it, run it to the end and read
the verdicts; an invalid file shows its problems. And the stepping API under it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.text import Text
from textual.command import CommandPalette
from textual.widgets import DataTable, Input, OptionList, Static

from btar_tui.app import BtarApp
from btar_tui.bridge import Bridge
from btar_tui.screens.replay import ReplayScreen
from btar_tui.screens.scenario_picker import ScenarioPicker
from btar_tui.screens.services import ServicesScreen
from btar_tui.widgets.lag_chart import LagChart
from btar_tui.widgets.window_axis import WindowAxis
from simulator.replay import Replay
from simulator.runner import run_scenario
from simulator.scenario import load_scenario
from tests.simulation.builders import PASSING, tiny, write
from tests.tui.conftest import SIZE, AppPilot, make_app, run_async, settle

ROOT = Path(__file__).resolve().parents[2]
STEADY = "scenarios/steady-replication.btar.toml"


async def until(pilot: AppPilot, condition: Callable[[], bool], what: str,
                timeout: float = 10.0) -> None:
    """Wait for ``condition`` (the replay worker keeps running, so settle() cannot)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def plain(screen: ReplayScreen, selector: str) -> str:
    rendered = screen.query_one(selector, Static).render()
    return rendered.plain if isinstance(rendered, Text) else str(rendered)


def moved_past(screen: ReplayScreen, t: float) -> Callable[[], bool]:
    return lambda: screen.snapshot is not None and screen.snapshot.t > t


def lag_of(screen: ReplayScreen, service: str) -> str:
    table = screen.query_one("#replay-services", DataTable)
    return str(table.get_cell(service, "lag"))


@run_async
async def test_pick_step_play_and_run_a_scenario_to_its_verdicts(
        synced: Bridge, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the picker lists ./scenarios; the replay command stays relative
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("r")
        picker = app.screen
        assert isinstance(picker, ScenarioPicker)
        files = picker.query_one("#scenario-files", OptionList)
        names = [str(files.get_option_at_index(i).prompt) for i in range(files.option_count)]
        assert "steady-replication.btar.toml" in names
        files.highlighted = names.index("steady-replication.btar.toml")
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, ReplayScreen)
        assert screen.path == STEADY
        await until(pilot, lambda: screen.snapshot is not None, "the first snapshot")
        assert screen.snapshot is not None
        assert screen.snapshot.t == 0.0
        status = plain(screen, "#replay-status")
        assert status.startswith("T+00:00:00 of 08:00:00")
        assert "600x" in status
        assert "paused" in status
        table = screen.query_one("#replay-services", DataTable)
        assert [str(k.value) for k in table.rows] == ["orders", "shop"]

        # One journaled event: the clock may stay at zero, the journal moves.
        await pilot.press("n")
        await until(pilot, lambda: screen.snapshot is not None
                    and screen.snapshot.events_processed > 0, "a step")
        # One virtual minute at a time: the lag of orders appears, then more items are
        # measured on the lag chart.
        assert lag_of(screen, "orders") == "-"
        chart = screen.query_one(LagChart)
        minutes = 0

        async def minute() -> None:
            nonlocal minutes
            await pilot.press("m")
            await until(pilot, moved_past(screen, 60.0 * minutes), "a minute")
            minutes += 1

        while lag_of(screen, "orders") == "-" or chart.report is None:
            assert minutes < 40, "orders never got a lag"
            await minute()
        measured = chart.report.stats.count
        for _ in range(10):
            await minute()
        assert chart.report.stats.count > measured
        assert screen.snapshot is not None
        assert screen.snapshot.t == 60 * minutes
        assert plain(screen, "#replay-status").startswith(f"T+00:{minutes:02d}:00")
        axis = screen.query_one(WindowAxis).render().plain
        assert "aws-eu-west-1 primary" in axis
        assert "aws-eu-central-1 secondary" in axis
        assert "last op" in plain(screen, "#replay-events")

        # Faster, play a little, pause.
        await pilot.press("plus")
        assert "3600x" in plain(screen, "#replay-status")
        at = screen.snapshot.t
        await pilot.press("space")
        assert "playing" in plain(screen, "#replay-status")
        await until(pilot, moved_past(screen, at + 60), "playing")
        await pilot.press("space")
        assert "paused" in plain(screen, "#replay-status")

        # To the end: every expectation's verdict and the replay command.
        await pilot.press("e")
        await until(pilot, lambda: screen.finished is not None, "the end of the run")
        assert "finished" in plain(screen, "#replay-status")
        assert screen.snapshot is not None
        assert screen.snapshot.t == 8 * 3600
        verdicts = plain(screen, "#replay-verdict-text")
        assert verdicts.startswith("all 7 expectations hold")
        assert "replay: btar simulate scenarios/steady-replication.btar.toml --seed 1" \
            in verdicts
        for index in range(7):
            assert f"PASS expect[{index}] " in verdicts
        assert screen.query_one("#replay-verdicts").display
        assert not screen.query_one("#replay-body").display
        await pilot.press("v")
        assert screen.query_one("#replay-body").display
        await pilot.press("escape")
        assert isinstance(app.screen, ServicesScreen)


@run_async
async def test_an_invalid_scenario_shows_its_problems_without_crashing(
        synced: Bridge, tmp_path: Path) -> None:
    text = tiny(PASSING).replace('duration = "2h"', 'duration = "two hours"')
    path = write(tmp_path, text, "broken.btar.toml")
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("r")
        picker = app.screen
        assert isinstance(picker, ScenarioPicker)
        field = picker.query_one("#scenario-path", Input)
        field.value = str(path)
        field.focus()
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, ReplayScreen)
        await until(pilot, lambda: screen.invalid is not None, "the validation error")
        shown = plain(screen, "#replay-verdict-text")
        line = text.splitlines().index('duration = "two hours"') + 1
        assert f"{path}:{line}: duration: " in shown
        assert "nothing was run" in plain(screen, "#replay-status")
        await pilot.press("n", "m", "space", "e")  # nothing to move: no crash
        assert app.is_running
        await pilot.press("escape")
        assert isinstance(app.screen, ServicesScreen)


@run_async
async def test_the_palette_offers_the_replay(synced: Bridge) -> None:
    app: BtarApp = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await settle(pilot)
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"replay a scen")
        await pilot.pause(0.3)  # the palette searches in a task
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ScenarioPicker)
        await pilot.press("escape")
        assert isinstance(app.screen, ServicesScreen)


def test_a_replay_in_slices_is_the_run_of_btar_simulate(tmp_path: Path) -> None:
    faults = """
[[timeline]]
kind = "region_outage"
region = "aws-eu-central-1"
at = "40m"
until = "55m"
"""
    loaded = load_scenario(write(tmp_path, tiny(faults + PASSING, duration="90m")))
    whole = run_scenario(loaded, seed=3)
    replay = Replay(loaded, seed=3)
    for _ in range(25):
        replay.step()
    seen = []
    while not replay.finished:
        replay.advance(97.0)
        seen.append(replay.snapshot())  # reads between slices change nothing
    result = replay.result
    assert result is not None
    assert result.journal.text() == whole.journal.text()
    assert result.events == whole.events
    assert result.verdicts == whole.verdicts
    assert replay.replay_command == f"btar simulate {loaded.path} --seed 3"
    texts = [e.text for s in seen for e in s.events if e.source == "scenario"]
    assert "region outage aws-eu-central-1 starts" in texts
    assert "region outage aws-eu-central-1 ends" in texts
    assert seen[-1].finished
    assert seen[-1].t == 90 * 60

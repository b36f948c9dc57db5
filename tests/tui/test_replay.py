"""The scenario replay view: pick a scenario (by name and description), step it, play it,
jump to its faults, go back (restart, rewind, go to a time), run it to the end and read the
verdicts; an invalid file shows its problems. And the stepping API under it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.command import CommandPalette
from textual.widgets import DataTable, Footer, Input, OptionList, Static
from textual.widgets._footer import FooterKey

from btar_tui.app import BtarApp
from btar_tui.bridge import Bridge
from btar_tui.messages import ReplaySeeking
from btar_tui.screens.detail import DetailScreen
from btar_tui.screens.replay import (
    ReplayScreen,
    ReplayTimeline,
    clock,
    events_text,
    parse_goto,
    timeline_text,
)
from btar_tui.screens.scenario_picker import About, ScenarioPicker, clipped
from btar_tui.screens.services import ServicesScreen
from btar_tui.widgets.lag_chart import LagChart
from btar_tui.widgets.window_axis import WindowAxis
from simulator.replay_api import Mark, Replay, ReplaySnapshot, scenario_info, timeline_marks
from simulator.runner import run_scenario
from simulator.scenario import load_scenario
from simulator.scenario_files import leading_comment
from tests.simulation.builders import PASSING, tiny, write
from tests.tui.conftest import SIZE, AppPilot, make_app, run_async, settle

ROOT = Path(__file__).resolve().parents[2]
STEADY = "scenarios/steady-replication.btar.toml"
OUTAGES = "scenarios/outage-states.btar.toml"
#: a 90-minute scenario: an outage of the additional region from 40m to 55m, a fork at 70m
FAULTS = """
[[timeline]]
kind = "region_outage"
region = "aws-eu-central-1"
at = "40m"
until = "55m"

[[timeline]]
kind = "fork"
name = "late"
service = "orders"
at = "70m"
"""


async def until(pilot: AppPilot, condition: Callable[[], bool], what: str,
                timeout: float = 15.0) -> None:
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


def at_time(screen: ReplayScreen, t: float) -> Callable[[], bool]:
    """The screen shows virtual time ``t`` (and no longer a run going back to it)."""
    return lambda: (screen.snapshot is not None and screen.snapshot.t == t
                    and screen.seeking is None)


def lag_of(screen: ReplayScreen, service: str) -> str:
    table = screen.query_one("#replay-services", DataTable)
    return str(table.get_cell(service, "lag"))


def lines_of(widget: OptionList | ReplayTimeline) -> list[str]:
    """What a widget shows, row by row."""
    return [widget.render_line(y).text for y in range(widget.size.height)]


def told(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every notification from now on, as (title, message)."""
    seen: list[tuple[str, str]] = []
    notify = BtarApp.notify

    def recording(self: BtarApp, message: str, **options: Any) -> None:
        seen.append((str(options.get("title", "")), message))
        notify(self, message, **options)

    monkeypatch.setattr(BtarApp, "notify", recording)
    return seen


def footer_keys(screen: ReplayScreen | ServicesScreen) -> dict[str, str]:
    """The footer's keys: description -> action."""
    return {key.description: key.action for key in screen.query_one(Footer).query(FooterKey)}


async def open_replay(pilot: AppPilot, app: BtarApp, path: Path | str) -> ReplayScreen:
    app.open_replay(str(path))
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, ReplayScreen)
    await until(pilot, lambda: screen.snapshot is not None, "the first snapshot")
    return screen


async def minutes(pilot: AppPilot, screen: ReplayScreen, count: int) -> None:
    """``count`` times t (one virtual minute), each waited for."""
    for _ in range(count):
        assert screen.snapshot is not None
        then = screen.snapshot.t
        await pilot.press("t")
        await until(pilot, moved_past(screen, then), "a minute")


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
        names = [Path(str(files.get_option_at_index(i).id)).name
                 for i in range(files.option_count)]
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
        count = 0
        while lag_of(screen, "orders") == "-" or chart.report is None:
            assert count < 40, "orders never got a lag"
            await minutes(pilot, screen, 1)
            count += 1
        measured = chart.report.stats.count
        await minutes(pilot, screen, 10)
        count += 10
        assert chart.report.stats.count > measured
        assert screen.snapshot is not None
        assert screen.snapshot.t == 60 * count
        assert plain(screen, "#replay-status").startswith(f"T+00:{count:02d}:00")
        axis = screen.query_one(WindowAxis).render().plain
        assert "aws-eu-west-1 primary" in axis
        assert "aws-eu-central-1 secondary" in axis
        assert "last op" in events_text(screen.snapshot)

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
        await pilot.press("greater_than_sign")
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
        assert screen.query_one("#replay-verdict-panel").display
        assert not screen.query_one("#replay-charts").display
        await pilot.press("v")
        assert screen.query_one("#replay-charts").display
        await pilot.press("escape")
        assert isinstance(app.screen, ServicesScreen)


@run_async
async def test_restart_replays_the_same_run_from_t0(synced: Bridge, tmp_path: Path) -> None:
    path = write(tmp_path, tiny(FAULTS + PASSING, duration="90m"))
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_replay(pilot, app, path)
        await pilot.press("n", "n", "n")
        await minutes(pilot, screen, 12)
        first = screen.snapshot
        assert first is not None
        assert first.t == 12 * 60
        table_then = [screen.query_one(DataTable).get_row_at(0)]

        await pilot.press("0")
        await until(pilot, lambda: screen.snapshot is not None
                    and screen.snapshot.events_processed == 0, "the restart")
        assert plain(screen, "#replay-status").startswith("T+00:00:00")
        # The same moves again: the same state, seed, events and table.
        await pilot.press("n", "n", "n")
        await minutes(pilot, screen, 12)
        assert screen.snapshot == first
        assert [screen.query_one(DataTable).get_row_at(0)] == table_then
        assert "(seed 5)" in screen.sub_title

        # A restart after the end hides the verdicts and plays again.
        await pilot.press("greater_than_sign")
        await until(pilot, lambda: screen.finished is not None, "the end")
        await pilot.press("0")
        await until(pilot, lambda: screen.finished is None and screen.snapshot is not None
                    and screen.snapshot.t == 0, "the restart after the end")
        assert "paused" in plain(screen, "#replay-status")
        assert not screen.query_one("#replay-verdict-panel").display
        assert screen.query_one("#replay-charts").display


@run_async
async def test_next_fault_then_back_to_an_earlier_time(
        synced: Bridge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, tiny(FAULTS + PASSING, duration="90m"))
    progress: list[tuple[float, float]] = []
    shown = ReplayScreen.on_replay_seeking

    def seeking(self: ReplayScreen, message: ReplaySeeking) -> None:
        shown(self, message)
        assert self.seeking is not None
        progress.append(self.seeking)
        assert plain(self, "#replay-status").startswith(f"going back to {clock(self.seeking[0])}")

    monkeypatch.setattr(ReplayScreen, "on_replay_seeking", seeking)
    notes = told(monkeypatch)
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_replay(pilot, app, path)
        await minutes(pilot, screen, 10)
        ten = screen.snapshot
        assert ten is not None

        # j runs until the outage has started, and stops there.
        await pilot.press("j")
        await until(pilot, at_time(screen, 40 * 60), "the outage")
        assert screen.snapshot is not None
        assert plain(screen, "#replay-status").startswith("T+00:40:00")
        log = events_text(screen.snapshot).splitlines()
        assert log[1] == "T+00:40:00 scenario region outage aws-eu-central-1 starts"
        # Again: the fork; then nothing is left, the clock stays.
        await pilot.press("j")
        await until(pilot, at_time(screen, 70 * 60), "the fork")
        # A fork shows no event as it starts: the jump says where it stopped.
        assert ("T+01:10:00: started", "◆ fork late of orders") in notes
        await pilot.press("j")
        await pilot.pause(0.3)
        assert screen.snapshot.t == 70 * 60
        assert any("no timeline entry after T+01:10:00" in text for _, text in notes)

        # g 10m: back to an earlier time, re-run from T+0 with the progress shown; the
        # state is the one the first run had then.
        await pilot.press("g")
        field = screen.query_one("#replay-goto", Input)
        assert field.has_focus
        await pilot.press(*"10m", "enter")
        await until(pilot, at_time(screen, 10 * 60), "going back to T+00:10:00")
        assert not field.display
        assert progress
        assert progress[-1] == (600.0, 600.0)
        assert all(target == 600.0 for target, _ in progress)
        assert [at for _, at in progress] == sorted(at for _, at in progress)
        assert screen.snapshot == ten
        assert plain(screen, "#replay-status").startswith("T+00:10:00")

        # b goes back a twentieth of the scenario (90m: 4.5, rounded up to 5 minutes).
        await pilot.press("b")
        await until(pilot, at_time(screen, 5 * 60), "the rewind")
        # A bad time says what is expected and keeps the field open.
        await pilot.press("g", *"soon", "enter")
        await pilot.pause()
        assert field.display
        assert any(title == "go to" and "expected" in text for title, text in notes)
        await pilot.press("escape")
        assert not field.display
        assert isinstance(app.screen, ReplayScreen)
        # A click on the timeline goes to the time under it.
        timeline = screen.query_one(ReplayTimeline)
        width = timeline.content_size.width
        await pilot.click(ReplayTimeline, offset=(1 + width // 2, 0))
        await until(pilot, at_time(screen, float(int(width // 2 * 5400 / width))),
                    "the time clicked")


@run_async
async def test_the_timeline_marks_the_faults_and_the_time(
        synced: Bridge, tmp_path: Path) -> None:
    path = write(tmp_path, tiny(FAULTS + PASSING, duration="90m"))
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_replay(pilot, app, path)
        await pilot.pause()
        timeline = screen.query_one(ReplayTimeline)
        assert timeline.region.height == 1
        width = timeline.content_size.width
        assert width == SIZE[0] - 2
        row = lines_of(timeline)[0]

        def cell(minute: int) -> int:
            return int(minute * 60 / 5400 * width)

        assert row[0] == "●"  # the current time
        assert row[cell(40)] == "▼"  # the outage starts
        assert set(row[cell(40) + 1:cell(55) + 1]) == {"═"}  # and lasts to 55m
        assert row[cell(70)] == "◆"  # the fork
        assert row.count("▼") == 1
        assert row.count("◆") == 1
        tooltip = str(timeline.tooltip)
        assert "▼ T+00:40:00 region outage aws-eu-central-1 (until T+00:55:00)" in tooltip
        assert "◆ T+01:10:00 fork late of orders" in tooltip
        await pilot.press("j")
        await until(pilot, at_time(screen, 40 * 60), "the outage")
        await pilot.pause()
        row = lines_of(timeline)[0]
        assert set(row[:cell(40)]) == {"━"}  # behind
        assert row[cell(40)] == "▼"  # the cursor is on the mark (reversed)


def test_timeline_text_and_marks(tmp_path: Path) -> None:
    loaded = load_scenario(write(tmp_path, tiny(FAULTS + PASSING, duration="90m")))
    marks = timeline_marks(loaded)
    assert marks == (
        Mark(2400.0, 3300.0, "region_outage", "fault", "region outage aws-eu-central-1"),
        Mark(4200.0, None, "fork", "action", "fork late of orders"),
    )
    line = timeline_text(marks, 5400.0, 2700.0, 18)
    # 300 s a cell: the outage 8..11 (the cursor at 9), the fork at 14
    assert line.plain == "━━━━━━━━▼●══──◆───"
    assert "reverse" in str(line.spans[-1].style) or any(
        "reverse" in str(span.style) for span in line.spans)
    assert timeline_text(marks, 5400.0, 5400.0, 18).plain[-1] == "●"
    assert timeline_text((), 0.0, 0.0, 0).plain == ""


def test_go_to_reads_times_moves_and_iso() -> None:
    start = datetime(2026, 11, 2, tzinfo=UTC)
    assert parse_goto("1h30m", 0, 7200) == 5400
    assert parse_goto("01:30:00", 0, 7200) == 5400
    assert parse_goto("T+1:30", 0, 7200) == 5400
    assert parse_goto("+10m", 600, 7200) == 1200
    assert parse_goto("-10m", 300, 7200) == 0
    assert parse_goto("end", 0, 7200) == 7200
    assert parse_goto("start", 500, 7200) == 0
    assert parse_goto("9h", 0, 7200) == 7200
    assert parse_goto("2026-11-02T01:00:00Z", 0, 7200, start) == 3600
    for bad in ("", "soon", "1:xx", "2026-11-02T01:00:00"):
        with pytest.raises(ValueError, match="expected"):
            parse_goto(bad, 0, 7200, start)


@run_async
async def test_the_event_pane_fills_its_height_and_shows_an_event_in_full(
        synced: Bridge, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_replay(pilot, app, OUTAGES)
        # The second outage, with the first one's events before it.
        for start in (7260.0, 14460.0):
            await pilot.press("j")
            await until(pilot, at_time(screen, start), "an outage", 30)
        await pilot.pause(0.2)
        log = screen.query_one("#replay-log", OptionList)
        footer = screen.query_one(Footer)
        # The pane takes the rest of the screen, down to the footer ...
        assert log.region.height >= 5
        assert log.region.bottom == footer.region.y
        # ... one line per event, every line of it used, none wrapped.
        assert log.option_count > log.region.height
        assert log.virtual_size.height == log.option_count
        rows = lines_of(log)
        assert all(row.strip() for row in rows)
        cut = next(i for i, row in enumerate(rows) if row.rstrip().endswith("…"))
        full = str(log.get_option_at_index(cut).prompt)
        assert len(full) > SIZE[0]
        # l enters the list; the highlighted event shows in full under it.
        await pilot.press("l")
        assert log.has_focus
        for _ in range(cut):
            await pilot.press("down")
        detail = screen.query_one("#replay-event-full", Static)
        assert detail.display
        assert plain(screen, "#replay-event-full") == full
        assert detail.region.height >= 2
        await pilot.press("tab")
        assert not detail.display


@run_async
async def test_the_replay_footer_has_its_own_keys_not_the_live_ones(
        synced: Bridge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, tiny(FAULTS + PASSING, duration="90m"))
    notes = told(monkeypatch)
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert {"Sync", "Auto-sync"} <= set(footer_keys(app.screen))  # live mode has them
        screen = await open_replay(pilot, app, path)
        await pilot.pause()
        keys = footer_keys(screen)
        assert "Sync" not in keys
        assert "Auto-sync" not in keys
        assert {"sync_now", "toggle_auto_sync", "app.sync_now",
                "app.toggle_auto_sync"}.isdisjoint(keys.values())
        for own in ("Play", "Step", "+1m", "Next fault", "Go to", "Restart", "End"):
            assert own in keys
        # They fit in 80 columns, in order, before the app's help and quit.
        shown = [f"{key.key_display} {key.description}"
                 for key in screen.query_one(Footer).query(FooterKey)
                 if key.region.width and key.region.right <= SIZE[0]]
        assert shown == ["space Play", "n Step", "t +1m", "j Next fault", "g Go to",
                         "0 Restart", "> End", "? Help", "q Quit"]
        # s and a do not sync the live world from here: they say so.
        await pilot.press("s", "a")
        assert not app.syncing
        assert not app.auto_sync
        assert [text for _, text in notes if "a replay replicates in the simulator" in text] \
            == [f"{what} is for the live world; a replay replicates in the simulator (escape "
                "goes back to it)" for what in ("sync", "auto-sync")]
        # At the end the moves forward leave, the verdicts come.
        await pilot.press("greater_than_sign")
        await until(pilot, lambda: screen.finished is not None, "the end")
        await pilot.pause()
        shown = [f"{key.key_display} {key.description}"
                 for key in screen.query_one(Footer).query(FooterKey)]
        assert shown == ["g Go to", "0 Restart", "v Verdicts", "? Help", "q Quit"]


def test_no_replay_key_means_something_else_on_another_screen() -> None:
    """Keys shared with the live screens must mean the same there (back, the lag period,
    events); s and a only say they are for live mode."""
    same_meaning = {"escape", "p", "l", "s", "a"}
    elsewhere = {key for owner in (BtarApp, ServicesScreen, DetailScreen)
                 for binding in owner.BINDINGS if not isinstance(binding, tuple)
                 for key in binding.key.split(",")}
    replay = {key for binding in ReplayScreen.BINDINGS if not isinstance(binding, tuple)
              for key in binding.key.split(",")}
    assert replay & elsewhere <= same_meaning
    assert {"space", "n", "t", "j", "b", "g", "0", "greater_than_sign", "v", "plus",
            "minus"} <= replay
    assert not {"e", "m", "r", "c", "d", "f", "o", "q"} & replay


@run_async
async def test_the_picker_shows_names_and_descriptions(
        synced: Bridge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    app = make_app(synced)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("r")
        picker = app.screen
        assert isinstance(picker, ScenarioPicker)
        files = picker.query_one("#scenario-files", OptionList)
        await pilot.pause()
        rows = lines_of(files)
        # The first file: its name beside the file, then the start of its leading comment.
        assert rows[0].startswith("big base backup, WAL keeps")
        assert rows[0].rstrip().endswith("big-base-wal-keeps-flowing.btar.toml")
        assert rows[1].strip().startswith("A 2 TB PostgreSQL service: a base")
        about = picker.query_one(About)
        shown = str(about.render())
        assert shown.startswith("big base backup, WAL keeps flowing: A 2 TB PostgreSQL")
        assert shown.count("\n") <= about.size.height - 1
        # The highlighted one shows whole under the list.
        names = [Path(str(files.get_option_at_index(i).id)).name
                 for i in range(files.option_count)]
        files.highlighted = names.index("steady-replication.btar.toml")
        await pilot.pause()
        assert str(about.render()).replace("\n", " ") == (
            "steady replication: Steady replication: nothing goes wrong. The additional "
            "region follows the primary within a poll interval, its window tracks the "
            "primary's, and a fork to the latest point succeeds.")

        # A folder typed in: a description field stands in for a missing comment, a file
        # that is not TOML still shows (replaying it says what is wrong).
        folder = tmp_path / "mine"
        folder.mkdir()
        write(folder, tiny().replace('name = "tiny"', 'name = "tiny"\n'
                                     'description = "One small service."'), "a.btar.toml")
        write(folder, "# Broken on purpose.\nschema = [\n", "b.btar.toml")
        field = picker.query_one("#scenario-path", Input)
        field.value = str(folder)
        field.focus()
        await pilot.press("enter")
        await pilot.pause()
        rows = lines_of(files)
        assert rows[0].split() == ["tiny", "a.btar.toml"]
        assert rows[1].strip() == "One small service."
        assert rows[2].split() == ["(no", "name)", "b.btar.toml"]
        assert rows[3].strip() == "Broken on purpose."
        await pilot.press("escape")


def test_scenario_descriptions_come_from_the_leading_comment(tmp_path: Path) -> None:
    text = "# First line\n# second line.\n#   indented derivation\nschema = 1\n"
    assert leading_comment(text) == "First line second line."
    assert leading_comment("# One.\n#\n# Two.\n") == "One."
    assert leading_comment("schema = 1\n# later\n") == ""
    info = scenario_info(ROOT / STEADY)
    assert info.name == "steady replication"
    assert info.about.startswith("Steady replication: nothing goes wrong.")
    missing = scenario_info(tmp_path / "gone.btar.toml")
    assert missing.name == ""
    assert missing.about.startswith("cannot be read")
    assert clipped("one two three four five six", 9, 2) == "one two\nthree…"
    assert clipped("one two", 9, 2) == "one two"


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
        await pilot.pause()
        assert [f"{key.key_display} {key.description}"
                for key in screen.query_one(Footer).query(FooterKey)] == [
            "v Verdicts", "? Help", "q Quit"]
        # Nothing to move, restart or go to: no crash.
        await pilot.press("n", "t", "space", "greater_than_sign", "j", "b", "0", "g")
        assert app.is_running
        assert not screen.query_one("#replay-goto", Input).display
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


def test_run_through_starts_what_is_due_and_changes_nothing_else(tmp_path: Path) -> None:
    """Replay.run_through (the jump to a fault): at the time, the fault has started; the
    run stays that of btar simulate; a restart reaches the same state at the same time."""
    loaded = load_scenario(write(tmp_path, tiny(FAULTS + PASSING, duration="90m")))
    replay = Replay(loaded)
    replay.advance(2400.0)
    before = scenario_texts(replay.snapshot())
    assert "region outage aws-eu-central-1 starts" not in before  # advance stops before
    replay.run_through(2400.0)
    assert replay.now == 2400.0
    assert "region outage aws-eu-central-1 starts" in scenario_texts(replay.snapshot())
    replay.run_through(4200.0)
    assert [(e["op"], e["phase"]) for e in replay.world.journal.entries
            if e["t"] == 4200.0 and e["op"] == "fork"] == [("fork", "invoke"),
                                                           ("fork", "planned")]
    replay.run_through(10 * 3600.0)  # past the end: to the end
    assert replay.result is not None
    whole = run_scenario(loaded)
    assert replay.result.journal.text() == whole.journal.text()
    assert replay.result.events == whole.events

    first, again = Replay(loaded), Replay(loaded)
    for _ in range(7):
        first.advance(60.0)
    again.advance(420.0)
    assert first.snapshot() == again.snapshot()


def scenario_texts(snapshot: ReplaySnapshot) -> list[str]:
    return [e.text for e in snapshot.events if e.source == "scenario"]

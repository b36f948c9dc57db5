"""Drive a scenario replay from a thread worker, at a speed or move by move.

The worker loads the scenario file, builds the replay and keeps it to itself (the simulated
catalog is bound to the thread that built it); the screen only talks to it through a
:class:`ReplayControl` and only hears from it through messages: ReplayStarted, then
ReplayAdvanced after every slice or move, ReplayFinished with the verdicts at the end (or
ReplayInvalid when the file is invalid).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

from textual.message import Message

from btar_tui.messages import ReplayAdvanced, ReplayFinished, ReplayInvalid, ReplayStarted
from engine.lag import Period
from simulator.replay import Replay
from simulator.scenario import ScenarioError, load_scenario

#: virtual seconds per wall second the user can pick, slowest first
SPEEDS = (60.0, 600.0, 3600.0, 36000.0)
DEFAULT_SPEED = 600.0
#: wall seconds between two slices while playing
TICK = 0.1
#: a slice never covers more wall time than this (after a stall, the replay does not jump)
MAX_SLICE = 0.5
#: how often a paused worker looks whether it was cancelled
IDLE = 0.25
#: slices of "run to the end", so the screen keeps moving meanwhile
END_SLICES = 40

Move = Literal["event", "minute", "end", "refresh"]


class ReplayControl:
    """What the screen asks of the worker; every method may be called from any thread."""

    def __init__(self, speed: float = DEFAULT_SPEED, period: Period = Period.DAY) -> None:
        self._changed = threading.Condition()
        self._moves: deque[Move] = deque()
        self.speed = speed
        self.period = period
        self.playing = False
        self.stopped = False

    def play(self, playing: bool) -> None:
        with self._changed:
            self.playing = playing
            self._changed.notify_all()

    def move(self, move: Move) -> None:
        """One move (it pauses a playing replay, except a refresh)."""
        with self._changed:
            if move != "refresh":
                self.playing = False
            self._moves.append(move)
            self._changed.notify_all()

    def show_period(self, period: Period) -> None:
        self.period = period
        self.move("refresh")

    def stop(self) -> None:
        with self._changed:
            self.stopped = True
            self._changed.notify_all()

    def wait(self, timeout: float) -> Move | None:
        """The next move, waiting up to ``timeout`` seconds for one (or a change)."""
        with self._changed:
            if not self._moves and not self.stopped:
                self._changed.wait(timeout)
            return self._moves.popleft() if self._moves else None


def drive_replay(path: str, seed: int | None, control: ReplayControl,
                 post: Callable[[Message], object], cancelled: Callable[[], bool]) -> None:
    """Run in a thread worker until cancelled or stopped (it stays to answer refreshes once
    the replay is finished)."""
    try:
        loaded = load_scenario(path)
    except ScenarioError as error:
        post(ReplayInvalid(error.path, error.lines()))
        return
    replay = Replay(loaded, seed)
    post(ReplayStarted(replay.name, replay.seed, replay.duration, replay.replay_command))
    post(ReplayAdvanced(replay.snapshot(control.period)))
    reported = False
    last = time.monotonic()
    was_playing = False

    def done() -> bool:
        return cancelled() or control.stopped

    while not done():
        playing = control.playing and not replay.finished
        move = control.wait(TICK if playing else IDLE)
        if done():
            return
        if move == "event":
            replay.step()
        elif move == "minute":
            replay.advance(60.0)
        elif move == "end":
            chunk = max(60.0, replay.duration / END_SLICES)
            while not replay.finished and not done():
                replay.advance(chunk)
                if not replay.finished:
                    post(ReplayAdvanced(replay.snapshot(control.period)))
        elif move is None:
            if not (control.playing and not replay.finished):
                was_playing = False
                continue
            now = time.monotonic()
            elapsed, last = now - last, now
            if not was_playing:  # the clock starts now, not when it was paused
                was_playing = True
                continue
            replay.advance(control.speed * min(elapsed, MAX_SLICE))
        post(ReplayAdvanced(replay.snapshot(control.period)))
        if replay.result is not None and not reported:
            reported = True
            control.play(False)
            result = replay.result
            post(ReplayFinished(list(result.verdicts), result.replay, result.crashed,
                                result.events, result.virtual_seconds, result.wall_seconds))

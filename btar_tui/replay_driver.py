"""Drive a scenario replay from a thread worker, at a speed or move by move.

The worker loads the scenario file, builds the replay and keeps it to itself (the simulated
catalog is bound to the thread that built it); the screen only talks to it through a
:class:`ReplayControl` and only hears from it through messages: ReplayStarted (with the
scenario's timeline marks), then ReplayAdvanced after every slice or move, ReplayFinished
with the verdicts at the end (or ReplayInvalid when the file is invalid).

A SimPy run cannot go backwards, but it is deterministic: restarting builds the world again
with the same seed (ReplayStarted again), and going back to an earlier time restarts and
runs forward to it, telling its progress with ReplaySeeking. The state reached is the one
the first run had at that virtual time.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from textual.message import Message

from btar_tui.messages import (
    ReplayAdvanced,
    ReplayFinished,
    ReplayInvalid,
    ReplayJumped,
    ReplaySeeking,
    ReplayStarted,
)
from engine.lag import Period
from simulator.replay_api import (
    LoadedScenario,
    Replay,
    ScenarioError,
    load_scenario,
    timeline_marks,
)

#: virtual seconds per wall second the user can pick, slowest first
SPEEDS = (60.0, 600.0, 3600.0, 36000.0)
DEFAULT_SPEED = 600.0
#: wall seconds between two slices while playing
TICK = 0.1
#: a slice never covers more wall time than this (after a stall, the replay does not jump)
MAX_SLICE = 0.5
#: how often a paused worker looks whether it was cancelled
IDLE = 0.25
#: slices of a run to a later time (to the end, to a time, to a fault, re-running to an
#: earlier time), so the screen keeps moving meanwhile
END_SLICES = 40

MoveKind = Literal["event", "minute", "end", "refresh", "fault", "restart", "seek", "back"]


@dataclass(frozen=True)
class Move:
    kind: MoveKind
    #: seek: the virtual time to reach; back: how many virtual seconds back
    seconds: float = 0.0


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

    def move(self, kind: MoveKind, seconds: float = 0.0) -> None:
        """One move (it pauses a playing replay, except a refresh)."""
        with self._changed:
            if kind != "refresh":
                self.playing = False
            self._moves.append(Move(kind, seconds))
            self._changed.notify_all()

    def seek(self, t: float) -> None:
        """Go to virtual time ``t``: forward from here, or restart and run to it."""
        self.move("seek", t)

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


class _Driver:
    """The worker's side: the replay, rebuilt from the loaded file on a restart."""

    def __init__(self, loaded: LoadedScenario, seed: int | None, control: ReplayControl,
                 post: Callable[[Message], object], cancelled: Callable[[], bool]) -> None:
        self.loaded = loaded
        self.seed = seed
        self.control = control
        self.post = post
        self.cancelled = cancelled
        self.marks = timeline_marks(loaded)
        self.reported = False
        self.replay = self.begin()

    def done(self) -> bool:
        return self.cancelled() or self.control.stopped

    def begin(self) -> Replay:
        """The world at T+0; a restart keeps the seed of the first run."""
        replay = Replay(self.loaded, self.seed)
        self.seed = replay.seed
        self.reported = False
        self.post(ReplayStarted(replay.name, replay.seed, replay.duration,
                                replay.replay_command, self.marks))
        return replay

    def show(self) -> None:
        self.post(ReplayAdvanced(self.replay.snapshot(self.control.period)))

    @property
    def chunk(self) -> float:
        """One slice of a long move, in whole seconds (so a run to a time lands on it)."""
        return float(max(60, round(self.replay.duration / END_SLICES)))

    def run_to(self, target: float, rewinding: bool = False) -> None:
        """Forward to ``target`` in slices: a snapshot after each, or, when re-running to an
        earlier time, only the progress (the screen keeps the last state meanwhile)."""
        replay = self.replay
        while not replay.finished and replay.now < target and not self.done():
            replay.advance(min(self.chunk, target - replay.now))
            if rewinding:
                self.post(ReplaySeeking(target, replay.now, replay.duration))
            elif not replay.finished and replay.now < target:
                self.show()

    def seek(self, target: float) -> None:
        target = max(0.0, min(float(round(target)), self.replay.duration))
        if target <= 0.0 or target < self.replay.now:
            self.replay = self.begin()
            if target > 0.0:
                self.post(ReplaySeeking(target, 0.0, self.replay.duration))
                self.run_to(target, rewinding=True)
        else:
            self.run_to(target)

    def next_fault(self) -> None:
        """Run until the next timeline entry has started (what is due at its time is done);
        an entry at the current time that already ran is skipped."""
        replay = self.replay
        for mark in self.marks:
            if mark.t < replay.now or self.done():
                continue
            before = (replay.now, replay.events_processed)
            self.run_to(mark.t)
            replay.run_through(mark.t)
            if (replay.now, replay.events_processed) != before:
                self.post(ReplayJumped(mark.t, tuple(m for m in self.marks if m.t == mark.t)))
                return
        self.post(ReplayJumped(replay.now, ()))

    def apply(self, move: Move) -> None:
        replay = self.replay
        if move.kind == "event":
            replay.step()
        elif move.kind == "minute":
            replay.advance(60.0)
        elif move.kind == "end":
            self.run_to(replay.duration)
        elif move.kind == "fault":
            self.next_fault()
        elif move.kind == "restart":
            self.replay = self.begin()
        elif move.kind == "seek":
            self.seek(move.seconds)
        elif move.kind == "back":
            self.seek(replay.now - move.seconds)

    def report(self) -> None:
        """The snapshot, and the verdicts once the run is over."""
        replay = self.replay
        self.show()
        if replay.result is not None and not self.reported:
            self.reported = True
            self.control.play(False)
            result = replay.result
            self.post(ReplayFinished(list(result.verdicts), result.replay, result.crashed,
                                     result.events, result.virtual_seconds,
                                     result.wall_seconds))

    def run(self) -> None:
        control = self.control
        self.show()
        last = time.monotonic()
        was_playing = False
        while not self.done():
            playing = control.playing and not self.replay.finished
            move = control.wait(TICK if playing else IDLE)
            if self.done():
                return
            if move is not None:
                self.apply(move)
                if self.done():
                    return
            else:
                if not (control.playing and not self.replay.finished):
                    was_playing = False
                    continue
                now = time.monotonic()
                elapsed, last = now - last, now
                if not was_playing:  # the clock starts now, not when it was paused
                    was_playing = True
                    continue
                self.replay.advance(control.speed * min(elapsed, MAX_SLICE))
            self.report()


def drive_replay(path: str, seed: int | None, control: ReplayControl,
                 post: Callable[[Message], object], cancelled: Callable[[], bool]) -> None:
    """Run in a thread worker until cancelled or stopped (it stays to answer refreshes,
    restarts and seeks once the replay is finished)."""
    try:
        loaded = load_scenario(path)
    except ScenarioError as error:
        post(ReplayInvalid(error.path, error.lines()))
        return
    _Driver(loaded, seed, control, post, cancelled).run()

"""Clocks the TUI can be given: the wall clock (the application API's), or a fixed one for
tests and snapshots."""

from __future__ import annotations

import time
from datetime import datetime

from engine.api import Clock as Clock
from engine.api import WallClock as WallClock


class FixedClock:
    """A clock stuck at one moment: what is displayed no longer depends on the day a test
    runs. ``sleep`` still waits for real so retry back-offs behave."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

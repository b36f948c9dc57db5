"""The clock the engine is handed: the wall clock, or any other (a test's, a simulator's).

Apart from engine.runtime, so that reading the time (a status's "now") imports no thread
pools, effects or storage."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class WallClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

"""The one door to the engine: owns the Btar instance and serialises every call.

Btar and its SQLite catalog must be used by one thread at a time, and the TUI calls them from
Textual thread workers, so every call goes through :meth:`Bridge.call`, which holds a lock.
Never call it on the UI thread: it may wait for a sync in progress.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from btar_tui.clock import Clock, WallClock
from engine.api import Btar

T = TypeVar("T")
CopyHook = Callable[[Any], object]
FetchHook = Callable[[int, int, Any], object]


class _LiveHooks(Protocol):
    """The attributes of engine.runtime.LiveDriver the TUI sets (the TUI may not import it)."""

    clock: Clock
    on_copy: CopyHook | None
    on_fetch: FetchHook | None


class Bridge:
    """Owns one :class:`engine.api.Btar` and the lock that serialises its use."""

    def __init__(self, btar: Btar, config_path: Path, *, clock: Clock | None = None) -> None:
        self._btar = btar
        self._lock = threading.Lock()
        self.config_path = config_path.resolve()
        self.clock: Clock = clock or WallClock()
        if clock is not None and hasattr(btar.driver, "clock"):
            # The engine reads time only through its driver: freezing it freezes lag and
            # "now" everywhere (tests and snapshots).
            cast(_LiveHooks, btar.driver).clock = clock
        self.poll_interval = float(getattr(btar, "poll_interval", 10.0))

    @classmethod
    def open(cls, config_path: Path, *, clock: Clock | None = None,
             actor: str = "btar tui") -> Bridge:
        """Open the installation a configuration file describes (BtarError if it is bad)."""
        return cls(Btar.open(str(config_path), actor=actor), config_path, clock=clock)

    @property
    def config_dir(self) -> Path:
        return self.config_path.parent

    def now(self) -> datetime:
        return self.clock.now()

    def call(self, work: Callable[[Btar], T], *, on_copy: CopyHook | None = None,
             on_fetch: FetchHook | None = None) -> T:
        """Run ``work(btar)`` holding the lock; progress hooks are set only for this call."""
        with self._lock:
            driver = self._btar.driver
            hooks = cast(_LiveHooks, driver)
            if on_copy is not None and hasattr(driver, "on_copy"):
                hooks.on_copy = on_copy
            if on_fetch is not None and hasattr(driver, "on_fetch"):
                hooks.on_fetch = on_fetch
            try:
                return work(self._btar)
            finally:
                if on_copy is not None and hasattr(driver, "on_copy"):
                    hooks.on_copy = None
                if on_fetch is not None and hasattr(driver, "on_fetch"):
                    hooks.on_fetch = None

    def close(self, timeout: float = 30.0) -> None:
        """Close the installation once no worker is using it (gives up after ``timeout``)."""
        if self._lock.acquire(timeout=timeout):
            try:
                self._btar.close()
            finally:
                self._lock.release()

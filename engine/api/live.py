"""The live driver of an opened installation and the storages it opens, each made when it is
first needed.

A command that only reads the catalog (`btar status`, `btar check`) reads the time and
nothing else of its driver: the runtime (thread pools, the effects, the storage protocol and
the transfers, some 30 ms of imports) is not loaded for it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from engine.clock import Clock, WallClock

if TYPE_CHECKING:
    from engine.effects import FetchResult
    from engine.runtime import CopyProgress, LiveDriver, StorageRegistry
    from engine.storage.base import Storage


class LiveParts:
    """What Installation.open gives an installation to run with: its clock at once, its
    storage registry and its LiveDriver on first use. The driver reads ``clock`` (the same
    object) from then on."""

    def __init__(self, open_region: Callable[[str], Storage], *, concurrency: int,
                 on_copy: Callable[[CopyProgress], None] | None = None,
                 on_fetch: Callable[[int, int, FetchResult], None] | None = None,
                 clock: Clock | None = None) -> None:
        self._open_region = open_region
        self._concurrency = concurrency
        self._on_copy = on_copy
        self._on_fetch = on_fetch
        self.clock: Clock = clock or WallClock()
        self._registry: StorageRegistry | None = None
        self._driver: LiveDriver | None = None

    def registry(self) -> StorageRegistry:
        """Each region's storage, opened once on first use."""
        if self._registry is None:
            from engine.runtime import StorageRegistry

            self._registry = StorageRegistry(self._open_region)
        return self._registry

    def driver(self) -> LiveDriver:
        """The live driver, made on the first call."""
        if self._driver is None:
            from engine.runtime import LiveDriver

            self._driver = LiveDriver(self.registry(), concurrency=self._concurrency,
                                      on_copy=self._on_copy, on_fetch=self._on_fetch,
                                      clock=self.clock)
        return self._driver

    def close(self) -> None:
        """Close the storages opened so far."""
        if self._registry is not None:
            self._registry.close()

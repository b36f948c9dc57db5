"""Carrying out a sans-I/O procedure's effects against one memory storage, for benchmarks
that time the engine's decisions without a driver."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.effects import Effect, ListPage, Now, ReadObject
from engine.storage.memory import MemoryStorage


@dataclass
class MemoryEffects:
    """Listings and reads from ``store``, the time from ``now``; counts the listing pages."""

    store: MemoryStorage
    now: Callable[[], datetime]
    pages: int = 0

    def drive(self, procedure: Generator[Effect, Any, Any]) -> Any:
        """Run ``procedure`` to its end; its result."""
        answer: Any = None
        while True:
            try:
                effect = procedure.send(answer)
            except StopIteration as done:
                return done.value
            if isinstance(effect, ListPage):
                self.pages += 1
                answer = self.store.list_page(effect.prefix, effect.start_after, effect.limit)
            elif isinstance(effect, ReadObject):
                answer = self.store.read_bytes(effect.key)
            elif isinstance(effect, Now):
                answer = self.now()
            else:
                raise RuntimeError(f"unexpected effect {effect!r}")

"""The journal: every operation of a run, invoked and completed, at virtual time.

Entries are plain JSON objects with ``t`` (virtual seconds after the start), ``op`` and
``phase``. They are serialised with sorted keys and no wall-clock value anywhere, so the same
seed and scenario file give a byte-identical journal.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Entry = dict[str, Any]


class Journal:
    """An append-only list of entries stamped with the virtual time."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.entries: list[Entry] = []
        #: the last clock reading and its rounding: most entries share their moment with the
        #: one before, and round() to 6 digits costs more than the rest of an entry (NaN: none)
        self._stamp = (math.nan, 0.0)

    def add(self, op: str, phase: str, **fields: Any) -> Entry:
        """Record one entry at the current virtual time."""
        now = self._clock()
        if now != self._stamp[0]:
            self._stamp = (now, round(now, 6))
        entry: Entry = {"t": self._stamp[1], "op": op, "phase": phase, **fields}
        self.entries.append(entry)
        return entry

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def select(self, op: str, phase: str | None = None) -> list[Entry]:
        return [e for e in self.entries
                if e["op"] == op and (phase is None or e["phase"] == phase)]

    def lines(self) -> Iterator[str]:
        for entry in self.entries:
            yield json.dumps(entry, sort_keys=True, separators=(",", ":"))

    def text(self) -> str:
        """The whole journal as JSON lines."""
        return "".join(line + "\n" for line in self.lines())

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.text(), encoding="utf-8")


def read_journal(path: Path) -> list[Entry]:
    """Load a journal written by ``Journal.write``."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]

"""What a backup layout reader must tell the engine."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from engine.model import BackupItem, ObjectInfo


@dataclass(frozen=True)
class Discovery:
    """What a listing of one service's prefix shows.

    ``markers`` are completion markers whose content must be read to describe their backup;
    ``segments`` are log segments fully described by their listing entry.
    """

    markers: tuple[ObjectInfo, ...]
    segments: tuple[BackupItem, ...]


class BackupLayout(Protocol):
    name: str
    #: listing areas that always exist, even before anything is written in them; () for a
    #: layout that is listed in full every pass (see engine.listing)
    root_areas: tuple[str, ...]

    def discover(self, objects: Iterable[ObjectInfo]) -> Discovery:
        """Sort a listing (keys relative to the service prefix) into complete items."""
        ...

    def item_id_of_marker(self, key: str) -> str:
        """The item id a completion marker stands for, without reading it."""
        ...

    def parse_marker(self, marker: ObjectInfo, data: bytes) -> BackupItem:
        """Describe a complete base backup from its completion marker's bytes."""
        ...

    def listing_areas(self, key: str) -> tuple[str, ...]:
        """The incremental listing areas ``key`` belongs to: prefixes (relative to the service
        prefix) under which new keys sort after the ones already written. A layout without
        such areas answers () and is listed in full every pass (see engine.listing)."""
        ...

    def log_position(self, key: str) -> tuple[str, int] | None:
        """(stream, seq) when ``key`` is a log segment named by its position, else None."""
        ...

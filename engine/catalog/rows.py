"""The rows the catalog hands out: plain frozen values, never bound to the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.catalog.schema import (
    from_text,
)
from engine.model import (
    Digest,
    ItemKind,
    ItemStatus,
    ObjectRef,
    RegionRole,
    RegionState,
)


@dataclass(frozen=True)
class LagRow:
    """What the lag over time reads of an item row (engine.lag.ItemLike)."""

    status: str
    completed_at: datetime
    available_at: datetime | None


@dataclass(frozen=True)
class LocationRow:
    service: str
    region: str
    role: RegionRole
    state: RegionState
    reason: str
    since: datetime


@dataclass(frozen=True)
class Reachability:
    """What the replicator last saw of one (service, region): when it last answered
    (``ok_at``) and the fault that holds since ``fault_since`` (``fault`` is "" when none;
    otherwise a StorageError's fault class, e.g. "unreachable", "denied", "missing")."""

    service: str
    region: str
    ok_at: datetime | None
    fault: str
    reason: str
    fault_since: datetime | None
    fault_at: datetime | None


@dataclass(frozen=True, slots=True)
class ItemRow:
    service: str
    region: str
    item_id: str
    kind: ItemKind
    stream: str
    seq: int
    start_time: datetime
    end_time: datetime
    size: int
    object_count: int
    status: ItemStatus
    reason: str
    completed_at: datetime
    available_at: datetime | None
    lag_seconds: float | None
    parent: str = ""


@dataclass(frozen=True)
class LogRun:
    """Contiguous log segments ``first_seq``..``last_seq`` of one stream, all restorable."""

    stream: str
    first_seq: int
    last_seq: int
    first_start: datetime
    last_end: datetime


@dataclass(frozen=True, slots=True)
class ObjectRow:
    key: str
    size: int
    sha256: str | None
    is_marker: bool
    status: ItemStatus
    attempts: int
    #: what the layout records instead of a SHA-256, or what a copy established
    digest: Digest | None = None

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.key, self.size, self.sha256, self.digest)


@dataclass(frozen=True)
class CopyRecord:
    """One copy attempt of an object, as record_copies stores it. ``sha256`` and ``digest``
    (``algorithm:hex``) are what a verified copy of an object without a recorded SHA-256
    established of its bytes; None and "" leave the object's record as it is."""

    key: str
    ok: bool
    method: str = ""
    verified_by: str = ""
    error: str = ""
    sha256: str | None = None
    digest: str = ""


@dataclass(frozen=True)
class EventRow:
    at: datetime
    level: str
    service: str
    region: str
    message: str


def _item_row(r: dict[str, Any]) -> ItemRow:
    return ItemRow(
        service=r["service"], region=r["region"], item_id=r["item_id"],
        kind=ItemKind(r["kind"]), stream=r["stream"], seq=r["seq"],
        start_time=from_text(r["start_time"]), end_time=from_text(r["end_time"]),
        size=r["size"], object_count=r["object_count"], status=ItemStatus(r["status"]),
        reason=r["reason"] or "", completed_at=from_text(r["completed_at"]),
        available_at=from_text(r["available_at"]) if r["available_at"] else None,
        lag_seconds=r["lag_seconds"], parent=r.get("parent") or "")

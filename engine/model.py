"""The domain model: immutable values, UTC-aware times."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


class Provider(StrEnum):
    AWS = "aws"
    GOOGLE = "google"
    AZURE = "azure"


class ServiceType(StrEnum):
    POSTGRESQL = "postgresql"
    MYSQL = "mysql"
    REDIS = "redis"
    VALKEY = "valkey"
    KAFKA = "kafka"
    OPENSEARCH = "opensearch"
    CLICKHOUSE = "clickhouse"
    CASSANDRA = "cassandra"


#: Service types whose backups (base backup + WAL/binlog) btar knows how to replicate.
REPLICABLE_TYPES = frozenset({ServiceType.POSTGRESQL, ServiceType.MYSQL})


class ItemKind(StrEnum):
    BASE = "base"
    LOG = "log"
    #: a timeline history (PostgreSQL) or server-id switch (MySQL): where a stream branches
    #: off its parent; always replicated, the chain follows a switch only through one
    HISTORY = "history"


class ItemStatus(StrEnum):
    """Status of one backup item (base backup or log segment) in one region."""

    PENDING = "pending"
    COPYING = "copying"
    AVAILABLE = "available"
    FAILED = "failed"
    PAUSED = "paused"
    RETAINED = "retained"
    #: withdrawn by retention: no longer restorable, its copies being deleted
    DELETING = "deleting"
    #: deleted by retention; remembered so that it is not copied again
    EXPIRED = "expired"


#: Statuses of an item still to be brought to a destination (its backlog).
UNFINISHED = (ItemStatus.PENDING, ItemStatus.COPYING, ItemStatus.FAILED, ItemStatus.PAUSED)


class RegionRole(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"
    #: the secondary before a change of region; kept until the new one has a window (rule 8)
    PREVIOUS = "previous"
    #: a former secondary whose copies were kept on disable (rule 7)
    RETAINED = "retained"


class RegionState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Region:
    """A cloud region from the catalogue (see engine.regions)."""

    id: str
    provider: Provider
    name: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Service:
    """A database service as declared in the configuration."""

    name: str
    type: ServiceType
    region: str
    layout: str = "native"
    prefix: str = ""

    @property
    def key_prefix(self) -> str:
        """Where this service's backups live inside each region's location."""
        return self.prefix or self.name


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a storage listing or stat says about one object."""

    key: str
    size: int
    last_modified: datetime
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """One object of a backup item, relative to the service prefix, with its expected hash."""

    key: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class BackupItem:
    """A unit of replication: a base backup or a log segment (WAL file or binlog).

    ``marker`` is the object whose presence says the item is complete (the manifest of a base
    backup, the segment itself for a log segment); it is published last.
    """

    kind: ItemKind
    item_id: str
    start_time: datetime
    end_time: datetime
    stream: str
    seq: int
    payload: tuple[ObjectRef, ...]
    marker: ObjectRef
    #: when the primary finished writing the item (its marker's modification time)
    completed_at: datetime
    #: for a HISTORY item, the stream it branches off (at ``seq``, time ``start_time``)
    parent: str = ""

    @property
    def objects(self) -> tuple[ObjectRef, ...]:
        """Every object, in publish order: payload first, marker last."""
        return (*self.payload, self.marker)

    @property
    def size(self) -> int:
        return sum(o.size for o in self.objects)


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime

    def __contains__(self, moment: object) -> bool:
        return isinstance(moment, datetime) and self.start <= moment <= self.end


@dataclass(frozen=True)
class RestoreWindow:
    """The restorable points of one region: ``intervals`` in time order, possibly with gaps."""

    region: str
    role: RegionRole
    intervals: tuple[TimeRange, ...] = field(default=())

    @property
    def start(self) -> datetime | None:
        return self.intervals[0].start if self.intervals else None

    @property
    def end(self) -> datetime | None:
        return self.intervals[-1].end if self.intervals else None

    def covers(self, moment: datetime) -> bool:
        return any(moment in r for r in self.intervals)

    def describe(self) -> str:
        if not self.intervals:
            return "no restorable point"
        return ", ".join(f"{iso(r.start)} .. {iso(r.end)}" for r in self.intervals)


def utc(moment: datetime) -> datetime:
    """Return ``moment`` in UTC; naive datetimes are refused (they are a bug, not a default)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: btar only handles UTC-aware times")
    return moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z suffix, microseconds only when present."""
    text = utc(moment).isoformat()
    return text.replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """Parse an ISO 8601 time that names its zone (Z or an offset)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an ISO 8601 time") from exc
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone; write it in UTC, e.g. {text}Z")
    return moment.astimezone(UTC)

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


#: Digest algorithms btar knows, by the name a Digest carries. "crc32c" is Castagnoli's CRC,
#: big-endian, as GCS computes it; every value is lower-case hex.
DIGEST_ALGORITHMS = ("sha256", "sha1", "md5", "crc32c")
_DIGEST_LENGTHS = {"sha256": 64, "sha1": 40, "md5": 32, "crc32c": 8}
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Digest:
    """A digest of an object's bytes: its algorithm and its value in lower-case hex. Written
    ``algorithm:hex`` in the catalog and in messages."""

    algorithm: str
    value: str

    def __post_init__(self) -> None:
        length = _DIGEST_LENGTHS.get(self.algorithm)
        if length is None:
            raise ValueError(f"unknown digest algorithm {self.algorithm!r}")
        if len(self.value) != length or not set(self.value) <= _HEX:
            raise ValueError(f"{self.value!r} is not a {self.algorithm} digest in lower-case hex")

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.value}"

    @classmethod
    def parse(cls, text: str) -> Digest:
        """The inverse of str(): ``sha1:0a1b...``."""
        algorithm, _, value = text.partition(":")
        return cls(algorithm, value)


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    """What a copy must keep besides the bytes: the user metadata (names as the provider
    spells them: S3 lower-cases them, GCS keeps them, Azure names are C# identifiers), the
    content type and the content encoding. pghoard and myhoard keep compression, encryption
    key ids and WAL/GTID positions in the user metadata: a copy without it is useless to
    them. Empty strings stand for "not set"."""

    metadata: tuple[tuple[str, str], ...] = ()
    content_type: str = ""
    content_encoding: str = ""

    @classmethod
    def of(cls, metadata: dict[str, str] | None = None, content_type: str | None = None,
           content_encoding: str | None = None) -> ObjectMeta:
        return cls(tuple(sorted((metadata or {}).items())), content_type or "",
                   content_encoding or "")

    @property
    def as_dict(self) -> dict[str, str]:
        return dict(self.metadata)

    def __bool__(self) -> bool:
        return bool(self.metadata or self.content_type or self.content_encoding)


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a storage listing or stat says about one object. ``digests`` are the provider's
    own checksums of the stored bytes that came with the answer at no extra request (GCS MD5
    and CRC32C, Azure Content-MD5; on a stat or read, an S3 MD5 ETag); ``meta`` comes with a
    stat or a read, not with a listing."""

    key: str
    size: int
    last_modified: datetime
    sha256: str | None = None
    digests: tuple[Digest, ...] = ()
    meta: ObjectMeta | None = None

    def digest_of(self, algorithm: str) -> Digest | None:
        """The provider's digest of this algorithm, if it reported one."""
        if algorithm == "sha256" and self.sha256 is not None:
            return Digest("sha256", self.sha256)
        return next((d for d in self.digests if d.algorithm == algorithm), None)


def listing_digest(info: ObjectInfo) -> Digest | None:
    """The digest a layout that records none can pin an object to when it discovers it: the
    primary provider's MD5 (or, for a GCS composite object, its CRC32C) from the listing.
    A copy is then verified against the bytes that were listed, so a source rewritten after
    the listing is caught, not copied."""
    return info.digest_of("md5") or info.digest_of("crc32c")


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """One object of a backup item, relative to the service prefix, with what its bytes are
    known to hash to. ``sha256`` is what btar's own layouts record (and what a copy is
    verified against when known: the existing, cheapest path). Layouts that record no
    SHA-256 give ``digest`` instead: a digest of another algorithm the layout records
    (pgBackRest's ``rck``: SHA-1 of the stored file), or the primary provider's checksum from
    the listing (see listing_digest). With neither, each copy is verified against the
    source's own bytes per backend (see docs/verification.md)."""

    key: str
    size: int
    sha256: str | None
    digest: Digest | None = None

    @property
    def expected(self) -> Digest | None:
        """The digest a copy or a download of this object must match (SHA-256 first)."""
        return Digest("sha256", self.sha256) if self.sha256 is not None else self.digest


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

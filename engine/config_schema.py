"""The configuration file's schema: pydantic models, every rule a configuration obeys
(engine.config reads the file; this module is imported when a configuration is validated,
never by a command that needs only what engine.config reads without it).

Rules written here are mirrored, for the plain configurations they cover, by
engine.config's reading without pydantic: tests/unit/test_config_plain.py holds the two
to the same answers.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.alerts import AlertsConfig
from engine.config import (
    PREFIX_PATTERN,
    SERVICE_NAME_PATTERN,
    STANZA_PATTERN,
    nested_prefix,
    service_of,
)
from engine.cost import CostConfig
from engine.errors import UnknownName
from engine.model import Service, ServiceType
from engine.regions import get_region
from engine.storage.location_schema import Location
from engine.units import parse_duration

if TYPE_CHECKING:
    # engine.retention reads the catalog (sqlite_utils and the chain code): a command that
    # only reads its configuration, or the command line's parser (the fronts' commands
    # import config_path), must not pay for it.
    from engine.retention import RetentionPolicy


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetentionConfig(_Strict):
    """How long the additional region keeps old backups (it never deletes what its window
    needs, nor the only restorable copy of a point in time)."""

    #: base backups always kept, newest first
    keep_count: int = Field(ge=1, le=100_000)
    #: and every base backup younger than this (a duration such as "14d"), if set
    keep_age: float | None = None

    @field_validator("keep_age", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float | None:
        return None if value is None else parse_duration(value)

    def policy(self) -> RetentionPolicy:
        from engine.retention import RetentionPolicy

        age = timedelta(seconds=self.keep_age) if self.keep_age is not None else None
        return RetentionPolicy(self.keep_count, age)


class ServiceConfig(_Strict):
    name: str = Field(pattern=f"^{SERVICE_NAME_PATTERN}$")
    type: ServiceType
    region: str
    #: "native" (docs/native-layout.md), "pgbackrest" (docs/pgbackrest-layout.md: the
    #: prefix is the repository root, one stanza is read) or "barman-cloud"
    #: (docs/barman-cloud-layout.md: the prefix is barman-cloud's URL path, one server is read)
    layout: Literal["native", "pgbackrest", "barman-cloud"] = "native"
    prefix: str | None = Field(default=None, pattern=f"^{PREFIX_PATTERN}$")
    #: the pgBackRest stanza of this service (layout = "pgbackrest" only, and required there)
    stanza: str | None = Field(default=None, pattern=f"^{STANZA_PATTERN}$")
    #: the Barman server name (layout = "barman-cloud" only, and required there)
    server: str | None = Field(default=None, pattern=f"^{STANZA_PATTERN}$")
    #: retention in the additional region; without it btar never deletes there by itself
    retention: RetentionConfig | None = None

    @field_validator("prefix")
    @classmethod
    def _no_escape(cls, value: str | None) -> str | None:
        if value is not None and (".." in value.split("/") or value.endswith("/")):
            raise ValueError("a prefix has no '..' segment and no trailing '/'")
        return value

    @model_validator(mode="after")
    def _layout_fits(self) -> ServiceConfig:
        if self.layout == "pgbackrest":
            if self.type != ServiceType.POSTGRESQL:
                raise ValueError("layout: a pgbackrest repository holds PostgreSQL backups; "
                                 f"a {self.type.value} service uses layout = \"native\"")
            if self.stanza is None:
                raise ValueError("stanza: layout = \"pgbackrest\" needs the stanza to read, "
                                 'e.g. stanza = "main"')
        elif self.stanza is not None:
            raise ValueError('stanza: only a service with layout = "pgbackrest" has a stanza')
        if self.layout == "barman-cloud":
            if self.type != ServiceType.POSTGRESQL:
                raise ValueError("layout: Barman Cloud holds PostgreSQL backups; a "
                                 f"{self.type.value} service uses layout = \"native\"")
            if self.server is None:
                raise ValueError('server: layout = "barman-cloud" needs the Barman server name '
                                 'given to barman-cloud-backup, e.g. server = "pg"')
        elif self.server is not None:
            raise ValueError('server: only a service with layout = "barman-cloud" has a server')
        return self

    def to_service(self) -> Service:
        return service_of(self.name, self.type, self.region, self.layout, self.prefix,
                          self.stanza, self.server)


class ReplicationConfig(_Strict):
    #: copies in flight at once
    concurrency: int = Field(default=8, ge=1, le=256)
    #: longest wait in seconds between two listings of a service by `btar sync` (when idle)
    poll_interval: float = Field(default=10.0, gt=0)
    #: wait after a listing that found work; the wait doubles after each idle listing
    busy_poll_interval: float = Field(default=0.5, gt=0)
    #: streams base backups may hold at once (default: all but a quarter of concurrency, at
    #: least one kept): the rest stay free for log segments, so WAL never waits behind a base
    base_streams: int | None = Field(default=None, ge=1, le=256)
    #: accepted from files written when copies went in batches; copies are now scheduled one
    #: by one, so it has no effect
    batch_size: int | None = Field(default=None, ge=1, le=10_000)
    #: attempts per object between two listings of its service, then the item is failed
    max_attempts: int = Field(default=3, ge=1, le=100)
    #: seconds between full listings of a primary (0: every pass); passes in between list
    #: only what is new since the last look
    full_listing_interval: float = Field(default=600.0, ge=0)
    #: seconds after which a new key of the primary counts as settled (see engine.listing)
    listing_settle: float = Field(default=60.0, ge=0)


class Config(_Strict):
    catalog: str = "btar.sqlite"
    replication: ReplicationConfig = ReplicationConfig()
    #: each region's location, as the storages take it (its rules: engine.storage.location_schema)
    regions: dict[str, Location]
    services: list[ServiceConfig] = []
    alerts: AlertsConfig = AlertsConfig()
    cost: CostConfig = CostConfig()

    @field_validator("regions", mode="before")
    @classmethod
    def _url_shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"url": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("regions")
    @classmethod
    def _known_regions(cls, value: dict[str, Any]) -> dict[str, Any]:
        for region_id in value:
            try:
                get_region(region_id)
            except UnknownName as error:
                raise ValueError(str(error)) from None
        return value

    @model_validator(mode="after")
    def _services_fit(self) -> Config:
        seen: set[str] = set()
        for index, service in enumerate(self.services):
            if service.name in seen:
                raise ValueError(f"services[{index}]: service {service.name!r} is declared twice")
            seen.add(service.name)
            if service.region not in self.regions:
                raise ValueError(
                    f"services[{index}].region: {service.region!r} has no location in [regions]")
        nested = nested_prefix(s.prefix or s.name for s in self.services)
        if nested is not None:
            # Shared prefixes would let one service's copies or deletions touch another's.
            raise ValueError(f"services: prefix {nested[1]!r} lies inside {nested[0]!r}")
        return self

"""The configuration file (TOML), validated with pydantic. Every error names the file, the key
and what is wrong.

Example::

    catalog = "btar.sqlite"            # relative to this file

    [replication]
    concurrency = 8
    poll_interval = 10.0

    [regions]
    aws-eu-west-1 = "file:///srv/backups/aws-eu-west-1"
    aws-eu-central-1 = { url = "s3://backups-fra/btar", endpoint_url = "http://127.0.0.1:9000" }

    [[services]]
    name = "orders"
    type = "postgresql"
    region = "aws-eu-west-1"
"""

from __future__ import annotations

import itertools
import os
import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.alerts import AlertsConfig
from engine.cost import CostConfig
from engine.errors import ConfigError, UnknownName
from engine.model import Service, ServiceType
from engine.regions import get_region
from engine.storage.locations import LocationConfig
from engine.units import parse_duration

if TYPE_CHECKING:
    # engine.retention reads the catalog (sqlite_utils and the chain code): a command that
    # only reads its configuration, or the command line's parser (the fronts' commands
    # import config_path), must not pay for it.
    from engine.retention import RetentionPolicy

DEFAULT_PATH = "btar.toml"
ENV_VAR = "BTAR_CONFIG"


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
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    type: ServiceType
    region: str
    #: "native" (docs/native-layout.md), "pgbackrest" (docs/pgbackrest-layout.md: the
    #: prefix is the repository root, one stanza is read) or "barman-cloud"
    #: (docs/barman-cloud-layout.md: the prefix is barman-cloud's URL path, one server is read)
    layout: Literal["native", "pgbackrest", "barman-cloud"] = "native"
    prefix: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,255}$")
    #: the pgBackRest stanza of this service (layout = "pgbackrest" only, and required there)
    stanza: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    #: the Barman server name (layout = "barman-cloud" only, and required there)
    server: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
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
        # The layout name carries its option ("pgbackrest:<stanza>"): see engine.formats.
        layout = f"pgbackrest:{self.stanza}" if self.layout == "pgbackrest" else self.layout
        if self.layout == "barman-cloud":
            layout = f"barman-cloud:{self.server}"
        return Service(self.name, self.type, self.region, layout, self.prefix or self.name)


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
    regions: dict[str, LocationConfig]
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
        prefixes = sorted((s.prefix or s.name) + "/" for s in self.services)
        for shorter, longer in itertools.pairwise(prefixes):
            if longer.startswith(shorter):
                # Shared prefixes would let one service's copies or deletions touch another's.
                raise ValueError(f"services: prefix {longer[:-1]!r} lies inside {shorter[:-1]!r}")
        return self


class LoadedConfig:
    """A validated configuration plus where it came from (relative paths resolve there)."""

    def __init__(self, config: Config, path: Path) -> None:
        self.config = config
        self.path = path

    @property
    def catalog_path(self) -> Path:
        catalog = Path(self.config.catalog)
        return catalog if catalog.is_absolute() else self.path.parent / catalog

    def services(self) -> dict[str, Service]:
        return {s.name: s.to_service() for s in self.config.services}

    def retention(self) -> dict[str, RetentionPolicy]:
        """The retention policy of each service that has one."""
        return {s.name: s.retention.policy() for s in self.config.services if s.retention}


def config_path(explicit: str | None) -> Path:
    """--config, else $BTAR_CONFIG, else ./btar.toml."""
    return Path(explicit or os.environ.get(ENV_VAR) or DEFAULT_PATH)


def load_config(path: Path) -> LoadedConfig:
    """Read and validate a configuration file."""
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(shown, "", "no such file; create one with `btar init`") from None
    except OSError as error:
        raise ConfigError(shown, "", f"cannot read it: {error.strerror}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(shown, "", f"not valid TOML: {error}") from None
    return LoadedConfig(parse_config(raw, shown), path.resolve())


def parse_config(raw: dict[str, Any], source: str) -> Config:
    """Validate a parsed document; the first error becomes a ConfigError."""
    try:
        return Config.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        key = _dotted(first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        located = re.match(r"^([A-Za-z_][\w.\[\]-]*): (.+)$", message)
        if not key and located:
            # Cross-field checks name their key at the start of the message.
            key, message = located.group(1), located.group(2)
        if first["type"] == "missing":
            message = "this key is required"
        elif first["type"] == "extra_forbidden":
            message = "unknown key (check its spelling)"
        extra = len(error.errors()) - 1
        if extra:
            message += f" (and {extra} more problem{'s' if extra > 1 else ''})"
        raise ConfigError(source, key, message) from None


def _dotted(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in {"file", "memory", "s3", "gs", "az"}:
            continue  # the tag of the location union, not a key the user wrote
        else:
            text += f".{part}" if text else str(part)
    return text

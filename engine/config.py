"""The configuration file (TOML). Every error names the file, the key and what is wrong.

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

The rules are pydantic models (engine.config_schema, and engine.storage.location_schema
for a location). Importing pydantic and building those models is some 100 ms, validating a
thousand services some 25 ms more: most of what `btar status` of a fleet used to cost beyond
reading its catalog, and of a small `btar sync --once`. So a file is first read without them
(``_plain``): a configuration of the plain kind (the keys above with their plain values, each
location a URL or a table of its backend's settings, and no [alerts] or [cost] table, no
retention, no layout option) is checked here against the same rules, and validated by the
models only when a command asks for what the plain reading does not give
(``LoadedConfig.config``: thresholds, prices). Its locations are made from what was checked
when first asked for (``LoadedConfig.location``), without pydantic: `btar status` and `btar
sync` of a plain file never import it. Anything else, or anything doubtful (a value of
another type the models would convert, a key the reading does not know), is validated by the
models at once, as before: the plain reading never accepts what they refuse
(tests/unit/test_config_plain.py). Either way a file is valid once loaded: a command that
asks for the models later cannot fail on them.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import tomllib
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlsplit

from engine.errors import ConfigError, UnknownName
from engine.model import Service, ServiceType

if TYPE_CHECKING:
    # the schema's models, under the names engine.config has always given them (__getattr__)
    from engine.config_schema import Config as Config
    from engine.config_schema import ReplicationConfig as ReplicationConfig
    from engine.config_schema import RetentionConfig as RetentionConfig
    from engine.config_schema import ServiceConfig as ServiceConfig
    from engine.retention import RetentionPolicy
    from engine.storage.locations import LocationConfig

DEFAULT_PATH = "btar.toml"
ENV_VAR = "BTAR_CONFIG"

#: what the schema's patterns match, whole (pydantic's rust regex anchors ``^...$`` at the
#: ends of the text; Python's ``$`` would also match before a final newline: fullmatch)
SERVICE_NAME_PATTERN = r"[a-z0-9][a-z0-9-]{0,62}"
PREFIX_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._/-]{0,255}"
STANZA_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"

#: what a command may read of its configuration beyond its services, catalog and replication
#: settings (engine.cli.commands.Command.config_parts, LoadedConfig.prepare)
ConfigPart = Literal["locations", "retention", "thresholds", "prices"]
#: the parts a configuration read plain gives without the models
_PLAIN_PARTS: frozenset[ConfigPart] = frozenset({"locations", "retention"})

#: the schema's models, by the name engine.config has always given them
_SCHEMA_NAMES = frozenset({"Config", "ReplicationConfig", "RetentionConfig", "ServiceConfig"})


def __getattr__(name: str) -> object:
    """The schema's models, imported (with pydantic) when first asked for."""
    if name not in _SCHEMA_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import engine.config_schema as schema

    value = getattr(schema, name)
    globals()[name] = value
    return value


def service_of(name: str, kind: ServiceType, region: str, layout: str, prefix: str | None,
               stanza: str | None, server: str | None) -> Service:
    """The service a validated [[services]] entry declares."""
    # The layout name carries its option ("pgbackrest:<stanza>"): see engine.formats.
    named = f"pgbackrest:{stanza}" if layout == "pgbackrest" else layout
    if layout == "barman-cloud":
        named = f"barman-cloud:{server}"
    return Service(name, kind, region, named, prefix or name)


def nested_prefix(prefixes: Iterable[str]) -> tuple[str, str] | None:
    """Two service prefixes of which the second lies inside the first, if any."""
    ordered = sorted(prefix + "/" for prefix in prefixes)
    for shorter, longer in itertools.pairwise(ordered):
        if longer.startswith(shorter):
            return shorter[:-1], longer[:-1]
    return None


class _Plain:
    """What a configuration of the plain kind says, checked without the models."""

    __slots__ = ("catalog", "regions", "replication", "services")

    def __init__(self, catalog: str, regions: dict[str, dict[str, Any]],
                 replication: dict[str, Any], services: dict[str, Service]) -> None:
        self.catalog = catalog
        #: each region's location: its url and the settings written, as the model would
        #: hold them (engine.storage.locations.location_of makes the value)
        self.regions = regions
        #: every field of ReplicationConfig, as the model would hold it
        self.replication = replication
        self.services = services


class LoadedConfig:
    """A valid configuration plus where it came from (relative paths resolve there)."""

    def __init__(self, config: Config | None, path: Path, *,
                 plain: _Plain | None = None, raw: dict[str, Any] | None = None,
                 source: str = "") -> None:
        if config is None and (plain is None or raw is None):
            raise ValueError("a LoadedConfig holds a validated configuration, or a plain one")
        self._config = config
        self._plain = plain
        self._raw = raw
        self._source = source
        self.path = path

    @property
    def config(self) -> Config:
        """The configuration as the schema's models hold it (validated now if it was read
        plain: it passes, the plain reading having checked the same rules)."""
        if self._config is None:
            assert self._raw is not None
            self._config = parse_config(self._raw, self._source)
            self._raw = None
        return self._config

    def prepare(self, parts: Collection[ConfigPart]) -> None:
        """Build the models now if the plain reading does not give all of ``parts`` (a
        command asks while it sets up, with the cycle collector off: engine.cli.program)."""
        if self._config is None and not _PLAIN_PARTS.issuperset(parts):
            self.config  # noqa: B018

    @property
    def catalog_path(self) -> Path:
        catalog = Path(self._plain.catalog if self._plain is not None else self.config.catalog)
        return catalog if catalog.is_absolute() else self.path.parent / catalog

    def services(self) -> dict[str, Service]:
        if self._plain is not None:
            return dict(self._plain.services)
        return {s.name: s.to_service() for s in self.config.services}

    def region_names(self) -> tuple[str, ...]:
        """The regions [regions] gives a location."""
        if self._plain is not None:
            return tuple(self._plain.regions)
        return tuple(self.config.regions)

    def location(self, region: str) -> LocationConfig:
        """The location [regions] gives ``region`` (KeyError if none), as the storages take
        it; made without the models from a file read plain."""
        if self._plain is not None:
            from engine.storage.locations import location_of

            return location_of(self._plain.regions[region])
        return self.config.regions[region]

    def replication(self) -> dict[str, Any]:
        """Every setting of [replication], defaults included."""
        if self._plain is not None:
            return dict(self._plain.replication)
        return self.config.replication.model_dump()

    def retention(self) -> dict[str, RetentionPolicy]:
        """The retention policy of each service that has one."""
        if self._plain is not None:
            return {}  # a plain configuration sets none
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
    plain = _plain(raw)
    if plain is not None:
        return LoadedConfig(None, path.resolve(), plain=plain, raw=raw, source=shown)
    return LoadedConfig(parse_config(raw, shown), path.resolve())


def parse_config(raw: dict[str, Any], source: str) -> Config:
    """Validate a parsed document; the first error becomes a ConfigError."""
    from pydantic import ValidationError

    from engine.config_schema import Config

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


# The plain reading. Each check below is one rule of engine.config_schema, for the values
# it accepts; anything it does not accept (a value of another type the models would
# convert, a key it does not know) makes the whole file go to the models instead.

_SERVICE_NAME = re.compile(SERVICE_NAME_PATTERN)
_PREFIX = re.compile(PREFIX_PATTERN)
_SERVICE_TYPES = {str(kind): kind for kind in ServiceType}
_SERVICE_KEYS = frozenset({"name", "type", "region", "layout", "prefix"})
_TOP_KEYS = frozenset({"catalog", "replication", "regions", "services"})

_MIB, _GIB = 1024**2, 1024**3
#: a numeric field's rule: (type, lowest, whether the lowest is allowed, highest); a float
#: field takes an int as the same float, as the model does
_Number = tuple[type, float, bool, float | None]

#: ReplicationConfig's fields: their rule and default
REPLICATION_RULES: dict[str, tuple[type, float, bool, float | None, Any]] = {
    "concurrency": (int, 1, True, 256, 8),
    "poll_interval": (float, 0, False, None, 10.0),
    "busy_poll_interval": (float, 0, False, None, 0.5),
    "base_streams": (int, 1, True, 256, None),
    "batch_size": (int, 1, True, 10_000, None),
    "max_attempts": (int, 1, True, 100, 3),
    "full_listing_interval": (float, 0, True, None, 600.0),
    "listing_settle": (float, 0, True, None, 60.0),
}

#: a text field of a location (any text)
_TEXT = "text"
#: a text field that is a URL, which carries no credentials (refuse_credentials)
_URL = "url"
#: each scheme's location model (engine.storage.location_schema): the fields besides url,
#: copy_mode and the scheme's tag, each with its rule
LOCATION_RULES: dict[str, dict[str, str | _Number]] = {
    "file": {},
    "memory": {},
    "s3": {"read_timeout": (float, 0, False, None), "region": _TEXT, "endpoint_url": _URL,
           "profile": _TEXT, "sse_kms_key_id": _TEXT,
           "multipart_threshold": (int, 5 * _MIB, True, 5 * _GIB),
           "part_size": (int, 5 * _MIB, True, 5 * _GIB), "max_attempts": (int, 1, True, 50)},
    "gs": {"read_timeout": (float, 0, False, None), "project": _TEXT, "emulator_host": _URL,
           "kms_key_name": _TEXT, "rewrite_chunk_bytes": (int, _MIB, True, None),
           "max_attempts": (int, 1, True, 50)},
    "az": {"read_timeout": (float, 0, False, None), "account_url": _URL,
           "account_key_env": _TEXT, "sas_token_env": _TEXT, "encryption_scope": _TEXT,
           "api_version": _TEXT, "copy_timeout_per_gib": (float, 0, False, None),
           "max_attempts": (int, 1, True, 50)},
}
_COPY_MODES = ("auto", "stream")


def _plain(raw: dict[str, Any]) -> _Plain | None:
    """The configuration ``raw`` describes when it is of the plain kind and valid, else
    None (the models decide)."""
    if not raw.keys() <= _TOP_KEYS or "regions" not in raw:
        return None
    catalog = raw.get("catalog", "btar.sqlite")
    replication = _plain_replication(raw.get("replication", {}))
    regions = _plain_regions(raw["regions"])
    if type(catalog) is not str or replication is None or regions is None:
        return None
    services = _plain_services(raw.get("services", []), regions)
    if services is None:
        return None
    return _Plain(catalog, regions, replication, services)


def _plain_number(rule: _Number, value: Any) -> int | float | None:
    """``value`` as the model holds it if it keeps ``rule``, else None."""
    kind, lowest, inclusive, highest = rule
    if kind is int and type(value) is not int:
        return None
    if kind is float and (type(value) not in (int, float) or not math.isfinite(value)):
        return None
    number: int | float = float(value) if kind is float else value
    if number < lowest or (number == lowest and not inclusive) \
            or (highest is not None and number > highest):
        return None
    return number


def _plain_replication(table: Any) -> dict[str, Any] | None:
    if type(table) is not dict or not table.keys() <= REPLICATION_RULES.keys():
        return None
    values: dict[str, Any] = {}
    for key, (kind, lowest, inclusive, highest, default) in REPLICATION_RULES.items():
        value = default
        if key in table:
            value = _plain_number((kind, lowest, inclusive, highest), table[key])
            if value is None:
                return None
        values[key] = value
    return values


def _plain_regions(table: Any) -> dict[str, dict[str, Any]] | None:
    from engine.regions import get_region

    if type(table) is not dict:
        return None
    regions: dict[str, dict[str, Any]] = {}
    for region, location in table.items():
        settings = _plain_location(location)
        if settings is None:
            return None
        try:
            get_region(region)
        except UnknownName:
            return None
        regions[region] = settings
    return regions


def _plain_location(location: Any) -> dict[str, Any] | None:
    """A location's url and settings as its model holds them, if it accepts them."""
    table = {"url": location} if type(location) is str else location
    if type(table) is not dict:
        return None
    url = table.get("url")
    scheme = _plain_scheme(url) if type(url) is str else None
    if scheme is None:
        return None
    rules = LOCATION_RULES[scheme]
    settings: dict[str, Any] = {}
    for key, value in table.items():
        rule = rules.get(key)
        if key == "url":
            pass
        elif key == "copy_mode":
            if type(value) is not str or value not in _COPY_MODES:
                return None
        elif rule is None:
            return None  # the scheme's tag, or a key the models refuse
        elif isinstance(rule, str):
            if type(value) is not str or (rule == _URL and not _no_credentials(value)):
                return None
        else:
            value = _plain_number(rule, value)
            if value is None:
                return None
        settings[key] = value
    return settings


def _no_credentials(url: str) -> bool:
    """A URL refuse_credentials (engine.storage.locations) lets through."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return not ("@" in parts.netloc or parts.query or parts.fragment
                or url.rstrip().endswith(("?", "#")))


def _plain_scheme(url: str) -> str | None:
    """The scheme of a location URL its model accepts (a known scheme, no credentials in
    it, and a local one absolute: engine.storage.location_schema), else None."""
    if not _no_credentials(url):
        return None
    parts = urlsplit(url)
    if parts.scheme not in LOCATION_RULES:
        return None
    if parts.scheme == "file" and (parts.netloc not in ("", "localhost")
                                   or not unquote(parts.path).startswith("/")):
        return None
    return parts.scheme


def _plain_services(entries: Any, regions: Collection[str]) -> dict[str, Service] | None:
    if type(entries) is not list:
        return None
    located = set(regions)
    services: dict[str, Service] = {}
    for entry in entries:
        if type(entry) is not dict or not entry.keys() <= _SERVICE_KEYS:
            return None
        name, kind, region = entry.get("name"), entry.get("type"), entry.get("region")
        layout, prefix = entry.get("layout", "native"), entry.get("prefix")
        if type(name) is not str or not _SERVICE_NAME.fullmatch(name) or name in services \
                or type(kind) is not str or kind not in _SERVICE_TYPES \
                or type(region) is not str or region not in located or layout != "native":
            return None
        if prefix is not None and (type(prefix) is not str or not _PREFIX.fullmatch(prefix)
                                   or ".." in prefix.split("/") or prefix.endswith("/")):
            return None
        services[name] = service_of(name, _SERVICE_TYPES[kind], region, "native", prefix,
                                    None, None)
    if nested_prefix(service.key_prefix for service in services.values()) is not None:
        return None
    return services

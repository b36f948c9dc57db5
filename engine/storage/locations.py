"""Backup location settings per backend (one frozen value per URL scheme) and the factory
that opens them. Cloud SDKs are imported only when a location of theirs is opened, and
pydantic never: a configuration's [regions] are checked by the rules of
engine.storage.location_schema (pydantic models that give these values), or, for a plain
file, by engine.config's reading without them (`btar sync` of a plain file never imports
pydantic). A value made here directly (a test, the simulator) is not checked.

Credentials never live here: they come from the environment or the provider's standard chain,
and settings only name the environment variables that hold them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from engine.storage.base import Storage


def refuse_credentials(url: str) -> str:
    """Refuse a URL that carries a credential (user info, or a query string such as a SAS
    token or a signature). The message never repeats the URL: it may hold a secret."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValueError("not a valid URL") from None
    if "@" in parts.netloc:
        raise ValueError("a URL here carries no credentials (user:secret@ was given; the value "
                         "is not shown); btar takes them from the environment or the "
                         "provider's standard credential chain")
    if parts.query or parts.fragment or url.rstrip().endswith(("?", "#")):
        raise ValueError("a URL here takes no query string or fragment (a SAS token or a "
                         "signature is a credential; the value is not shown); name an "
                         "environment variable instead")
    return url


@dataclass(frozen=True, slots=True, kw_only=True)
class _Location:
    url: str
    #: "auto" uses a server-side copy where the provider can; "stream" always streams bytes
    #: through btar (for providers that refuse server-side copies between the two regions).
    copy_mode: Literal["auto", "stream"] = "auto"

    def display(self) -> str:
        """The location for messages: the URL without any query string or user info."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        return f"{parts.scheme}://{host}{parts.path}"


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalLocation(_Location):
    """file:///absolute/path"""

    @property
    def path(self) -> Path:
        return Path(unquote(urlsplit(self.url).path))


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryLocation(_Location):
    """memory://name: an in-process store, shared by name within one process (tests, demos)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _CloudLocation(_Location):
    #: seconds a request may wait for an answer before it counts as lost (default: the
    #: backend's, see engine/storage/<backend>.py for why)
    read_timeout: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class S3Location(_CloudLocation):
    """s3://bucket/prefix"""

    #: AWS region name (eu-west-1); by default derived from the btar region id (aws-eu-west-1).
    region: str | None = None
    #: for S3-compatible services and emulators
    endpoint_url: str | None = None
    #: a named profile of the standard AWS config; otherwise the default credential chain
    profile: str | None = None
    sse_kms_key_id: str | None = None
    multipart_threshold: int = 5 * 1024**3
    part_size: int = 512 * 1024**2
    max_attempts: int = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class GcsLocation(_CloudLocation):
    """gs://bucket/prefix"""

    project: str | None = None
    #: e.g. http://127.0.0.1:4443 for fake-gcs-server; else STORAGE_EMULATOR_HOST or real GCS
    emulator_host: str | None = None
    kms_key_name: str | None = None
    #: bytes per rewrite call (GCS maxBytesRewrittenPerCall); None lets the service choose
    rewrite_chunk_bytes: int | None = None
    max_attempts: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AzureLocation(_CloudLocation):
    """az://account/container/prefix"""

    #: e.g. http://127.0.0.1:10000/acct1 for Azurite; default https://<account>.blob.core.windows.net
    account_url: str | None = None
    #: names of environment variables holding a shared key or a SAS token (never the values)
    account_key_env: str | None = None
    sas_token_env: str | None = None
    encryption_scope: str | None = None
    #: pin the service API version (Azurite may refuse the SDK's newest)
    api_version: str | None = None
    #: a server-side copy may take this long per GiB (plus a minute) before it is abandoned
    copy_timeout_per_gib: float = 600.0
    max_attempts: int | None = None


LocationConfig = LocalLocation | MemoryLocation | S3Location | GcsLocation | AzureLocation

#: the value of each scheme a location's URL may have
BY_SCHEME: dict[str, type[LocationConfig]] = {
    "file": LocalLocation, "memory": MemoryLocation, "s3": S3Location, "gs": GcsLocation,
    "az": AzureLocation}


def location_of(settings: dict[str, Any]) -> LocationConfig:
    """The location a checked table of [regions] gives (``url`` and the settings written):
    its URL's scheme names the backend."""
    return BY_SCHEME[urlsplit(settings["url"]).scheme](**settings)


_MEMORY: dict[str, Storage] = {}


def open_location(location: LocationConfig, region_id: str, *,
                  create: bool = False) -> Storage:
    """Open the storage of one region's location. btar never creates a location folder (a
    missing one is an unmounted volume or a wrong path, and a folder made in its place would
    read as an empty primary or fill the wrong disk); ``create`` is for what writes backups
    into its own location (the demo producers, the example backup scripts)."""
    if isinstance(location, LocalLocation):
        from engine.storage.local import LocalStorage

        return LocalStorage(location.path, create=create)
    if isinstance(location, MemoryLocation):
        from engine.storage.memory import MemoryStorage

        name = urlsplit(location.url).netloc or region_id
        if name not in _MEMORY:
            _MEMORY[name] = MemoryStorage(name)
        return _MEMORY[name]
    if isinstance(location, S3Location):
        from engine.storage.s3 import S3Storage

        return S3Storage.from_location(location, region_id)
    if isinstance(location, GcsLocation):
        from engine.storage.gcs import GcsStorage

        return GcsStorage.from_location(location, region_id)
    from engine.storage.azure import AzureStorage

    return AzureStorage.from_location(location, region_id)

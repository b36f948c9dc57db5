"""Backup location settings per backend (a pydantic union keyed by URL scheme) and the factory
that opens them. Cloud SDKs are imported only when a location of theirs is opened.

Credentials never live here: they come from the environment or the provider's standard chain,
and settings only name the environment variables that hold them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

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


class _Location(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    #: "auto" uses a server-side copy where the provider can; "stream" always streams bytes
    #: through btar (for providers that refuse server-side copies between the two regions).
    copy_mode: Literal["auto", "stream"] = "auto"

    @field_validator("url")
    @classmethod
    def _no_credentials(cls, value: str) -> str:
        return refuse_credentials(value)

    def display(self) -> str:
        """The location for messages: the URL without any query string or user info."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        return f"{parts.scheme}://{host}{parts.path}"


class LocalLocation(_Location):
    scheme: Literal["file"] = "file"

    @field_validator("url")
    @classmethod
    def _absolute(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            raise ValueError("a local location is file:///absolute/path")
        if not unquote(parts.path).startswith("/"):
            raise ValueError("a local location needs an absolute path: file:///absolute/path")
        return value

    @property
    def path(self) -> Path:
        return Path(unquote(urlsplit(self.url).path))


class MemoryLocation(_Location):
    """memory://name: an in-process store, shared by name within one process (tests, demos)."""

    scheme: Literal["memory"] = "memory"


class _CloudLocation(_Location):
    #: seconds a request may wait for an answer before it counts as lost (default: the
    #: backend's, see engine/storage/<backend>.py for why)
    read_timeout: float | None = Field(default=None, gt=0)


class S3Location(_CloudLocation):
    """s3://bucket/prefix"""

    scheme: Literal["s3"] = "s3"
    #: AWS region name (eu-west-1); by default derived from the btar region id (aws-eu-west-1).
    region: str | None = None
    #: for S3-compatible services and emulators
    endpoint_url: str | None = None
    #: a named profile of the standard AWS config; otherwise the default credential chain
    profile: str | None = None
    sse_kms_key_id: str | None = None
    multipart_threshold: int = Field(default=5 * 1024**3, ge=5 * 1024**2, le=5 * 1024**3)
    part_size: int = Field(default=512 * 1024**2, ge=5 * 1024**2, le=5 * 1024**3)
    max_attempts: int = Field(default=8, ge=1, le=50)

    @field_validator("endpoint_url")
    @classmethod
    def _plain_endpoint(cls, value: str | None) -> str | None:
        return None if value is None else refuse_credentials(value)


class GcsLocation(_CloudLocation):
    """gs://bucket/prefix"""

    scheme: Literal["gs"] = "gs"
    project: str | None = None
    #: e.g. http://127.0.0.1:4443 for fake-gcs-server; else STORAGE_EMULATOR_HOST or real GCS
    emulator_host: str | None = None
    kms_key_name: str | None = None
    #: bytes per rewrite call (GCS maxBytesRewrittenPerCall); None lets the service choose
    rewrite_chunk_bytes: int | None = Field(default=None, ge=1024**2)
    max_attempts: int | None = Field(default=None, ge=1, le=50)

    @field_validator("emulator_host")
    @classmethod
    def _plain_host(cls, value: str | None) -> str | None:
        return None if value is None else refuse_credentials(value)


class AzureLocation(_CloudLocation):
    """az://account/container/prefix"""

    scheme: Literal["az"] = "az"
    #: e.g. http://127.0.0.1:10000/acct1 for Azurite; default https://<account>.blob.core.windows.net
    account_url: str | None = None
    #: names of environment variables holding a shared key or a SAS token (never the values)
    account_key_env: str | None = None
    sas_token_env: str | None = None
    encryption_scope: str | None = None
    #: pin the service API version (Azurite may refuse the SDK's newest)
    api_version: str | None = None
    #: a server-side copy may take this long per GiB (plus a minute) before it is abandoned
    copy_timeout_per_gib: float = Field(default=600.0, gt=0)
    max_attempts: int | None = Field(default=None, ge=1, le=50)

    @field_validator("account_url")
    @classmethod
    def _plain_account_url(cls, value: str | None) -> str | None:
        return None if value is None else refuse_credentials(value)


def _scheme_of(value: Any) -> str:
    url = value.get("url", "") if isinstance(value, dict) else getattr(value, "url", "")
    try:
        return urlsplit(str(url)).scheme or "missing"
    except ValueError:  # e.g. an unbalanced "[": the union's own error explains it
        return "invalid"


LocationConfig = Annotated[
    Annotated[LocalLocation, Tag("file")]
    | Annotated[MemoryLocation, Tag("memory")]
    | Annotated[S3Location, Tag("s3")]
    | Annotated[GcsLocation, Tag("gs")]
    | Annotated[AzureLocation, Tag("az")],
    Discriminator(
        _scheme_of,
        custom_error_type="location_scheme",
        custom_error_message="a location URL starts with file://, s3://, gs:// or az://",
    ),
]

SCHEMES = ("file", "memory", "s3", "gs", "az")

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

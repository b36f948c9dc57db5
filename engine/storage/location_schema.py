"""The rules of a location in a configuration's [regions] (a table, or its URL alone): pydantic
models, one per backend, chosen by the URL's scheme, each giving the settings' value of
engine.storage.locations (``Location``, the type engine.config_schema's regions hold).

engine.config checks plain files against the same rules without pydantic
(tests/unit/test_config_plain.py holds the two to the same answers); the fields, their
defaults and their meaning are those of the values (engine.storage.locations).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import unquote, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    GetCoreSchemaHandler,
    Tag,
    field_validator,
)
from pydantic_core import CoreSchema, core_schema

from engine.storage.locations import (
    AzureLocation,
    GcsLocation,
    LocalLocation,
    LocationConfig,
    MemoryLocation,
    S3Location,
    refuse_credentials,
)


class _Location(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the value these settings give
    value_type: ClassVar[type[LocationConfig]]

    url: str
    copy_mode: Literal["auto", "stream"] = "auto"

    @field_validator("url")
    @classmethod
    def _no_credentials(cls, value: str) -> str:
        return refuse_credentials(value)

    def value(self) -> LocationConfig:
        """The settings as the storages take them."""
        return self.value_type(**{name: getattr(self, name) for name in type(self).model_fields
                                  if name != "scheme"})


class LocalRules(_Location):
    value_type = LocalLocation
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


class MemoryRules(_Location):
    value_type = MemoryLocation
    scheme: Literal["memory"] = "memory"


class _CloudRules(_Location):
    read_timeout: float | None = Field(default=None, gt=0)


class S3Rules(_CloudRules):
    value_type = S3Location
    scheme: Literal["s3"] = "s3"
    region: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None
    sse_kms_key_id: str | None = None
    multipart_threshold: int = Field(default=5 * 1024**3, ge=5 * 1024**2, le=5 * 1024**3)
    part_size: int = Field(default=512 * 1024**2, ge=5 * 1024**2, le=5 * 1024**3)
    max_attempts: int = Field(default=8, ge=1, le=50)

    @field_validator("endpoint_url")
    @classmethod
    def _plain_endpoint(cls, value: str | None) -> str | None:
        return None if value is None else refuse_credentials(value)


class GcsRules(_CloudRules):
    value_type = GcsLocation
    scheme: Literal["gs"] = "gs"
    project: str | None = None
    emulator_host: str | None = None
    kms_key_name: str | None = None
    rewrite_chunk_bytes: int | None = Field(default=None, ge=1024**2)
    max_attempts: int | None = Field(default=None, ge=1, le=50)

    @field_validator("emulator_host")
    @classmethod
    def _plain_host(cls, value: str | None) -> str | None:
        return None if value is None else refuse_credentials(value)


class AzureRules(_CloudRules):
    value_type = AzureLocation
    scheme: Literal["az"] = "az"
    account_url: str | None = None
    account_key_env: str | None = None
    sas_token_env: str | None = None
    encryption_scope: str | None = None
    api_version: str | None = None
    copy_timeout_per_gib: float = Field(default=600.0, gt=0)
    max_attempts: int | None = Field(default=None, ge=1, le=50)

    @field_validator("account_url")
    @classmethod
    def _plain_account_url(cls, value: str | None) -> str | None:
        return None if value is None else refuse_credentials(value)


#: the rules of each scheme
RULES: dict[str, type[_Location]] = {
    "file": LocalRules, "memory": MemoryRules, "s3": S3Rules, "gs": GcsRules, "az": AzureRules}


def _scheme_of(value: Any) -> str:
    url = value.get("url", "") if isinstance(value, dict) else getattr(value, "url", "")
    try:
        return urlsplit(str(url)).scheme or "missing"
    except ValueError:  # e.g. an unbalanced "[": the union's own error explains it
        return "invalid"


LocationRules = Annotated[
    Annotated[LocalRules, Tag("file")]
    | Annotated[MemoryRules, Tag("memory")]
    | Annotated[S3Rules, Tag("s3")]
    | Annotated[GcsRules, Tag("gs")]
    | Annotated[AzureRules, Tag("az")],
    Discriminator(
        _scheme_of,
        custom_error_type="location_scheme",
        custom_error_message="a location URL starts with file://, s3://, gs:// or az://",
    ),
]


class _ValidatedByRules:
    """A location's table validated by LocationRules (their errors, located at their key),
    held as the value the rules give."""

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(
            _value, handler.generate_schema(LocationRules),
            serialization=core_schema.plain_serializer_function_ser_schema(asdict))


def _value(rules: _Location) -> LocationConfig:
    return rules.value()


#: a location as a model's field: a table (or URL) in, the value out
Location = Annotated[LocationConfig, _ValidatedByRules()]

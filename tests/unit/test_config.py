"""The configuration file: valid forms, and errors that name the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import load_config, parse_config
from engine.errors import BadInput, ConfigError
from engine.model import Service, ServiceType
from engine.storage.locations import LocalLocation, S3Location

MINIMAL = """\
[regions]
aws-eu-west-1 = "file:///srv/backups/west"
"""

FULL = """\
catalog = "state/btar.sqlite"

[replication]
concurrency = 4
poll_interval = 2.5

[regions]
aws-eu-west-1 = "file:///srv/backups/west"
aws-eu-central-1 = { url = "s3://backups-fra/btar", endpoint_url = "http://127.0.0.1:9000" }

[[services]]
name = "orders"
type = "postgresql"
region = "aws-eu-west-1"

[[services]]
name = "shop"
type = "mysql"
region = "aws-eu-west-1"
prefix = "mysql/shop"
"""


def write(tmp_path: Path, text: str, name: str = "btar.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def assert_clean(error: ConfigError, path: str, *fragments: str) -> None:
    text = str(error)
    assert error.exit_code == 2
    assert isinstance(error, BadInput)
    assert text.startswith(f"{path}: ")
    assert "\n" not in text
    assert "Traceback" not in text
    assert "pydantic" not in text
    assert "errors.pydantic.dev" not in text
    assert "http" not in text.replace("http://127.0.0.1", "")
    assert error.__cause__ is None
    for fragment in fragments:
        assert fragment in text, (fragment, text)


# --- valid configurations ---------------------------------------------------------------------

def test_minimal_config(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, MINIMAL))
    config = loaded.config
    assert config.catalog == "btar.sqlite"
    assert config.replication.concurrency == 8
    assert config.services == []
    location = config.regions["aws-eu-west-1"]
    assert isinstance(location, LocalLocation)
    assert location.path == Path("/srv/backups/west")
    assert loaded.path == (tmp_path / "btar.toml").resolve()
    assert loaded.catalog_path == tmp_path.resolve() / "btar.sqlite"
    assert loaded.services() == {}


def test_full_config_with_string_shorthand_and_table_form(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, FULL))
    config = loaded.config
    assert config.replication.concurrency == 4
    assert config.replication.poll_interval == 2.5
    west, central = config.regions["aws-eu-west-1"], config.regions["aws-eu-central-1"]
    assert isinstance(west, LocalLocation)
    assert west.url == "file:///srv/backups/west"
    assert isinstance(central, S3Location)
    assert central.url == "s3://backups-fra/btar"
    assert central.endpoint_url == "http://127.0.0.1:9000"
    assert loaded.catalog_path == tmp_path.resolve() / "state" / "btar.sqlite"
    assert loaded.services() == {
        "orders": Service("orders", ServiceType.POSTGRESQL, "aws-eu-west-1", "native", "orders"),
        "shop": Service("shop", ServiceType.MYSQL, "aws-eu-west-1", "native", "mysql/shop"),
    }


@pytest.mark.parametrize(
    ("regions", "kind", "url"),
    [
        ({"aws-eu-west-1": "file:///a"}, LocalLocation, "file:///a"),
        ({"aws-eu-west-1": {"url": "file:///a"}}, LocalLocation, "file:///a"),
        ({"aws-eu-west-1": "file://localhost/a"}, LocalLocation, "file://localhost/a"),
        ({"aws-eu-west-1": "s3://bucket/prefix"}, S3Location, "s3://bucket/prefix"),
        ({"aws-eu-west-1": {"url": "s3://bucket", "copy_mode": "stream"}}, S3Location,
         "s3://bucket"),
    ],
    ids=["file-shorthand", "file-table", "file-localhost", "s3-shorthand", "s3-table"],
)
def test_region_forms(regions: dict[str, object], kind: type, url: str) -> None:
    config = parse_config({"regions": regions}, "btar.toml")
    location = config.regions["aws-eu-west-1"]
    assert isinstance(location, kind)
    assert location.url == url


def test_absolute_catalog_path_is_kept(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "cat.sqlite"
    loaded = load_config(write(tmp_path, f'catalog = "{elsewhere}"\n{MINIMAL}'))
    assert loaded.catalog_path == elsewhere


# --- errors from files ------------------------------------------------------------------------

def test_missing_file_suggests_btar_init(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert_clean(caught.value, str(path), "no such file", "`btar init`")


@pytest.mark.parametrize(
    "text",
    ["[regions\naws-eu-west-1 = 'file:///a'\n", "catalog = \n", "a = 1\na = 2\n",
     "[regions]\naws-eu-west-1 = \"file:///a\n"],
    ids=["unclosed-table", "missing-value", "duplicate-key", "unterminated-string"],
)
def test_invalid_toml(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert_clean(caught.value, str(path), "not valid TOML", "line")


# --- validation errors: (document, dotted key, what is wrong) ---------------------------------

REGION = {"aws-eu-west-1": "file:///srv/a"}


def svc(name: str = "orders", kind: str = "postgresql", region: str = "aws-eu-west-1",
        **extra: str) -> dict[str, str]:
    return {"name": name, "type": kind, "region": region, **extra}


INVALID: dict[str, tuple[str, tuple[str, ...]]] = {
    "unknown-top-level-key": (
        'regionz = 1\n[regions]\naws-eu-west-1 = "file:///a"\n',
        ("regionz", "unknown key"),
    ),
    "unknown-key-in-replication": (
        f'{MINIMAL}[replication]\nconcurency = 2\n',
        ("replication.concurency", "unknown key"),
    ),
    "missing-regions": ('catalog = "x.sqlite"\n', ("regions", "required")),
    "unknown-region-id-with-hint": (
        '[regions]\naws-eu-west-l = "file:///a"\n',
        ("regions", "unknown region 'aws-eu-west-l'", "aws-eu-west-1"),
    ),
    "service-type-not-in-enum": (
        f'{MINIMAL}[[services]]\nname = "o"\ntype = "mongodb"\nregion = "aws-eu-west-1"\n',
        ("services[0].type", "postgresql", "mysql"),
    ),
    "service-region-without-location": (
        f'{MINIMAL}[[services]]\nname = "o"\ntype = "mysql"\nregion = "aws-eu-central-1"\n',
        ("services[0].region", "aws-eu-central-1", "no location"),
    ),
    "duplicate-service-names": (
        MINIMAL + '[[services]]\nname = "o"\ntype = "mysql"\nregion = "aws-eu-west-1"\n' * 2,
        ("services[1]", "'o'", "declared twice"),
    ),
    "prefix-nested-in-a-service-name": (
        f'{MINIMAL}[[services]]\nname = "o"\ntype = "mysql"\nregion = "aws-eu-west-1"\n'
        '[[services]]\nname = "p"\ntype = "mysql"\nregion = "aws-eu-west-1"\nprefix = "o/p"\n',
        ("services", "prefix 'o/p'", "inside 'o'"),
    ),
    "same-prefix-twice": (
        f'{MINIMAL}[[services]]\nname = "a"\ntype = "mysql"\nregion = "aws-eu-west-1"\n'
        'prefix = "x"\n[[services]]\nname = "b"\ntype = "mysql"\nregion = "aws-eu-west-1"\n'
        'prefix = "x"\n',
        ("services", "prefix 'x'", "inside 'x'"),
    ),
    "prefix-with-dotdot": (
        f'{MINIMAL}[[services]]\nname = "o"\ntype = "mysql"\nregion = "aws-eu-west-1"\n'
        'prefix = "a/../b"\n',
        ("services[0].prefix", "'..'"),
    ),
    "bad-location-scheme-ftp": (
        '[regions]\naws-eu-west-1 = "ftp://host/backups"\n',
        ("regions.aws-eu-west-1", "file://", "s3://", "gs://", "az://"),
    ),
    "relative-file-path": (
        '[regions]\naws-eu-west-1 = "file:relative/backups"\n',
        ("regions.aws-eu-west-1.url", "absolute path"),
    ),
    "relative-file-path-as-host": (
        '[regions]\naws-eu-west-1 = { url = "file://backups/west" }\n',
        ("regions.aws-eu-west-1.url", "file:///absolute/path"),
    ),
    "concurrency-zero": (
        f'{MINIMAL}[replication]\nconcurrency = 0\n',
        ("replication.concurrency", "greater than or equal to 1"),
    ),
    "concurrency-not-a-number": (
        f'{MINIMAL}[replication]\nconcurrency = "many"\n',
        ("replication.concurrency", "integer"),
    ),
}


@pytest.mark.parametrize(("text", "fragments"), INVALID.values(), ids=INVALID.keys())
def test_invalid_config_file(tmp_path: Path, text: str, fragments: tuple[str, ...]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert_clean(caught.value, str(path), *fragments)
    assert caught.value.path == str(path)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"regions": REGION, "bogus": 1}, "bogus"),
        ({"regions": {"aws-eu-west-1": "ftp://x"}}, "regions.aws-eu-west-1"),
        ({"regions": {"aws-eu-west-1": "file:rel"}}, "regions.aws-eu-west-1.url"),
        ({"regions": REGION, "services": [svc(kind="kafkaa")]}, "services[0].type"),
        ({"regions": REGION, "services": [svc(), {**svc("x"), "region": 7}]}, "services[1].region"),
        ({"regions": REGION, "replication": {"concurrency": 0}}, "replication.concurrency"),
        ({"regions": REGION, "replication": {"batch_size": 0}}, "replication.batch_size"),
        ({"regions": REGION, "services": [svc(name="Orders")]}, "services[0].name"),
    ],
    ids=["top-level", "location-scheme", "location-url", "service-type",
         "service-region-type", "concurrency", "batch-size", "service-name"],
)
def test_field_errors_carry_the_dotted_key(raw: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "conf/btar.toml")
    assert caught.value.key == key
    assert_clean(caught.value, "conf/btar.toml", f"conf/btar.toml: {key}: ")


def test_several_problems_report_the_first_and_count_the_rest() -> None:
    raw = {"regions": REGION, "bogus": 1, "other": 2,
           "replication": {"concurrency": 0}}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "btar.toml")
    assert_clean(caught.value, "btar.toml", "(and 2 more problems)")

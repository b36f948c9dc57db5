"""engine.config reads a configuration of the plain kind without pydantic (`btar status` of a
fleet would otherwise spend most of its time on the models). The plain reading must never
accept what the models refuse, and what it accepts it must read as they do."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from annotated_types import Ge, Gt, Le
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic.fields import FieldInfo

from engine.cli.program import main
from engine.config import (
    LOCATION_RULES,
    REPLICATION_RULES,
    LoadedConfig,
    _plain,
    load_config,
    parse_config,
)
from engine.config_schema import ReplicationConfig
from engine.errors import ConfigError
from engine.storage.location_schema import RULES

WEST, CENTRAL = "aws-eu-west-1", "aws-eu-central-1"
MIB, GIB = 1024**2, 1024**3


def _doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "catalog": "btar.sqlite",
        "regions": {WEST: "file:///srv/west", CENTRAL: {"url": "file:///srv/central"}},
        "services": [{"name": "orders", "type": "postgresql", "region": WEST},
                     {"name": "billing", "type": "mysql", "region": CENTRAL,
                      "prefix": "pg/billing"}],
    }
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not None}


def _service(**changes: Any) -> dict[str, Any]:
    return _doc(services=[{"name": "orders", "type": "postgresql", "region": WEST, **changes}])


def _at(url: str, **settings: Any) -> dict[str, Any]:
    """A document whose west location is ``url`` with ``settings`` (a table)."""
    return _doc(regions={WEST: {"url": url, **settings}, CENTRAL: "file:///srv/c"})


#: each backend's settings, all given, of the kinds a TOML file holds (an int where a float
#: is asked: the models take it as the float)
EVERY_SETTING: dict[str, dict[str, Any]] = {
    "file": {"url": "file:///srv/w", "copy_mode": "stream"},
    "memory": {"url": "memory://west", "copy_mode": "auto"},
    "s3": {"url": "s3://bucket/prefix", "copy_mode": "stream", "read_timeout": 30,
           "region": "eu-west-1", "endpoint_url": "http://127.0.0.1:9000", "profile": "backup",
           "sse_kms_key_id": "arn:aws:kms:key", "multipart_threshold": 64 * MIB,
           "part_size": 8 * MIB, "max_attempts": 5},
    "gs": {"url": "gs://bucket/prefix", "copy_mode": "auto", "read_timeout": 12.5,
           "project": "backups", "emulator_host": "http://127.0.0.1:4443",
           "kms_key_name": "projects/p/keys/k", "rewrite_chunk_bytes": 256 * MIB,
           "max_attempts": 50},
    "az": {"url": "az://account/container/prefix", "copy_mode": "stream", "read_timeout": 1,
           "account_url": "http://127.0.0.1:10000/account", "account_key_env": "KEY",
           "sas_token_env": "SAS", "encryption_scope": "scope", "api_version": "2021-08-06",
           "copy_timeout_per_gib": 300, "max_attempts": 1},
}


#: documents the plain reading accepts (valid) or declines (valid or not: the models decide)
DOCUMENTS: dict[str, dict[str, Any]] = {
    "plain": _doc(),
    "no catalog": _doc(catalog=None),
    "no services": _doc(services=None),
    "empty services": _doc(services=[]),
    "empty regions": _doc(regions={}, services=[]),
    "no regions": _doc(regions=None, services=[]),
    "catalog not text": _doc(catalog=3),
    "unknown top key": _doc(colour="red"),
    "alerts": _doc(alerts={"lag_warning": "10m"}),
    "cost": _doc(cost={"currency": "EUR"}),
    "replication": _doc(replication={"concurrency": 4, "poll_interval": 2,
                                     "busy_poll_interval": 0.25, "base_streams": 2,
                                     "batch_size": 100, "max_attempts": 5,
                                     "full_listing_interval": 0, "listing_settle": 30.5}),
    "replication empty": _doc(replication={}),
    "replication float for int": _doc(replication={"concurrency": 4.0}),
    "replication text for int": _doc(replication={"concurrency": "4"}),
    "replication bool": _doc(replication={"concurrency": True}),
    "replication too high": _doc(replication={"concurrency": 257}),
    "replication at highest": _doc(replication={"concurrency": 256, "batch_size": 10_000}),
    "replication zero": _doc(replication={"concurrency": 0}),
    "replication zero poll": _doc(replication={"poll_interval": 0}),
    "replication zero listing": _doc(replication={"full_listing_interval": 0.0}),
    "replication negative": _doc(replication={"listing_settle": -1}),
    "replication inf": _doc(replication={"poll_interval": float("inf")}),
    "replication nan": _doc(replication={"poll_interval": float("nan")}),
    "replication unknown key": _doc(replication={"speed": 3}),
    "replication not a table": _doc(replication=3),
    "unknown region": _doc(regions={"aws-eu-west-9": "file:///srv/x"}, services=[]),
    "region with options": _doc(regions={WEST: {"url": "file:///srv/w", "copy_mode": "stream"},
                                         CENTRAL: "file:///srv/c"}),
    **{f"{scheme} every setting": _doc(regions={WEST: table, CENTRAL: "file:///srv/c"})
       for scheme, table in EVERY_SETTING.items()},
    "s3 defaults": _at("s3://bucket"),
    "s3 float timeout": _at("s3://bucket", read_timeout=0.5),
    "s3 zero timeout": _at("s3://bucket", read_timeout=0),
    "s3 negative timeout": _at("s3://bucket", read_timeout=-1),
    "s3 inf timeout": _at("s3://bucket", read_timeout=float("inf")),
    "s3 nan timeout": _at("s3://bucket", read_timeout=float("nan")),
    "s3 timeout text": _at("s3://bucket", read_timeout="30"),
    "s3 timeout bool": _at("s3://bucket", read_timeout=True),
    "s3 part size lowest": _at("s3://bucket", part_size=5 * MIB, multipart_threshold=5 * MIB),
    "s3 part size highest": _at("s3://bucket", part_size=5 * GIB, multipart_threshold=5 * GIB),
    "s3 part size too low": _at("s3://bucket", part_size=5 * MIB - 1),
    "s3 part size too high": _at("s3://bucket", part_size=5 * GIB + 1),
    "s3 threshold too low": _at("s3://bucket", multipart_threshold=1),
    "s3 part size float": _at("s3://bucket", part_size=float(8 * MIB)),
    "s3 part size text": _at("s3://bucket", part_size="8388608"),
    "s3 attempts zero": _at("s3://bucket", max_attempts=0),
    "s3 attempts too many": _at("s3://bucket", max_attempts=51),
    "s3 attempts bool": _at("s3://bucket", max_attempts=True),
    "s3 region not text": _at("s3://bucket", region=1),
    "s3 region empty": _at("s3://bucket", region=""),
    "s3 endpoint with user": _at("s3://bucket", endpoint_url="http://key:secret@host:9000"),
    "s3 endpoint with query": _at("s3://bucket", endpoint_url="http://host:9000?x=1"),
    "s3 endpoint with fragment": _at("s3://bucket", endpoint_url="http://host:9000#x"),
    "s3 endpoint unbalanced": _at("s3://bucket", endpoint_url="http://[host"),
    "s3 endpoint not text": _at("s3://bucket", endpoint_url=9000),
    "s3 endpoint without scheme": _at("s3://bucket", endpoint_url="host:9000"),
    "s3 gcs setting": _at("s3://bucket", project="p"),
    "s3 azure setting": _at("s3://bucket", copy_timeout_per_gib=1),
    "s3 unknown key": _at("s3://bucket", colour="red"),
    "s3 scheme key": _at("s3://bucket", scheme="s3"),
    "s3 wrong scheme key": _at("s3://bucket", scheme="gs"),
    "s3 upper case scheme": _at("S3://bucket"),
    "s3 url with user": _at("s3://key:secret@bucket"),
    "gs defaults": _at("gs://bucket"),
    "gs chunk lowest": _at("gs://bucket", rewrite_chunk_bytes=MIB),
    "gs chunk too low": _at("gs://bucket", rewrite_chunk_bytes=MIB - 1),
    "gs attempts too many": _at("gs://bucket", max_attempts=51),
    "gs emulator with query": _at("gs://bucket", emulator_host="http://host?sig=1"),
    "gs emulator empty query": _at("gs://bucket", emulator_host="http://host?"),
    "gs s3 setting": _at("gs://bucket", endpoint_url="http://host"),
    "gs project not text": _at("gs://bucket", project=["p"]),
    "az defaults": _at("az://account/container"),
    "az copy timeout zero": _at("az://account/container", copy_timeout_per_gib=0),
    "az copy timeout float": _at("az://account/container", copy_timeout_per_gib=0.25),
    "az copy timeout text": _at("az://account/container", copy_timeout_per_gib="600"),
    "az account url with user": _at("az://account/container",
                                    account_url="https://u:secret@account.example"),
    "az account url with sas": _at("az://account/container",
                                   account_url="https://account.example/?sv=1&sig=x"),
    "az key env not text": _at("az://account/container", account_key_env=1),
    "az attempts zero": _at("az://account/container", max_attempts=0),
    "az s3 setting": _at("az://account/container", part_size=8 * MIB),
    "az url with sas": _at("az://account/container?sig=x"),
    "file s3 setting": _at("file:///srv/w", endpoint_url="http://host"),
    "file cloud setting": _at("file:///srv/w", read_timeout=1),
    "file relative in table": _at("file://srv/w"),
    "memory cloud setting": _at("memory://west", max_attempts=3),
    "copy mode unknown": _at("s3://bucket", copy_mode="fast"),
    "copy mode not text": _at("s3://bucket", copy_mode=1),
    "copy mode upper case": _at("s3://bucket", copy_mode="AUTO"),
    "url not text in table": _doc(regions={WEST: {"url": 3}, CENTRAL: "file:///srv/c"}),
    "url unknown scheme in table": _at("ftp://host/x"),
    "url none of a table": _doc(regions={WEST: {"copy_mode": "auto"},
                                         CENTRAL: "file:///srv/c"}),
    "location a list": _doc(regions={WEST: ["file:///srv/w"], CENTRAL: "file:///srv/c"}),
    "region without url": _doc(regions={WEST: {}, CENTRAL: "file:///srv/c"}),
    "region url not text": _doc(regions={WEST: 3, CENTRAL: "file:///srv/c"}),
    "relative file url": _doc(regions={WEST: "file://srv/w", CENTRAL: "file:///srv/c"}),
    "file url host": _doc(regions={WEST: "file://host/srv/w", CENTRAL: "file:///srv/c"}),
    "file url localhost": _doc(regions={WEST: "file://localhost/srv/w",
                                        CENTRAL: "file:///srv/c"}),
    "file url no path": _doc(regions={WEST: "file://", CENTRAL: "file:///srv/c"}),
    "memory url": _doc(regions={WEST: "memory://west", CENTRAL: "memory://central"}),
    "s3 url": _doc(regions={WEST: "s3://bucket/prefix", CENTRAL: "gs://bucket"}),
    "az url": _doc(regions={WEST: "az://account/container", CENTRAL: "file:///srv/c"}),
    "unknown scheme": _doc(regions={WEST: "ftp://host/x", CENTRAL: "file:///srv/c"}),
    "no scheme": _doc(regions={WEST: "/srv/w", CENTRAL: "file:///srv/c"}),
    "url with user": _doc(regions={WEST: "s3://key:secret@bucket", CENTRAL: "file:///srv/c"}),
    "url with query": _doc(regions={WEST: "s3://bucket?sig=1", CENTRAL: "file:///srv/c"}),
    "url with empty query": _doc(regions={WEST: "s3://bucket?", CENTRAL: "file:///srv/c"}),
    "url with fragment": _doc(regions={WEST: "file:///srv/w#x", CENTRAL: "file:///srv/c"}),
    "url unbalanced": _doc(regions={WEST: "s3://[bucket", CENTRAL: "file:///srv/c"}),
    "url quoted path": _doc(regions={WEST: "file:///srv/w%20x", CENTRAL: "file:///srv/c"}),
    "services not a list": _doc(services={"name": "orders"}),
    "service not a table": _doc(services=["orders"]),
    "service unknown key": _service(colour="red"),
    "service without type": _doc(services=[{"name": "orders", "region": WEST}]),
    "service without name": _doc(services=[{"type": "mysql", "region": WEST}]),
    "service bad name": _service(name="Orders"),
    "service name newline": _service(name="orders\n"),
    "service name too long": _service(name="o" * 64),
    "service name longest": _service(name="o" * 63),
    "service name dash first": _service(name="-orders"),
    "service unknown type": _service(type="oracle"),
    "service type not text": _service(type=3),
    "service region not located": _service(region=CENTRAL + "x"),
    "service region not text": _service(region=1),
    "layout native": _service(layout="native"),
    "layout pgbackrest": _service(layout="pgbackrest", stanza="main"),
    "layout barman": _service(layout="barman-cloud", server="pg"),
    "layout unknown": _service(layout="tar"),
    "stanza without layout": _service(stanza="main"),
    "retention": _service(retention={"keep_count": 3}),
    "prefix": _service(prefix="a/b.c-d_e"),
    "prefix dot dot": _service(prefix="a/../b"),
    "prefix trailing slash": _service(prefix="a/b/"),
    "prefix leading slash": _service(prefix="/a"),
    "prefix newline": _service(prefix="a\n"),
    "prefix not text": _service(prefix=3),
    "duplicate service": _doc(services=[{"name": "a", "type": "mysql", "region": WEST},
                                        {"name": "a", "type": "mysql", "region": WEST}]),
    "nested prefixes": _doc(services=[{"name": "a", "type": "mysql", "region": WEST},
                                      {"name": "b", "type": "mysql", "region": WEST,
                                       "prefix": "a/b"}]),
    "prefix beside a name": _doc(services=[{"name": "ab", "type": "mysql", "region": WEST},
                                           {"name": "b", "type": "mysql", "region": WEST,
                                            "prefix": "a"}]),
}

#: what the plain reading must take itself (the kinds of file `btar init`, the demo and the
#: fleet benchmark write): the rest may go to the models
PLAIN = {"plain", "no catalog", "no services", "empty services", "empty regions", "replication",
         "replication empty", "replication at highest", "replication zero listing",
         "file url localhost", "memory url", "s3 url", "az url", "url quoted path",
         "service name longest", "layout native", "prefix", "prefix beside a name",
         "region with options", *(f"{scheme} every setting" for scheme in EVERY_SETTING),
         "s3 defaults", "s3 float timeout", "s3 part size lowest", "s3 part size highest",
         "s3 region empty", "s3 upper case scheme", "gs defaults", "gs chunk lowest",
         "az defaults", "az copy timeout float"}


def _models(raw: dict[str, Any]) -> LoadedConfig | None:
    try:
        return LoadedConfig(parse_config(raw, "btar.toml"), Path("/etc/btar/btar.toml"))
    except ConfigError:
        return None


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_the_plain_reading_accepts_only_what_the_models_accept_and_reads_it_alike(
        name: str) -> None:
    raw = DOCUMENTS[name]
    plain = _plain(raw)
    models = _models(raw)
    if name in PLAIN:
        assert plain is not None, "a plain configuration goes to the models"
    if plain is None:
        return
    assert models is not None, "the plain reading accepted what the models refuse"
    read = LoadedConfig(None, Path("/etc/btar/btar.toml"), plain=plain, raw=raw,
                        source="btar.toml")
    assert read.catalog_path == models.catalog_path
    assert read.services() == models.services()
    assert list(read.services()) == list(models.services())
    assert read.region_names() == models.region_names()
    assert read.replication() == models.replication()
    assert {k: type(v) for k, v in read.replication().items()} \
        == {k: type(v) for k, v in models.replication().items()}
    assert read.retention() == models.retention() == {}
    _same_locations(read, models)
    # what it leaves to the models, they validate when asked: the same configuration
    assert read.config == models.config


def _same_locations(read: LoadedConfig, models: LoadedConfig) -> None:
    """Each location read plain is the value the models give, each field of the same type
    (600 is not 600.0 to a storage that formats it)."""
    for region in models.region_names():
        plain, modelled = read.location(region), models.location(region)
        assert plain == modelled == models.config.regions[region], region
        assert {f.name: type(getattr(plain, f.name)) for f in dataclasses.fields(plain)} \
            == {f.name: type(getattr(modelled, f.name)) for f in dataclasses.fields(modelled)}


def test_the_plain_rules_are_the_replication_models_fields() -> None:
    fields = ReplicationConfig.model_fields
    assert set(REPLICATION_RULES) == set(fields)
    for name, (kind, lowest, inclusive, highest, default) in REPLICATION_RULES.items():
        field = fields[name]
        assert field.default == default, name
        assert kind in getattr(field.annotation, "__args__", (field.annotation,)), name
        low = [m.ge if isinstance(m, Ge) else m.gt for m in field.metadata
               if isinstance(m, Ge | Gt)]
        high = [m.le for m in field.metadata if isinstance(m, Le)]
        assert low == [lowest], name
        assert [isinstance(m, Ge) for m in field.metadata if isinstance(m, Ge | Gt)] \
            == [inclusive], name
        assert high == ([] if highest is None else [highest]), name


def _bounds(field: FieldInfo) -> tuple[float | None, bool, float | None]:
    low = [m.ge if isinstance(m, Ge) else m.gt for m in field.metadata if isinstance(m, Ge | Gt)]
    high = [m.le for m in field.metadata if isinstance(m, Le)]
    inclusive = [isinstance(m, Ge) for m in field.metadata if isinstance(m, Ge | Gt)]
    return (low[0] if low else None, inclusive[0] if inclusive else True,
            high[0] if high else None)


@pytest.mark.parametrize("scheme", sorted(RULES))
def test_the_plain_location_rules_are_the_location_models_fields(scheme: str) -> None:
    model = RULES[scheme]
    fields = {name: field for name, field in model.model_fields.items()
              if name not in ("url", "copy_mode", "scheme")}
    rules = LOCATION_RULES[scheme]
    assert set(rules) == set(fields)
    for name, rule in rules.items():
        field = fields[name]
        kinds = getattr(field.annotation, "__args__", (field.annotation,))
        if isinstance(rule, str):
            assert str in kinds, name
            assert _bounds(field) == (None, True, None), name
            # the URL-valued settings are the ones the model refuses credentials in
            assert (rule == "url") == any(
                name in d.info.fields for d in model.__pydantic_decorators__.field_validators
                .values()), name
        else:
            kind, lowest, inclusive, highest = rule
            assert kind in kinds, name
            assert _bounds(field) == (lowest, inclusive, highest), name


@pytest.mark.parametrize("scheme", sorted(RULES))
def test_a_location_model_gives_the_value_of_the_same_fields_and_defaults(scheme: str) -> None:
    model = RULES[scheme]
    value = model.value_type
    given = {name: field for name, field in model.model_fields.items() if name != "scheme"}
    assert [f.name for f in dataclasses.fields(value)] == list(given)
    for field in dataclasses.fields(value):
        if given[field.name].is_required():
            assert field.default is dataclasses.MISSING
        else:
            assert field.default == given[field.name].default, field.name
    assert model.model_validate({"url": EVERY_SETTING[scheme]["url"]}).value() \
        == value(url=EVERY_SETTING[scheme]["url"])


#: values of the kinds TOML gives, near the models' bounds
_VALUES = st.sampled_from([
    0, 1, -1, 50, 51, MIB - 1, MIB, 5 * MIB - 1, 5 * MIB, 5 * GIB, 5 * GIB + 1, 0.0, 0.5, 1.0,
    float(MIB), float("inf"), float("nan"), True, False, "", "auto", "stream", "x",
    "eu-west-1", "http://127.0.0.1:9000", "http://u:p@host", "http://host?sig=1",
    "http://host#f", "http://host?", "http://[host", "s3", "gs", [], {},
])
#: a URL of each scheme, and some the models refuse
_URLS = {
    "file": ["file:///srv/w", "file://localhost/srv/w", "file://srv/w", "file:///srv/w?x"],
    "memory": ["memory://m", "memory://u:p@m"],
    "s3": ["s3://bucket/p", "S3://bucket", " s3://bucket", "s3://k:s@bucket", "s3://bucket#"],
    "gs": ["gs://bucket", "gs://[bucket", "gs://bucket?"],
    "az": ["az://account/container", "az://account/c?sig=1"],
}
_ELSEWHERE = ["ftp://host", "", "/srv/w"]


@st.composite
def _locations(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A location's URL and settings: mostly its backend's keys, with values mostly of
    their kind, and some of another backend, of another kind or unknown."""
    scheme = draw(st.sampled_from(sorted(_URLS)))
    url = draw(st.sampled_from([*[_URLS[scheme][0]] * 6, *_URLS[scheme], *_ELSEWHERE]))
    own = sorted(LOCATION_RULES[scheme])
    others = sorted({key for rules in LOCATION_RULES.values() for key in rules} - set(own))
    keys = draw(st.lists(st.sampled_from([*own, "copy_mode"]), max_size=4, unique=True))
    stray = draw(st.one_of(st.none(), st.none(), st.none(),
                           st.sampled_from(["scheme", "colour", *others])))
    if stray is not None:
        keys.append(stray)
    settings_: dict[str, Any] = {}
    for key in keys:
        rule = LOCATION_RULES[scheme].get(key)
        fitting: st.SearchStrategy[Any] = st.sampled_from(["auto", "stream"]) \
            if key in ("copy_mode",) else st.sampled_from([scheme, "s3"]) if key == "scheme" \
            else st.just("text") if rule is None or rule == "text" \
            else st.just("http://127.0.0.1:9000") if rule == "url" \
            else st.integers(int(rule[1]) - 1, int(rule[3] or rule[1] + 10**9) + 1) \
            if rule[0] is int else st.floats(-1, 10**4, allow_nan=False) | st.integers(-1, 600)
        settings_[key] = draw(st.one_of(fitting, fitting, fitting, fitting, _VALUES))
    return url, settings_


@settings(max_examples=600, deadline=None, derandomize=True, database=None)
@given(_locations())
@example(("s3://bucket", {"part_size": 5 * MIB, "read_timeout": 1}))
@example(("az://account/container", {"copy_timeout_per_gib": 1, "account_url": "http://h"}))
def test_a_location_read_plain_is_one_the_models_accept_and_read_alike(
        location: tuple[str, dict[str, Any]]) -> None:
    url, settings_ = location
    raw = _at(url, **settings_)
    plain = _plain(raw)
    if plain is None:
        return
    models = _models(raw)
    assert models is not None, "the plain reading accepted what the models refuse"
    read = LoadedConfig(None, Path("/etc/btar/btar.toml"), plain=plain, raw=raw,
                        source="btar.toml")
    _same_locations(read, models)


def test_a_plain_file_is_read_without_pydantic(tmp_path: Path) -> None:
    path = tmp_path / "btar.toml"
    path.write_text(f'[regions]\n{WEST} = "file:///srv/west"\n{CENTRAL} = {{ url = '
                    '"s3://bucket/btar", endpoint_url = "http://127.0.0.1:9000", part_size = '
                    f'8388608 }}\n\n[[services]]\nname = "orders"\ntype = "postgresql"\n'
                    f'region = "{WEST}"\n')
    probe = ("import sys\nfrom pathlib import Path\nfrom engine.config import load_config\n"
             f"loaded = load_config(Path({str(path)!r}))\n"
             f"location = loaded.location({CENTRAL!r})\n"
             "print(sorted(loaded.services()), type(location).__name__, location.part_size, "
             "'pydantic' in sys.modules)\n"
             "loaded.config\nprint('pydantic' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    assert result.stdout.split("\n")[:2] == ["['orders'] S3Location 8388608 False", "True"]


def test_a_command_has_the_models_built_only_for_what_a_plain_file_does_not_give() -> None:
    raw = _doc()
    plain = _plain(raw)
    assert plain is not None
    read = LoadedConfig(None, Path("/etc/btar/btar.toml"), plain=plain, raw=raw,
                        source="btar.toml")
    read.prepare(set())
    read.prepare({"locations", "retention"})
    assert read._config is None
    read.prepare({"locations", "thresholds"})
    assert read._config is not None


def test_sync_refuses_a_bad_location_in_one_line_before_it_starts(tmp_path: Path) -> None:
    """A location the plain reading declines goes to the models as the file is loaded: the
    command sets up no further (no catalog, no lock)."""
    config = tmp_path / "btar.toml"
    config.write_text(f'[regions]\n{WEST} = "file://{tmp_path}"\n{CENTRAL} = {{ url = '
                      '"s3://bucket", part_size = 1 }\n', encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    assert main(["--config", str(config), "sync", "--once"], out, err) == 2
    assert err.getvalue() == (f"btar: {config}: regions.{CENTRAL}.part_size: Input should be "
                              "greater than or equal to 5242880\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["btar.toml"]


def test_a_file_the_plain_reading_declines_is_validated_at_once(tmp_path: Path) -> None:
    path = tmp_path / "btar.toml"
    path.write_text(f'[regions]\n{WEST} = "file:///srv/west"\n\n[alerts]\nlag_warning = 3\n'
                    '\n[[services]]\nname = "Orders"\ntype = "postgresql"\n'
                    f'region = "{WEST}"\n')
    with pytest.raises(ConfigError, match=r"services\[0\]\.name"):
        load_config(path)

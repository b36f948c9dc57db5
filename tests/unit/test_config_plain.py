"""engine.config reads a configuration of the plain kind without pydantic (`btar status` of a
fleet would otherwise spend most of its time on the models). The plain reading must never
accept what the models refuse, and what it accepts it must read as they do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from annotated_types import Ge, Gt, Le

from engine.config import (
    REPLICATION_RULES,
    LoadedConfig,
    _plain,
    load_config,
    parse_config,
)
from engine.config_schema import ReplicationConfig
from engine.errors import ConfigError

WEST, CENTRAL = "aws-eu-west-1", "aws-eu-central-1"


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
         "service name longest", "layout native", "prefix", "prefix beside a name"}


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
    # what it leaves to the models, they validate when asked: the same configuration
    assert read.config == models.config


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


def test_a_plain_file_is_read_without_pydantic(tmp_path: Path) -> None:
    path = tmp_path / "btar.toml"
    path.write_text(f'[regions]\n{WEST} = "file:///srv/west"\n\n[[services]]\n'
                    f'name = "orders"\ntype = "postgresql"\nregion = "{WEST}"\n')
    probe = ("import sys\nfrom pathlib import Path\nfrom engine.config import load_config\n"
             f"loaded = load_config(Path({str(path)!r}))\n"
             "print(sorted(loaded.services()), 'pydantic' in sys.modules)\n"
             "loaded.config\nprint('pydantic' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    assert result.stdout.split("\n")[:2] == ["['orders'] False", "True"]


def test_a_file_the_plain_reading_declines_is_validated_at_once(tmp_path: Path) -> None:
    path = tmp_path / "btar.toml"
    path.write_text(f'[regions]\n{WEST} = "file:///srv/west"\n\n[alerts]\nlag_warning = 3\n'
                    '\n[[services]]\nname = "Orders"\ntype = "postgresql"\n'
                    f'region = "{WEST}"\n')
    with pytest.raises(ConfigError, match=r"services\[0\]\.name"):
        load_config(path)

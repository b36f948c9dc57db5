"""Hostile input: the configuration, scenario files, backup listings and manifests, and the
catalog file itself. Whatever comes in, btar answers with a BtarError (CLI: exit 2 and one line
on stderr, never a traceback), writes nothing on the way out, and publishes nothing it could not
verify. Fuzzing is bounded and derandomized; inputs that once broke btar stay as @example.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import sqlite3
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.api import Btar
from engine.catalog import SCHEMA_VERSION, Catalog, CatalogTooNew
from engine.cli import main
from engine.config import parse_config
from engine.errors import BtarError, CatalogDamaged, ConfigError, CorruptBackup
from engine.formats.native import NativeLayout, build_manifest, write_log_segment
from engine.model import ItemStatus, ObjectInfo, Service, ServiceType
from engine.replication import read_marker
from simulator.scenario import ScenarioError, parse_scenario
from tests.integration.s3_server import MotoS3
from tests.worlds import World

ROOT = Path(__file__).resolve().parents[2]
PRIMARY, SECONDARY = "aws-eu-west-1", "aws-eu-central-1"
SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYSECRET"

FUZZ = settings(max_examples=250, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def one_line_btar_error(error: BaseException) -> None:
    assert isinstance(error, BtarError), repr(error)
    assert error.exit_code in (1, 2, 3)
    assert str(error).strip()


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def refused_in_one_line(code: int, err: str, expected: int = 2) -> None:
    assert code == expected, err
    assert err.startswith("btar: ")
    assert err.count("\n") == 1, err
    assert "Traceback" not in err


# -- hostile values ----------------------------------------------------------------------------

NASTY_TEXT = st.one_of(
    st.text(max_size=24),
    st.sampled_from([
        "", " ", "..", "../..", "a/../../b", "/etc/passwd", "C:\\x", "x\x00y", "\x00",
        "a" * 5000, "line\nbreak", "\u202eevil", "☃/❄", "s3://[unbalanced", "file://",
        f"s3://AKIAFAKE:{SECRET}@bucket/p", f"az://acct/c/p?sig={SECRET}", "aws-eu-west-1",
        "1e400", "NaN", "-1", "postgresql", "native", "s3://b/p", "file:///srv/x",
    ]),
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.just(10**400), st.just(-(10**400)), st.floats(allow_nan=True, allow_infinity=True),
    NASTY_TEXT, st.datetimes(timezones=st.just(UTC)),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(NASTY_TEXT, inner, max_size=3), max_leaves=6)

VALID_CONFIG: dict[str, Any] = {
    "catalog": "btar.sqlite",
    "replication": {"concurrency": 8, "poll_interval": 10.0, "batch_size": 64,
                    "max_attempts": 3},
    "regions": {PRIMARY: "file:///srv/backups/a",
                SECONDARY: {"url": "s3://bucket/p", "endpoint_url": "http://127.0.0.1:9000"}},
    "services": [{"name": "orders", "type": "postgresql", "region": PRIMARY,
                  "prefix": "orders"}],
}
CONFIG_PATHS: list[tuple[Any, ...]] = [
    (), ("catalog",), ("replication",), ("replication", "concurrency"),
    ("replication", "poll_interval"), ("replication", "batch_size"), ("regions",),
    ("regions", PRIMARY), ("regions", SECONDARY, "url"), ("regions", SECONDARY, "endpoint_url"),
    ("regions", SECONDARY, "region"), ("regions", SECONDARY, "multipart_threshold"),
    ("regions", "aws-eu-north-1"), ("regions", "nowhere-1"), ("services",), ("services", 0),
    ("services", 0, "name"), ("services", 0, "type"), ("services", 0, "region"),
    ("services", 0, "prefix"), ("services", 0, "layout"), ("alerts",), ("cost",), ("extra",),
]


def mutate(document: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    if not path:
        return value if isinstance(value, dict) else document
    node: Any = document
    for part in path[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return document
    with contextlib.suppress(IndexError, TypeError):
        node[path[-1]] = value
    return document


def raised(call: Any, *args: Any) -> BaseException | None:
    """What ``call(*args)`` raised, if anything (any exception: the tests judge it)."""
    try:
        call(*args)
    except Exception as error:
        return error
    return None


# -- the configuration ---------------------------------------------------------------------------

@FUZZ
@given(st.lists(st.tuples(st.sampled_from(CONFIG_PATHS), VALUES), min_size=1, max_size=3))
@example([(("regions", PRIMARY), "s3://[unbalanced")])  # was a ValueError from urlsplit
@example([(("regions", PRIMARY), f"s3://AKIAFAKE:{SECRET}@bucket/p")])  # was accepted
@example([(("regions", SECONDARY, "endpoint_url"), f"http://u:{SECRET}@host:9000")])
@example([(("replication", "concurrency"), 10**400)])
def test_config_documents_never_escape_as_anything_but_config_error(
        mutations: list[tuple[tuple[Any, ...], Any]]) -> None:
    document = copy.deepcopy(VALID_CONFIG)
    for path, value in mutations:
        document = mutate(document, path, value)
    error = raised(parse_config, document, "fuzz.toml")
    if error is not None:
        assert isinstance(error, ConfigError), repr(error)
        one_line_btar_error(error)
        assert error.exit_code == 2
        assert SECRET not in str(error)


TOML_SNIPPETS = st.sampled_from([
    b'catalog = "btar.sqlite"\n', b"[regions]\n", b'aws-eu-west-1 = "file:///x"\n',
    b'aws-eu-west-1 = "s3://[x"\n', b"[[services]]\n", b'name = "orders"\n',
    b'type = "postgresql"\n', b'region = "aws-eu-west-1"\n', b"concurrency = 1e400\n",
    b'"a\\nb" = 1\n', b"= \n", b"\xff\xfe", b"\x00", b"[replication]\n", b'prefix = "../x"\n',
])


@FUZZ
@given(st.lists(TOML_SNIPPETS | st.binary(max_size=12), max_size=8).map(b"".join))
@example(b"\xa3\x8a1\xeb")  # was a UnicodeDecodeError traceback
@example(b'[regions]\n"a\\nb" = "file:///x"\n')  # a key with a newline in it
@example(b'[regions]\naws-eu-west-1 = "s3://[x"\n')
def test_any_configuration_file_gives_exit_2_in_one_line_and_writes_nothing(
        tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    folder = tmp_path_factory.mktemp("config")
    config = folder / "btar.toml"
    config.write_bytes(data)
    code, _, err = cli("--config", str(config), "status")
    if code != 0:
        refused_in_one_line(code, err)
        assert sorted(p.name for p in folder.iterdir()) == ["btar.toml"]  # no catalog, no lock


@pytest.mark.parametrize("location", [
    f'"s3://AKIAFAKE:{SECRET}@bucket/prefix"',
    f'"s3://{SECRET}@bucket/prefix"',
    f'"gs://user:{SECRET}@bucket/prefix"',
    f'"az://acct/container/prefix?sv=2024&sig={SECRET}"',
    f'"file://user:{SECRET}@localhost/srv/x"',
    f'{{ url = "s3://bucket/p", endpoint_url = "https://k:{SECRET}@s3.example.com" }}',
    f'{{ url = "az://acct/c/p", account_url = "https://acct.blob.example?sig={SECRET}" }}',
])
@pytest.mark.parametrize("command", ["status", "sync"])
def test_a_location_url_with_a_credential_is_refused_without_echoing_it(
        tmp_path: Path, location: str, command: str) -> None:
    config = tmp_path / "btar.toml"
    config.write_text(f'[regions]\naws-eu-west-1 = "file:///srv/a"\naws-eu-central-1 = '
                      f'{location}\n', encoding="utf-8")
    code, out, err = cli("--config", str(config), command)
    refused_in_one_line(code, err)
    assert SECRET not in out + err
    assert "aws-eu-central-1" in err
    assert not (tmp_path / "btar.sqlite").exists()


# -- scenario files ------------------------------------------------------------------------------

SCENARIO = (ROOT / "scenarios" / "steady-replication.btar.toml").read_bytes()
SPLICES = st.binary(max_size=16) | st.sampled_from([
    b'"', b"[[", b"]]", b"=", b"1e400", b"\x00", b"-99999999999999999999999", b"nan",
    b"2026-13-01T00:00:00Z", b"'..'", b'"/etc/passwd"', b"\n[[timeline]]\nkind = ",
    b'"\xff"', b"inf", b"[]", b"{}",
])


@FUZZ
@given(st.integers(0, len(SCENARIO)), st.integers(0, 60), SPLICES)
@example(0, len(SCENARIO), b"")  # empty file
@example(0, 0, b"\xff\xfe")  # not UTF-8
def test_a_mangled_scenario_is_a_scenario_error_with_one_line_per_problem(
        position: int, cut: int, insert: bytes) -> None:
    data = SCENARIO[:position] + insert + SCENARIO[position + cut:]
    error = raised(parse_scenario, data, "fuzz.btar.toml")
    if error is not None:
        assert isinstance(error, ScenarioError), repr(error)
        assert error.problems
        for line in error.lines():
            assert "\n" not in line
            assert line.startswith("fuzz.btar.toml:")


@pytest.mark.parametrize("data", [b"\xff\xfe", b"schema = 1\n", b"schema = 9\n[[regions]]\n",
                                  SCENARIO.replace(b"schema = 1", b"schema = 1e400")])
def test_btar_simulate_refuses_a_bad_scenario_with_exit_2(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bad.btar.toml"
    path.write_bytes(data)
    code, out, err = cli("simulate", str(path))
    assert code == 2
    assert "Traceback" not in out + err
    assert "nothing was run" in err


# -- backup listings and manifests ---------------------------------------------------------------

T = datetime(2026, 11, 1, tzinfo=UTC)
SEGMENT = f"log/1/0000000001_20261101T000000.000000Z_20261101T000500.000000Z_{'a' * 64}.log"
KEYS = NASTY_TEXT | st.sampled_from([
    SEGMENT, SEGMENT.replace("20261101T000000", "20261301T000000"),
    SEGMENT.replace("000500", "000000").replace("000000.0", "000500.0", 1), "base/../manifest.json",
    "base/b1/manifest.json", "base/b1/data/x", "log/1/history.json", "log/x\x00/history.json",
    "log/../history.json", "/base/b1/manifest.json", "base/" + "b" * 200 + "/manifest.json",
])


@FUZZ
@given(st.lists(KEYS, max_size=8), st.integers(-(2**70), 2**70))
def test_any_listing_is_sorted_into_items_without_raising(keys: list[str], size: int) -> None:
    layout = NativeLayout()
    found = layout.discover([ObjectInfo(k, size, T) for k in keys])
    for marker in found.markers:
        layout.item_id_of_marker(marker.key)
    for segment in found.segments:
        assert segment.end_time >= segment.start_time


GOOD_MANIFEST: dict[str, Any] = {
    "format": "btar-native", "version": 1, "backup_id": "b1",
    "start_time": "2026-11-01T00:00:00Z", "end_time": "2026-11-01T00:05:00Z", "stream": "1",
    "log_start_seq": 2, "objects": [{"key": "data/part-0.json", "size": 3, "sha256": "a" * 64}],
}
OBJECT_ENTRIES = st.fixed_dictionaries({"key": NASTY_TEXT | st.just("data/x"), "size": SCALARS,
                                        "sha256": NASTY_TEXT | st.just("b" * 64)})
MANIFEST_FIELDS = st.dictionaries(
    st.sampled_from([*GOOD_MANIFEST, "extra"]),
    VALUES | st.lists(OBJECT_ENTRIES | VALUES, max_size=3), max_size=3)


def manifest_bytes(changes: dict[str, Any], cut: bool) -> bytes:
    document = {**GOOD_MANIFEST, **changes}
    text = json.dumps(document, default=str)
    return (text[:len(text) // 2] if cut else text).encode()


@FUZZ
@given(MANIFEST_FIELDS, st.booleans())
@example({"start_time": None}, False)  # native.py: AttributeError, not CorruptBackup
@example({"log_start_seq": float("inf")}, False)  # native.py: OverflowError
@example({"objects": [{"key": "data/x", "size": float("inf"), "sha256": "b" * 64}]}, False)
@example({"objects": [{"key": "data/x", "size": 10**400, "sha256": "b" * 64}]}, False)  # SQLite
@example({"log_start_seq": 10**400}, False)  # would overflow the catalog's INTEGER
@example({"objects": [{"key": "data/../../x", "size": 1, "sha256": "b" * 64}]}, False)
@example({"objects": [{"key": "data/x\x00y", "size": 1, "sha256": "b" * 64}]}, False)
@example({"objects": [{"key": "data/" + "x" * 5000, "size": 1, "sha256": "b" * 64}]}, False)
@example({"objects": [{"key": "data/x", "size": -1, "sha256": "b" * 64}]}, False)
@example({"objects": [{"key": "data/x", "size": 1, "sha256": "not-a-hash"}]}, False)
@example({}, True)  # cut in half
def test_any_manifest_is_an_item_or_one_corrupt_backup_error(changes: dict[str, Any],
                                                             cut: bool) -> None:
    """What the engine reads from a manifest (engine.replication.read_marker, in front of any
    layout reader): a well-formed item it can copy and catalog, or CorruptBackup."""
    data = manifest_bytes(changes, cut)
    marker = ObjectInfo("base/b1/manifest.json", len(data), T)
    service = Service("orders", ServiceType.POSTGRESQL, PRIMARY)
    error = raised(read_marker, NativeLayout(), service, marker, data)
    if error is not None:
        assert isinstance(error, CorruptBackup), repr(error)
        one_line_btar_error(error)
        return
    item = read_marker(NativeLayout(), service, marker, data)
    catalog = Catalog.in_memory()  # and the catalog takes whatever was accepted
    catalog.add_item("orders", PRIMARY, item, ItemStatus.AVAILABLE, T)
    assert len(catalog.item_refs("orders", PRIMARY, item.item_id)) >= 1


@pytest.mark.parametrize("changes", [{"start_time": None}, {"log_start_seq": float("inf")}],
                         ids=["time-not-a-string", "infinite-number"])
def test_native_reader_itself_raises_corrupt_backup(changes: dict[str, Any]) -> None:
    data = manifest_bytes(changes, False)
    with pytest.raises(CorruptBackup):
        NativeLayout().parse_marker(ObjectInfo("base/b1/manifest.json", len(data), T), data)


def hostile_primary(world: World) -> None:
    """A good backup, plus manifests that lie or cannot be read, in the primary."""
    store = world.stores[PRIMARY].inner
    world.produce("orders", 3, base_first=True)
    payload = {"part-0.json": b'{"k": 1}'}
    lies = {
        "mismatch": build_manifest("mismatch", T, T, "1", 1, {"part-0.json": b"other"}),
        "escape": json.dumps({**GOOD_MANIFEST, "backup_id": "escape", "objects": [
            {"key": "data/../../../billing/x", "size": 8, "sha256": "a" * 64}]}).encode(),
        "null-time": json.dumps({**GOOD_MANIFEST, "backup_id": "null-time",
                                 "start_time": None}).encode(),
        "huge": json.dumps({**GOOD_MANIFEST, "backup_id": "huge", "objects": [
            {"key": "data/part-0.json", "size": 10**400, "sha256": "a" * 64}]}).encode(),
        "garbage": b"\x00\xff{not json",
    }
    for backup_id, manifest in lies.items():
        for rel, data in payload.items():
            store.write(f"orders/base/{backup_id}/data/{rel}", data)
        store.write(f"orders/base/{backup_id}/manifest.json", manifest)
    # A segment whose name says one hash and whose bytes say another.
    write_log_segment(store, "orders", "9", 1, T, T + timedelta(minutes=5), b"x")
    name = next(o.key for o in store.iter_objects("orders/log/9/"))
    store.write(name.replace("0000000001_", "0000000002_"), b"not what the name says")


def test_hostile_manifests_in_the_primary_are_reported_and_never_published() -> None:
    world = World()
    hostile_primary(world)
    world.app.enable("orders", SECONDARY)
    [outcome] = world.app.sync(["orders"])
    published = {i.item_id for i in world.catalog.items(
        "orders", SECONDARY, statuses=[ItemStatus.AVAILABLE])}
    assert not any(i.startswith(("base/mismatch", "base/escape", "base/null", "base/huge",
                                 "base/garbage")) for i in published)
    assert "log/9/0000000002" not in published
    assert any(i.startswith("base/2026") for i in published)  # the good backup went through
    assert "base/mismatch" in outcome.failed
    errors = [e.message for e in world.catalog.events(service="orders") if e.level == "error"]
    for backup_id in ("escape", "null-time", "huge", "garbage"):
        assert any(f"base/{backup_id}/manifest.json" in m for m in errors), backup_id
    secondary = world.stores[SECONDARY].inner
    assert not [o.key for o in secondary.iter_objects("orders/base/mismatch/")]
    assert not [o.key for o in secondary.iter_objects("orders/log/9/")
                if "0000000002_" in o.key]
    assert not list(secondary.iter_objects("billing/"))  # nothing escaped the prefix
    world.assert_published_items_whole("orders", SECONDARY)


def test_a_manifest_that_disagrees_with_its_payload_is_never_published_on_s3(
        moto_s3: MotoS3, tmp_path: Path) -> None:
    """On S3 the copy is server-side and its ETag equals the source's: that proves the copy
    equals the source, not that the source holds what the manifest says (bug found: it was
    published). Only the recorded SHA-256 publishes."""
    prefix = f"hostile-{uuid.uuid4().hex[:10]}"
    config = tmp_path / "btar.toml"
    config.write_text(
        'catalog = "btar.sqlite"\n[regions]\n' + "".join(
            f'{region} = {{ url = "s3://{moto_s3.bucket(region)}/{prefix}", '
            f'endpoint_url = "{moto_s3.endpoint}" }}\n' for region in (PRIMARY, SECONDARY))
        + f'[[services]]\nname = "orders"\ntype = "postgresql"\nregion = "{PRIMARY}"\n',
        encoding="utf-8")
    app = Btar.open(str(config))
    try:
        source = app.storage(PRIMARY)
        good = {"part-0.json": b'{"k": 1}'}
        source.write("orders/base/b1/data/part-0.json", b'{"k": 2}')  # not what it records
        source.write("orders/base/b1/manifest.json", build_manifest("b1", T, T, "1", 1, good))
        app.enable("orders", SECONDARY)
        [outcome] = app.sync(["orders"])
        assert outcome.failed == ["base/b1"]
        assert not outcome.published
        attempts = app.catalog.copy_attempts("orders", SECONDARY)
        assert attempts
        assert not any(a["ok"] for a in attempts)
        assert all("does not match" in a["error"] or "!=" in a["error"] for a in attempts)
        secondary = list(app.storage(SECONDARY).iter_objects("orders/"))
        assert secondary == []  # the wrong bytes were removed, the manifest never copied
    finally:
        app.close()


# -- the catalog file ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def synced_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    assert cli("init", "--demo", str(root))[0] == 0
    assert cli("--config", str(root / "btar.toml"), "sync", "--once")[0] == 0
    db = sqlite3.connect(root / "btar.sqlite")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return root


def damaged_copy(synced_demo: Path, tmp_path: Path, damage: str) -> Path:
    config = tmp_path / "btar.toml"
    config.write_text((synced_demo / "btar.toml").read_text(), encoding="utf-8")
    data = (synced_demo / "btar.sqlite").read_bytes()
    if damage == "truncated":
        data = data[:len(data) // 2]
    elif damage == "cut-to-header":
        data = data[:100]
    elif damage == "garbage":
        data = b"this is not a database\n" * 100
    elif damage == "scribbled-pages":
        # Over the items table, which every command reads (SQLite notices damage only in
        # the pages it reads, and where the middle of the file falls depends on the order
        # in which the catalog grew).
        db = sqlite3.connect(f"file:{synced_demo / 'btar.sqlite'}?mode=ro", uri=True)
        try:
            page_size = db.execute("PRAGMA page_size").fetchone()[0]
            [root_page] = db.execute("select rootpage from sqlite_master "
                                     "where type = 'table' and name = 'items'").fetchone()
        finally:
            db.close()
        start = (root_page - 1) * page_size
        data = data[:start] + bytes(range(256)) * 64 + data[start + 256 * 64:]
    (tmp_path / "btar.sqlite").write_bytes(data)
    return config


@pytest.mark.parametrize("damage", ["truncated", "cut-to-header", "garbage", "scribbled-pages"])
@pytest.mark.parametrize("command", [["status"], ["sync", "--once"], ["window", "orders"]])
def test_a_damaged_catalog_is_one_clear_line_and_exit_2(
        synced_demo: Path, tmp_path: Path, damage: str, command: list[str]) -> None:
    config = damaged_copy(synced_demo, tmp_path, damage)
    code, _, err = cli("--config", str(config), *command)
    refused_in_one_line(code, err)
    assert "catalog file is damaged" in err
    assert str(tmp_path / "btar.sqlite") in err


def test_a_damaged_catalog_is_refused_by_the_real_command(synced_demo: Path,
                                                          tmp_path: Path) -> None:
    config = damaged_copy(synced_demo, tmp_path, "truncated")
    done = subprocess.run([sys.executable, "-m", "engine.cli", "--config", str(config),
                           "sync", "--once"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)
    refused_in_one_line(done.returncode, done.stderr)


def test_a_catalog_from_a_newer_btar_is_refused_with_exit_2(synced_demo: Path,
                                                            tmp_path: Path) -> None:
    config = damaged_copy(synced_demo, tmp_path, "none")
    db = sqlite3.connect(tmp_path / "btar.sqlite")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 3}")
    db.commit()
    db.close()
    before = hashlib.sha256((tmp_path / "btar.sqlite").read_bytes()).hexdigest()
    code, _, err = cli("--config", str(config), "sync", "--once")
    refused_in_one_line(code, err)
    assert f"schema version {SCHEMA_VERSION + 3}" in err
    assert "upgrade btar" in err
    assert issubclass(CatalogTooNew, BtarError)
    assert hashlib.sha256((tmp_path / "btar.sqlite").read_bytes()).hexdigest() == before


def test_catalog_damage_is_a_bad_input_error() -> None:
    error = CatalogDamaged("/x/btar.sqlite", "file is not a database")
    assert error.exit_code == 2
    assert "\n" not in str(error)

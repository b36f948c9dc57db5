"""Security basics: what btar creates on the host is its owner's only (catalog, its WAL files,
the lock, what a fork fetches), and a full run against S3 leaks the credentials of the
environment into no output, log line (DEBUG included) or catalog byte."""

from __future__ import annotations

import io
import json
import logging
import os
import stat
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.api import Btar
from engine.cli import main
from engine.config import load_config
from engine.demo import DemoProducer
from engine.model import Service, ServiceType
from engine.storage.locations import open_location
from tests.integration.s3_server import FAKE_KEY_ID, FAKE_SECRET, FAKE_TOKEN, MotoS3

PRIMARY, SECONDARY = "aws-eu-west-1", "aws-eu-central-1"


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_the_catalog_its_wal_and_the_lock_are_owner_only(tmp_path: Path,
                                                         loose_umask: None) -> None:
    assert cli("init", "--demo", str(tmp_path / "demo"))[0] == 0
    config = tmp_path / "demo" / "btar.toml"
    catalog = tmp_path / "demo" / "btar.sqlite"
    assert mode(catalog) == 0o600
    app = Btar.open(str(config), exclusive=True)
    try:
        app.sync()
        files = [catalog, *(catalog.with_name(catalog.name + s) for s in ("-wal", "-shm"))]
        assert all(p.exists() for p in files)
        for path in [*files, catalog.with_name("btar.sqlite.lock")]:
            assert mode(path) == 0o600, path
    finally:
        app.close()


def test_an_existing_catalog_keeps_the_mode_its_owner_gave_it(tmp_path: Path,
                                                              loose_umask: None) -> None:
    assert cli("init", "--demo", str(tmp_path))[0] == 0
    catalog = tmp_path / "btar.sqlite"
    catalog.chmod(0o640)
    assert cli("--config", str(tmp_path / "btar.toml"), "status")[0] == 0
    assert mode(catalog) == 0o640


@pytest.fixture
def forked(tmp_path: Path, loose_umask: None) -> Path:
    assert cli("init", "--demo", str(tmp_path / "demo"))[0] == 0
    config = str(tmp_path / "demo" / "btar.toml")
    assert cli("--config", config, "sync", "--once")[0] == 0
    into = tmp_path / "fork"
    code, _, err = cli("--config", config, "fork", "orders", "--region", SECONDARY, "--latest",
                       "--into", str(into))
    assert code == 0, err
    return into


def test_what_a_fork_fetches_is_owner_only(forked: Path) -> None:
    fetched = [p for p in forked.rglob("*") if p.is_file() and p.suffix == ".json"
               and p.parent.name == "data"] + [forked / "backup_manifest.json"]
    assert len(fetched) >= 3
    for path in fetched:
        assert mode(path) == 0o600, path
    for folder in (p for p in forked.rglob("*") if p.is_dir()):
        assert mode(folder) == 0o700, folder


def test_the_fork_staging_folder_itself_is_owner_only(forked: Path) -> None:
    assert mode(forked) == 0o700
    for path in forked.rglob("*"):
        assert mode(path) == (0o700 if path.is_dir() else 0o600), path


def test_no_credential_reaches_an_output_a_log_or_the_catalog(
        moto_s3: MotoS3, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    prefix = f"hygiene-{uuid.uuid4().hex[:10]}"
    config = tmp_path / "btar.toml"
    config.write_text(
        'catalog = "btar.sqlite"\n[regions]\n' + "".join(
            f'{region} = {{ url = "s3://{moto_s3.bucket(region)}/{prefix}", '
            f'endpoint_url = "{moto_s3.endpoint}" }}\n' for region in (PRIMARY, SECONDARY))
        + f'[[services]]\nname = "orders"\ntype = "postgresql"\nregion = "{PRIMARY}"\n',
        encoding="utf-8")
    loaded = load_config(config)
    now = datetime.now(UTC).replace(microsecond=0)
    producer = DemoProducer(open_location(loaded.config.regions[PRIMARY], PRIMARY),
                            Service("orders", ServiceType.POSTGRESQL, PRIMARY),
                            last_end=now - timedelta(minutes=30))
    producer.base_backup(now - timedelta(minutes=30))
    for minutes in (25, 20, 15, 10):
        producer.segment(now - timedelta(minutes=minutes))
    outputs: list[str] = []
    for argv in (["enable", "orders", "--region", SECONDARY], ["sync", "--once", "--strict"],
                 ["status", "--json"], ["window", "orders", "--json"], ["window", "orders"],
                 ["lag", "orders", "--period", "day"], ["lag", "orders", "--json"],
                 ["events", "--json"], ["events"], ["backups", "orders", "--json"],
                 ["fork", "orders", "--region", SECONDARY, "--latest", "--dry-run"],
                 ["fork", "orders", "--region", SECONDARY, "--latest", "--dry-run", "--json"],
                 ["disable", "orders", "--keep"]):
        code, out, err = cli("--config", str(config), *argv)
        assert code == 0, (argv, err)
        outputs.append(out + err)
    assert json.loads(outputs[3])["regions"][1]["end"] is not None  # it really replicated
    logs = caplog.text + "\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {r.__dict__}" for r in caplog.records)
    assert "botocore" in logs  # DEBUG logs of the SDK were captured, and scanned
    assert "<redacted" in logs  # signed requests were among them (redacted)
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("btar.sqlite*"))
    for secret in (FAKE_KEY_ID, FAKE_SECRET, FAKE_TOKEN):
        assert all(secret not in text for text in outputs), secret
        assert secret not in logs, secret
        assert secret.encode() not in stored, secret

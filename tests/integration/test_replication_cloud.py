"""Replication end to end on each cloud backend, against its local protocol server: a
native-format backup is produced in the primary bucket, `btar sync` copies and publishes it
in the secondary, `btar window` shows it, and no credential reaches any output or the catalog.
"""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.cli import main
from engine.config import load_config
from engine.demo import DemoProducer
from engine.model import Service, ServiceType
from engine.storage.base import Storage
from engine.storage.locations import open_location
from tests.integration.s3_server import (
    FAKE_KEY_ID,
    FAKE_SECRET,
    FAKE_TOKEN,
    MotoS3,
    moto_s3,  # noqa: F401 - the session fixture
)

pytestmark = pytest.mark.integration


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()


def replicate_end_to_end(tmp_path: Path, regions_toml: str, primary: str, secondary: str,
                         secrets: list[str]) -> None:
    config = tmp_path / "btar.toml"
    config.write_text(
        f'catalog = "btar.sqlite"\n\n[regions]\n{regions_toml}\n'
        f'[[services]]\nname = "orders"\ntype = "postgresql"\nregion = "{primary}"\n')
    loaded = load_config(config)
    source: Storage = open_location(loaded.config.regions[primary], primary)
    producer = DemoProducer(source, Service("orders", ServiceType.POSTGRESQL, primary),
                            last_end=datetime.now(UTC))
    producer.base_backup(datetime.now(UTC))
    for _ in range(3):
        producer.segment(datetime.now(UTC))
    outputs = []
    for argv in (["enable", "orders", "--region", secondary], ["sync", "--once", "--strict"],
                 ["window", "orders", "--json"], ["status", "--json"],
                 ["backups", "orders", "--json"]):
        code, out, err = run("--config", str(config), *argv)
        assert code == 0, err
        outputs.append(out + err)
    window = json.loads(outputs[2])
    ends = {r["role"]: r["end"] for r in window["regions"]}
    assert ends["secondary"] is not None
    assert ends["secondary"] == ends["primary"]
    items = json.loads(outputs[4])["items"]
    assert {i["status"] for i in items if i["region"] == secondary} == {"available"}
    catalog_bytes = b"".join(p.read_bytes() for p in tmp_path.glob("btar.sqlite*"))
    for secret in secrets:
        assert all(secret not in text for text in outputs)
        assert secret.encode() not in catalog_bytes


def test_s3_end_to_end(moto_s3: MotoS3, tmp_path: Path) -> None:  # noqa: F811
    prefix = uuid.uuid4().hex
    regions = "".join(
        f'{region} = {{ url = "s3://{moto_s3.bucket(region)}/{prefix}", '
        f'endpoint_url = "{moto_s3.endpoint}" }}\n'
        for region in ("aws-eu-west-1", "aws-eu-central-1"))
    replicate_end_to_end(tmp_path, regions, "aws-eu-west-1", "aws-eu-central-1",
                         [FAKE_KEY_ID, FAKE_SECRET, FAKE_TOKEN])


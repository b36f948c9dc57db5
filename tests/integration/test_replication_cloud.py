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
from azure.storage.blob import ContainerClient

from engine.cli import main
from engine.config import load_config
from engine.demo import DemoProducer, azure_key_env, demo_bucket
from engine.model import Service, ServiceType
from engine.storage.base import Storage
from engine.storage.locations import open_location
from tests.integration.azurite_server import Azurite
from tests.integration.gcs_server import REGIONS as GCS_BUCKETS
from tests.integration.gcs_server import FakeGcs
from tests.integration.s3_server import (
    FAKE_KEY_ID,
    FAKE_SECRET,
    FAKE_TOKEN,
    MotoS3,
    create_demo_buckets,
)

pytestmark = pytest.mark.integration

GCS_REGIONS = tuple(GCS_BUCKETS)


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


def test_s3_end_to_end(moto_s3: MotoS3, tmp_path: Path) -> None:
    prefix = uuid.uuid4().hex
    regions = "".join(
        f'{region} = {{ url = "s3://{moto_s3.bucket(region)}/{prefix}", '
        f'endpoint_url = "{moto_s3.endpoint}" }}\n'
        for region in ("aws-eu-west-1", "aws-eu-central-1"))
    replicate_end_to_end(tmp_path, regions, "aws-eu-west-1", "aws-eu-central-1",
                         [FAKE_KEY_ID, FAKE_SECRET, FAKE_TOKEN])



def test_gcs_end_to_end(fake_gcs: FakeGcs, tmp_path: Path) -> None:
    prefix = uuid.uuid4().hex
    regions = "".join(
        f'{region} = {{ url = "gs://{fake_gcs.bucket(region)}/{prefix}", '
        f'emulator_host = "{fake_gcs.endpoint}", project = "btar-test" }}\n'
        for region in GCS_REGIONS)
    replicate_end_to_end(tmp_path, regions, *GCS_REGIONS, [])


def test_azure_end_to_end(azurite: Azurite, tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    container = f"e2e{uuid.uuid4().hex[:12]}"
    accounts = {"azure-westeurope": "acct1", "azure-northeurope": "acct2"}
    for account in accounts.values():
        monkeypatch.setenv(f"BTAR_E2E_KEY_{account.upper()}", azurite.keys[account])
        ContainerClient(azurite.account_url(account), container,
                        credential={"account_name": account,
                                    "account_key": azurite.keys[account]}).create_container()
    regions = "".join(
        f'{region} = {{ url = "az://{account}/{container}/svc", account_url = '
        f'"{azurite.account_url(account)}", account_key_env = '
        f'"BTAR_E2E_KEY_{account.upper()}" }}\n' for region, account in accounts.items())
    replicate_end_to_end(tmp_path, regions, "azure-westeurope", "azure-northeurope",
                         list(azurite.keys.values()))


def demo_round_trip(tmp_path: Path, *init_args: str) -> None:
    """`btar init --demo --backend ...`, then sync, then a secondary window per service."""
    code, _, err = run("init", "--demo", str(tmp_path), *init_args)
    assert code == 0, err
    config = str(tmp_path / "btar.toml")
    code, _, err = run("--config", config, "sync", "--once", "--strict")
    assert code == 0, err
    for service in ("orders", "billing", "inventory"):
        _, out, _ = run("--config", config, "window", service, "--json")
        ends = {r["role"]: r["end"] for r in json.loads(out)["regions"]}
        assert ends["secondary"] is not None
        assert ends["secondary"] == ends["primary"]


def test_demo_on_s3(moto_s3: MotoS3, tmp_path: Path) -> None:
    create_demo_buckets(moto_s3)
    demo_round_trip(tmp_path, "--backend", "s3", "--endpoint", moto_s3.endpoint)


def test_demo_on_gcs(fake_gcs: FakeGcs, tmp_path: Path) -> None:
    for region in ("google-europe-west1", "google-europe-north1"):
        fake_gcs.create_bucket(demo_bucket(region))
    demo_round_trip(tmp_path, "--backend", "gcs", "--endpoint", fake_gcs.endpoint)


def test_demo_on_azure(azurite: Azurite, tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    for account in ("acct1", "acct2"):
        monkeypatch.setenv(azure_key_env(account), azurite.keys[account])
        client = ContainerClient(azurite.account_url(account), "btar-demo",
                                 credential={"account_name": account,
                                             "account_key": azurite.keys[account]})
        if not client.exists():
            client.create_container()
    demo_round_trip(tmp_path, "--backend", "azure", "--endpoint",
                    f"http://{azurite.host}:{azurite.port}", "--azure-accounts", "acct1,acct2")

"""Fault isolation on the clouds (moto's S3 server, fake-gcs-server, Azurite): while one
service's destination bucket or container is missing, or its endpoint is down, the
`btar sync` daemon keeps running, a service on other regions (local folders) keeps
replicating, the faulty one says why it waits, and it catches up by itself once the bucket
exists or the endpoint answers."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from azure.storage.blob import ContainerClient

from engine.api import Btar
from engine.daemon import run_sync
from engine.demo import DemoProducer
from engine.model import ItemStatus
from tests.integration.azurite_server import Azurite
from tests.integration.gcs_server import FakeGcs
from tests.integration.relay import TcpRelay
from tests.integration.s3_server import MotoS3

pytestmark = pytest.mark.integration

DESTINATION = "aws-eu-central-1"


@dataclasses.dataclass(frozen=True)
class Cloud:
    """One backend's regions for the faulty service "orders", and the regions (local
    folders) of the healthy service "billing"."""

    primary: str
    destination: str
    #: btar.toml lines of the primary and the destination region, given the destination's
    #: bucket (or container) and endpoint
    regions: Callable[[str, str], str]
    #: creates the destination bucket (or container)
    create: Callable[[str], None]
    #: a bucket name (or container) that does not exist yet, and the endpoint that works
    missing: str
    endpoint: str
    reason: str
    local: tuple[str, str]


def s3_cloud(moto: MotoS3) -> Cloud:
    prefix = f"iso-{uuid.uuid4().hex[:8]}"

    def regions(bucket: str, endpoint: str) -> str:
        return (f'aws-eu-west-1 = {{ url = "s3://{moto.bucket("aws-eu-west-1")}/{prefix}", '
                f'endpoint_url = "{moto.endpoint}", max_attempts = 2 }}\n'
                f'aws-eu-central-1 = {{ url = "s3://{bucket}/{prefix}", '
                f'endpoint_url = "{endpoint}", max_attempts = 2 }}\n')

    def create(bucket: str) -> None:
        boto3.session.Session().client(
            "s3", region_name="eu-central-1", endpoint_url=moto.endpoint).create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})

    missing = f"btar-iso-{uuid.uuid4().hex[:8]}"
    return Cloud("aws-eu-west-1", "aws-eu-central-1", regions, create, missing,
                 moto.endpoint, f"bucket {missing} does not exist",
                 ("google-europe-west1", "google-europe-north1"))


def gcs_cloud(gcs: FakeGcs) -> Cloud:
    prefix = f"iso-{uuid.uuid4().hex[:8]}"

    def regions(bucket: str, endpoint: str) -> str:
        return (f'google-europe-west1 = {{ url = "gs://{gcs.bucket("google-europe-west1")}/'
                f'{prefix}", emulator_host = "{gcs.endpoint}", project = "btar-test" }}\n'
                f'google-europe-north1 = {{ url = "gs://{bucket}/{prefix}", '
                f'emulator_host = "{endpoint}", project = "btar-test" }}\n')

    missing = f"btar-iso-{uuid.uuid4().hex[:8]}"
    return Cloud("google-europe-west1", "google-europe-north1", regions, gcs.create_bucket,
                 missing, gcs.endpoint, f"bucket {missing} does not exist",
                 ("aws-eu-west-1", "aws-eu-central-1"))


def azure_cloud(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Cloud:
    primary = f"iso{uuid.uuid4().hex[:10]}"
    for account in ("acct1", "acct2"):
        monkeypatch.setenv(f"BTAR_ISO_KEY_{account.upper()}", azurite.keys[account])
    admin("acct1", primary, azurite).create_container()

    def regions(container: str, endpoint: str) -> str:
        return (f'azure-westeurope = {{ url = "az://acct1/{primary}/svc", account_url = '
                f'"{azurite.account_url("acct1")}", account_key_env = "BTAR_ISO_KEY_ACCT1" }}\n'
                f'azure-northeurope = {{ url = "az://acct2/{container}/svc", account_url = '
                f'"{endpoint}/acct2", account_key_env = "BTAR_ISO_KEY_ACCT2" }}\n')

    missing = f"iso{uuid.uuid4().hex[:10]}"
    return Cloud("azure-westeurope", "azure-northeurope", regions,
                 lambda container: admin("acct2", container, azurite).create_container(),
                 missing, f"http://{azurite.host}:{azurite.port}",
                 "the container does not exist", ("aws-eu-west-1", "aws-eu-central-1"))


def admin(account: str, container: str, azurite: Azurite) -> ContainerClient:
    return ContainerClient(azurite.account_url(account), container,
                           credential={"account_name": account,
                                       "account_key": azurite.keys[account]})


def write_config(folder: Path, cloud: Cloud, bucket: str, endpoint: str) -> Path:
    """orders: the cloud (its destination bucket and endpoint as given); billing: local
    folders."""
    healthy_primary, healthy_destination = cloud.local
    config = folder / "btar.toml"
    config.write_text(f"""
catalog = "btar.sqlite"

[replication]
poll_interval = 0.3
busy_poll_interval = 0.1

[regions]
{cloud.regions(bucket, endpoint)}
{healthy_primary} = "{(folder / 'p').as_uri()}"
{healthy_destination} = "{(folder / 'd').as_uri()}"

[[services]]
name = "orders"
type = "postgresql"
region = "{cloud.primary}"

[[services]]
name = "billing"
type = "postgresql"
region = "{healthy_primary}"
""", encoding="utf-8")
    return config


@dataclasses.dataclass
class Running:
    app: Btar
    config: Path

    def published(self, service: str, region: str) -> int:
        app = Btar.open(str(self.config))
        try:
            return sum(1 for r in app.backups(service, region)
                       if r.status == ItemStatus.AVAILABLE)
        finally:
            app.close()

    def state(self, service: str) -> str:
        app = Btar.open(str(self.config))
        try:
            return app.status_of(service).state
        finally:
            app.close()


@contextlib.contextmanager
def running(config: Path, cloud: Cloud) -> Iterator[Running]:
    """The daemon on ``config``, and a producer writing a segment of each service every
    0.2 s (a base backup first)."""
    app = Btar.open(str(config), exclusive=True)
    app.enable("orders", cloud.destination)
    app.enable("billing", cloud.local[1])
    stop = threading.Event()
    failures: list[BaseException] = []
    producers = [DemoProducer(app.storage(s.region), s, last_end=datetime.now(UTC))
                 for s in (app.service("orders"), app.service("billing"))]
    for producer in producers:
        producer.base_backup(datetime.now(UTC))

    def produce() -> None:
        while not stop.wait(0.2):
            for producer in producers:
                producer.segment(datetime.now(UTC))

    def replicate() -> None:
        try:
            run_sync(app, [], logger=logging.getLogger("test"), stop=stop)
        except BaseException as error:  # the daemon must not die: the test says so
            failures.append(error)

    threads = [threading.Thread(target=produce), threading.Thread(target=replicate)]
    for thread in threads:
        thread.start()
    try:
        yield Running(app, config)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
        app.close()
    assert not failures, failures


def wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def caught_up(run: Running, service: str, region: str, primary: str) -> bool:
    return run.state(service) == "in sync" and \
        run.published(service, region) >= run.published(service, primary)


@pytest.fixture(params=["s3", "gcs", "azure"])
def cloud(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Cloud:
    if request.param == "s3":
        return s3_cloud(request.getfixturevalue("moto_s3"))
    if request.param == "gcs":
        return gcs_cloud(request.getfixturevalue("fake_gcs"))
    return azure_cloud(request.getfixturevalue("azurite"), monkeypatch)


def test_a_missing_destination_bucket_pauses_only_its_service(cloud: Cloud,
                                                              tmp_path: Path) -> None:
    config = write_config(tmp_path, cloud, cloud.missing, cloud.endpoint)
    with running(config, cloud) as run:
        wait_for(lambda: run.published("billing", cloud.local[1]) >= 5)
        wait_for(lambda: run.state("orders").startswith("paused"))
        assert cloud.reason in run.state("orders")
        cloud.create(cloud.missing)
        wait_for(lambda: caught_up(run, "orders", cloud.destination, cloud.primary))


# Not Azurite: a server-side copy whose destination is reached through the relay and whose
# source is not fails there with CannotVerifyCopySource (an emulator artefact).
@pytest.mark.parametrize("cloud", ["s3", "gcs"], indirect=True)
def test_an_endpoint_that_goes_down_pauses_only_its_service(cloud: Cloud,
                                                            tmp_path: Path) -> None:
    host, _, port = cloud.endpoint.removeprefix("http://").partition(":")
    relay = TcpRelay(host, int(port))  # down: nothing listens on its port yet
    bucket = f"{cloud.missing}x"
    cloud.create(bucket)
    config = write_config(tmp_path, cloud, bucket, relay.url)
    with running(config, cloud) as run:
        before = run.published("billing", cloud.local[1])
        wait_for(lambda: run.state("orders").startswith("paused"))
        assert f"{cloud.destination} unreachable" in run.state("orders")
        wait_for(lambda: run.published("billing", cloud.local[1]) >= before + 5)
        relay.up()  # the endpoint answers again
        try:
            wait_for(lambda: caught_up(run, "orders", cloud.destination, cloud.primary))
        finally:
            relay.down()

"""Fault isolation on S3 (moto's server): while one service's destination bucket is missing,
or its endpoint does not answer, the `btar sync` daemon keeps running, a service on other
regions keeps replicating, the faulty one says why it waits, and it catches up by itself
once the bucket exists or the endpoint answers."""

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

from engine.api import Btar
from engine.daemon import run_sync
from engine.demo import DemoProducer
from engine.model import ItemStatus
from tests.integration.s3_server import MotoS3, closed_port

pytestmark = pytest.mark.integration

DESTINATION = "aws-eu-central-1"


def write_config(folder: Path, moto: MotoS3, bucket: str, endpoint: str) -> Path:
    """orders: S3 (shared primary bucket, its own destination bucket and endpoint);
    billing: local folders (google regions)."""
    prefix = f"iso-{uuid.uuid4().hex[:8]}"
    primary = (f'{{ url = "s3://{moto.bucket("aws-eu-west-1")}/{prefix}", '
               f'endpoint_url = "{moto.endpoint}", max_attempts = 2 }}')
    destination = (f'{{ url = "s3://{bucket}/{prefix}", endpoint_url = "{endpoint}", '
                   'max_attempts = 2 }')
    config = folder / "btar.toml"
    config.write_text(f"""
catalog = "btar.sqlite"

[replication]
poll_interval = 0.3
busy_poll_interval = 0.1

[regions]
aws-eu-west-1 = {primary}
{DESTINATION} = {destination}
google-europe-west1 = "{(folder / 'gw1').as_uri()}"
google-europe-north1 = "{(folder / 'gn1').as_uri()}"

[[services]]
name = "orders"
type = "postgresql"
region = "aws-eu-west-1"

[[services]]
name = "billing"
type = "postgresql"
region = "google-europe-west1"
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
def running(config: Path) -> Iterator[Running]:
    """The daemon on ``config``, and a producer writing a segment of each service every
    0.2 s (a base backup first)."""
    app = Btar.open(str(config), exclusive=True)
    app.enable("orders", DESTINATION)
    app.enable("billing", "google-europe-north1")
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


def test_a_missing_destination_bucket_pauses_only_its_service(
        moto_s3: MotoS3, tmp_path: Path) -> None:
    bucket = f"btar-iso-{uuid.uuid4().hex[:8]}"
    config = write_config(tmp_path, moto_s3, bucket, moto_s3.endpoint)
    with running(config) as run:
        wait_for(lambda: run.published("billing", "google-europe-north1") >= 5)
        wait_for(lambda: run.state("orders").startswith("paused"))
        assert f"bucket {bucket} does not exist" in run.state("orders")
        client = boto3.session.Session().client("s3", region_name="eu-central-1",
                                                endpoint_url=moto_s3.endpoint)
        client.create_bucket(Bucket=bucket,
                             CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
        wait_for(lambda: caught_up(run, "orders", DESTINATION, "aws-eu-west-1"))


def test_an_endpoint_that_does_not_answer_pauses_only_its_service(
        moto_s3: MotoS3, tmp_path: Path) -> None:
    from moto.server import ThreadedMotoServer

    port = closed_port()
    config = write_config(tmp_path, moto_s3, moto_s3.bucket(DESTINATION),
                          f"http://127.0.0.1:{port}")
    with running(config) as run:
        before = run.published("billing", "google-europe-north1")
        wait_for(lambda: run.state("orders").startswith("paused"))
        assert "no answer after 2 attempts" in run.state("orders")
        wait_for(lambda: run.published("billing", "google-europe-north1") >= before + 5)
        # The endpoint comes back (moto keeps its buckets in the process, so a second
        # server on that port serves the same ones).
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            wait_for(lambda: caught_up(run, "orders", DESTINATION, "aws-eu-west-1"))
        finally:
            server.stop()

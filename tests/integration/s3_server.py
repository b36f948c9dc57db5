"""A moto S3 server on 127.0.0.1 with one bucket per region, for tests and the benchmark.

Credentials are recognisable fakes set in the environment (the standard chain picks them up),
so the hygiene test can look for them in messages and logs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

FAKE_KEY_ID = "AKIABTARFAKEKEYID001"
FAKE_SECRET = "btarFakeSecret/DoNotLeak+0123456789abcdef"
FAKE_TOKEN = "btarFakeSessionToken/DoNotLeak+fedcba9876543210"

#: btar region id -> (AWS region, bucket)
REGIONS = {
    "aws-eu-west-1": ("eu-west-1", "btar-primary-eu-west-1"),
    "aws-eu-central-1": ("eu-central-1", "btar-secondary-eu-central-1"),
}


@dataclass(frozen=True)
class MotoS3:
    endpoint: str

    def bucket(self, region_id: str) -> str:
        return REGIONS[region_id][1]


def fake_aws_environment() -> dict[str, str | None]:
    """Environment for the tests: fake credentials, no host config, no instance metadata."""
    return {
        "AWS_ACCESS_KEY_ID": FAKE_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
        "AWS_SESSION_TOKEN": FAKE_TOKEN,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_PROFILE": None,
        "AWS_DEFAULT_PROFILE": None,
        "AWS_DEFAULT_REGION": None,
        "AWS_ENDPOINT_URL": None,
        "AWS_ENDPOINT_URL_S3": None,
    }


@contextlib.contextmanager
def moto_s3_server() -> Iterator[MotoS3]:
    """Start moto on a free loopback port, create the buckets, stop it on exit. The caller
    sets the fake environment first (see fake_aws_environment)."""
    import boto3
    from moto.server import ThreadedMotoServer

    # werkzeug logs one line per request at INFO; the tests look at logs, keep them readable
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for region, bucket in REGIONS.values():
            client = boto3.session.Session().client("s3", region_name=region,
                                                    endpoint_url=endpoint)
            # moto records, but does not enforce, the region; it must match the client's
            client.create_bucket(Bucket=bucket,
                                 CreateBucketConfiguration={"LocationConstraint": region})
            client.close()
        yield MotoS3(endpoint)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """One moto server for the session, with fake credentials in the environment."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in fake_aws_environment().items():
            if value is None:
                patch.delenv(name, raising=False)
            else:
                patch.setenv(name, value)
        with moto_s3_server() as server:
            yield server


def create_demo_buckets(moto: MotoS3) -> None:
    """The buckets `btar init --demo --backend s3` points at, once per server (several tests
    use them)."""
    import boto3

    from engine.demo import demo_bucket

    for region in ("aws-eu-west-1", "aws-eu-central-1"):
        aws_region = region.removeprefix("aws-")
        client = boto3.client("s3", region_name=aws_region, endpoint_url=moto.endpoint)
        if demo_bucket(region) not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
            client.create_bucket(Bucket=demo_bucket(region),
                                 CreateBucketConfiguration={"LocationConstraint": aws_region})


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port

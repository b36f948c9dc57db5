"""The local protocol servers (moto_s3, fake_gcs, azurite) are session fixtures defined once in
tests/conftest.py, shared with tests/reliability: a second definition here would start a second
server in the same process.

``moto_auth`` is another moto, in a process of its own: it checks credentials (moto does only
when told so at start, for the whole process), so that wrong keys meet a real refusal."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.integration.gcs_server import free_port
from tests.integration.s3_server import REGIONS


@dataclass(frozen=True)
class MotoAuth:
    """A moto server that authenticates requests, with one user allowed everything."""

    endpoint: str
    key_id: str
    secret: str

    def bucket(self, region_id: str) -> str:
        return REGIONS[region_id][1]


@pytest.fixture(scope="session")
def moto_auth() -> Iterator[MotoAuth]:
    import boto3

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    # The first 3 requests (the IAM user, its policy, its key) go unchecked, every later one
    # is authenticated.
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                "-p", str(port)], env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.05)
        iam = boto3.session.Session().client(  # any keys pass the unchecked requests
            "iam", region_name="us-east-1", endpoint_url=endpoint,
            aws_access_key_id="AKIAUNCHECKED0000000", aws_secret_access_key="unchecked")
        iam.create_user(UserName="btar")
        iam.put_user_policy(UserName="btar", PolicyName="everything", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="btar")["AccessKey"]
        server = MotoAuth(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
        for region, bucket in REGIONS.values():
            boto3.session.Session().client(
                "s3", region_name=region, endpoint_url=endpoint,
                aws_access_key_id=server.key_id,
                aws_secret_access_key=server.secret).create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

"""The S3 side: moto in its own process (harness.moto_host), fake credentials, buckets, seeding,
listing and emptying."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import boto3
from botocore.config import Config

from tests.benchmarks.harness.data import Obj
from tests.integration.s3_server import fake_aws_environment

ROOT = Path(__file__).resolve().parents[3]
#: the AWS regions of btar's two regions (moto records, does not enforce, them)
PRIMARY_AWS, SECONDARY_AWS = "eu-west-1", "eu-central-1"


def benchmark_environment() -> dict[str, str]:
    """The process environment with fake AWS credentials and no CA bundle: AWS_CA_BUNDLE is
    set on these machines and breaks some clients against plain-HTTP moto."""
    env = dict(os.environ)
    for name, value in fake_aws_environment().items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    env.pop("AWS_CA_BUNDLE", None)
    return env


class Moto:
    """A running moto host process and a boto3 client for setup and checks."""

    def __init__(self, process: subprocess.Popen[str], endpoint: str) -> None:
        self.process = process
        self.endpoint = endpoint
        self.client: Any = boto3.session.Session().client(
            "s3", region_name=SECONDARY_AWS, endpoint_url=endpoint,
            config=Config(max_pool_connections=32, retries={"max_attempts": 5}))

    def cpu_seconds(self) -> float:
        """CPU time the moto process has used so far (user + system, from /proc): the
        server's side of a run, to tell a client's cost from the emulator's."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _ask(self, command: dict[str, Any]) -> dict[str, Any]:
        stdin: IO[str] | None = self.process.stdin
        stdout: IO[str] | None = self.process.stdout
        assert stdin is not None
        assert stdout is not None
        stdin.write(json.dumps(command) + "\n")
        stdin.flush()
        answer: dict[str, Any] = json.loads(stdout.readline())
        if "error" in answer:
            raise RuntimeError(f"moto host: {answer['error']}")
        return answer

    def create_bucket(self, bucket: str, region: str = SECONDARY_AWS) -> None:
        client = boto3.session.Session().client("s3", region_name=region,
                                                endpoint_url=self.endpoint)
        client.create_bucket(Bucket=bucket,
                             CreateBucketConfiguration={"LocationConstraint": region})
        client.close()

    def seed(self, bucket: str, objs: list[Obj], chunk: int = 5000) -> None:
        """Put the objects straight into moto's backend (in the moto process)."""
        for i in range(0, len(objs), chunk):
            self._ask({"op": "seed", "bucket": bucket,
                       "objects": [o.spec() for o in objs[i:i + chunk]]})

    def requests(self) -> int:
        """HTTP requests the server has served so far."""
        return int(self._ask({"op": "requests"})["requests"])

    def request_kinds(self) -> dict[str, int]:
        """The requests served so far by kind ("GET bucket list-type", "PUT object copy")."""
        return {str(k): int(v) for k, v in self._ask({"op": "requests"})["kinds"].items()}

    def listing(self, bucket: str, prefix: str = "") -> dict[str, tuple[int, str]]:
        """key -> (size, etag) of every object under ``prefix``."""
        out: dict[str, tuple[int, str]] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                out[item["Key"]] = (int(item["Size"]), str(item["ETag"]).strip('"'))
        return out

    def empty_and_delete(self, bucket: str) -> None:
        keys = list(self.listing(bucket))
        for i in range(0, len(keys), 1000):
            self.client.delete_objects(Bucket=bucket, Delete={
                "Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})
        self.client.delete_bucket(Bucket=bucket)


@contextmanager
def moto_server() -> Iterator[Moto]:
    """Start the moto host process with the benchmark environment; stop it on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.benchmarks.harness.moto_host"], cwd=ROOT,
        env=benchmark_environment(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the moto host process did not start")
        moto = Moto(process, json.loads(line)["endpoint"])
        deadline = time.monotonic() + 30
        while True:
            try:
                moto.client.list_buckets()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield moto
    finally:
        if process.stdin is not None:
            try:
                process.stdin.write(json.dumps({"op": "quit"}) + "\n")
                process.stdin.close()
            except (BrokenPipeError, OSError):
                pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

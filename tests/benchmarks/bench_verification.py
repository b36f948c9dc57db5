"""Copies per second and requests per copy by what the layout records (a SHA-256, a SHA-1 as
pgBackRest's rck, nothing as Barman Cloud), per backend on its local server.

    python tests/benchmarks/bench_verification.py [local|s3|gcs|azure ...] [--objects N]

One copy at a time through engine.transfer.execute_copy, each verified, then the copy deleted
(its delete is counted in the rate, not in the requests). The table in docs/verification.md
comes from this.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.effects import CopyTask
from engine.model import Digest
from engine.replication import verify
from engine.storage.base import Storage
from engine.storage.local import LocalStorage
from engine.transfer import execute_copy

SIZE = 256 * 1024
MODES = ("sha256", "sha1", "none")


def run(name: str, source: Storage, destination: Storage, count: int) -> None:
    data = [os.urandom(SIZE) for _ in range(count)]
    for index, payload in enumerate(data):
        source.write(f"o/{index}", payload)
    for mode in MODES:
        started = time.perf_counter()
        result = None
        for index, payload in enumerate(data):
            sha = hashlib.sha256(payload).hexdigest() if mode == "sha256" else None
            digest = Digest("sha1", hashlib.sha1(payload).hexdigest()) if mode == "sha1" \
                else None
            result = execute_copy(source, destination,
                                  CopyTask("a", "b", f"o/{index}", SIZE, sha, digest))
            assert verify(result, sha)[0], result
            destination.delete(f"o/{index}")
        elapsed = time.perf_counter() - started
        print(f"{name:6} {mode:7} {count / elapsed:7.1f} copies/s  "
              f"verified_by={result.verified_by if result else ''}")


@contextlib.contextmanager
def s3_pair() -> Iterator[tuple[Storage, Storage]]:
    from tests.integration.s3_server import fake_aws_environment, moto_s3_server
    from tests.integration.test_storage_s3 import open_s3

    for name, value in fake_aws_environment().items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    with moto_s3_server() as moto:
        source, destination = open_s3(moto, "aws-eu-west-1", spy=True), \
            open_s3(moto, "aws-eu-central-1", spy=True)
        yield source, destination
        calls = collections.Counter(n for store in (source, destination)
                                    for n, _ in store.client.calls  # type: ignore[attr-defined]
                                    if n not in ("put_object", "delete_object", "head_object"))
        print(f"s3     CopyObject calls in all: {calls}")


@contextlib.contextmanager
def gcs_pair() -> Iterator[tuple[Storage, Storage]]:
    from tests.integration.gcs_server import fake_gcs_server
    from tests.integration.test_storage_gcs import open_gcs

    with fake_gcs_server() as fake:
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        yield (open_gcs(fake, "google-europe-west1", prefix),
               open_gcs(fake, "google-europe-west4", prefix))


@contextlib.contextmanager
def azure_pair() -> Iterator[tuple[Storage, Storage]]:
    from azure.storage.blob import ContainerClient

    from engine.storage.azure import AzureStorage
    from engine.storage.locations import AzureLocation
    from tests.integration.azurite_server import run_azurite

    with run_azurite() as azurite:
        stores: list[Storage] = []
        for account in ("acct1", "acct2"):
            os.environ[f"BTAR_BENCH_KEY_{account}"] = azurite.keys[account]
            container = f"bench{uuid.uuid4().hex[:10]}"
            ContainerClient(azurite.account_url(account), container,
                            credential={"account_name": account,
                                        "account_key": azurite.keys[account]}
                            ).create_container()
            stores.append(AzureStorage.from_location(AzureLocation(
                url=f"az://{account}/{container}/", account_url=azurite.account_url(account),
                account_key_env=f"BTAR_BENCH_KEY_{account}"), account))
        yield stores[0], stores[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("backends", nargs="*", default=["local", "s3", "gcs", "azure"])
    parser.add_argument("--objects", type=int, default=100)
    args = parser.parse_args()
    for backend in args.backends:
        if backend == "local":
            with tempfile.TemporaryDirectory() as folder:
                run("local", LocalStorage(Path(folder) / "p"), LocalStorage(Path(folder) / "s"),
                    args.objects)
            continue
        pair = {"s3": s3_pair, "gcs": gcs_pair, "azure": azure_pair}[backend]
        with pair() as (source, destination):
            run(backend, source, destination, args.objects)


if __name__ == "__main__":
    main()

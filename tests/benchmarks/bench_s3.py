"""Copy throughput between two S3 regions on a local moto server.

    python tests/benchmarks/bench_s3.py

Server-side copy (CopyObject, and UploadPartCopy above the threshold) against the streaming
fallback (GET through btar, PUT or multipart upload), one object at a time.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.storage.locations import S3Location
from engine.storage.s3 import S3Storage
from tests.integration.s3_server import (
    MotoS3,
    fake_aws_environment,
    moto_s3_server,
)

KIB, MIB = 1024, 1024 * 1024
PRIMARY, SECONDARY = "aws-eu-west-1", "aws-eu-central-1"


def open_s3(moto: MotoS3, region_id: str, prefix: str, **settings: object) -> S3Storage:
    location = S3Location(url=f"s3://{moto.bucket(region_id)}/{prefix}",
                          endpoint_url=moto.endpoint, **settings)  # type: ignore[arg-type]
    return S3Storage.from_location(location, region_id)


def run(moto: MotoS3, source: S3Storage, keys: list[str], size: int, label: str,
        **settings: object) -> tuple[str, str, int, int, float]:
    target = open_s3(moto, SECONDARY, f"bench-{uuid.uuid4().hex[:8]}", **settings)
    methods = set()
    started = time.perf_counter()
    for key in keys:
        methods.add(target.copy_from(source, key, key).method)
    elapsed = time.perf_counter() - started
    target.close()
    return label, "/".join(sorted(methods)), len(keys), size, elapsed


def main() -> None:
    for name, value in fake_aws_environment().items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    with moto_s3_server() as moto:
        source = open_s3(moto, PRIMARY, "bench-source")
        small = [f"wal/{i:06d}" for i in range(200)]
        for i, key in enumerate(small):
            source.write(key, hashlib.shake_256(str(i).encode()).digest(64 * KIB))
        large = [f"base/{i}.tar" for i in range(3)]
        for i, key in enumerate(large):
            source.write(key, hashlib.shake_256(str(i).encode()).digest(64 * MIB))

        rows = [
            run(moto, source, small, 64 * KIB, "200 x 64 KiB"),
            run(moto, source, small, 64 * KIB, "200 x 64 KiB", copy_mode="stream"),
            run(moto, source, large, 64 * MIB, "3 x 64 MiB"),
            run(moto, source, large, 64 * MIB, "3 x 64 MiB, 16 MiB parts",
                multipart_threshold=16 * MIB, part_size=16 * MIB),
            run(moto, source, large, 64 * MIB, "3 x 64 MiB", copy_mode="stream"),
            run(moto, source, large, 64 * MIB, "3 x 64 MiB, 16 MiB parts",
                copy_mode="stream", multipart_threshold=16 * MIB, part_size=16 * MIB),
        ]
        source.close()

    print(f"{'objects':<26} {'method':<12} {'seconds':>8} {'objects/s':>10} {'MiB/s':>9}")
    for label, method, count, size, elapsed in rows:
        print(f"{label:<26} {method:<12} {elapsed:>8.2f} {count / elapsed:>10.1f} "
              f"{count * size / MIB / elapsed:>9.1f}")


if __name__ == "__main__":
    main()

"""Copy throughput between two Azurite accounts (two "regions"): server-side vs streaming.

Run: python tests/benchmarks/bench_azure.py  (needs `npm install` for Azurite)
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from azure.storage.blob import ContainerClient

from engine.storage.azure import AzureStorage
from engine.storage.locations import AzureLocation
from tests.integration.azurite_server import Azurite, run_azurite

MIB = 1024 * 1024


def open_store(server: Azurite, account: str,
               copy_mode: Literal["auto", "stream"] = "auto") -> AzureStorage:
    container = f"bench{uuid.uuid4().hex[:12]}"
    ContainerClient(server.account_url(account), container,
                    credential={"account_name": account,
                                "account_key": server.keys[account]}).create_container()
    env = f"BTAR_BENCH_KEY_{account.upper()}"
    os.environ[env] = server.keys[account]
    location = AzureLocation(url=f"az://{account}/{container}", copy_mode=copy_mode,
                             account_url=server.account_url(account), account_key_env=env)
    return AzureStorage.from_location(location, f"azure-{account}")


def measure(source: AzureStorage, target: AzureStorage, keys: list[str]) -> tuple[float, str]:
    began = time.perf_counter()
    methods = set()
    for key in keys:
        methods.add(target.copy_from(source, key, key).method)
    return time.perf_counter() - began, "/".join(sorted(methods))


def main() -> None:
    rows: list[tuple[str, str, str, str]] = []
    with run_azurite() as server:
        source = open_store(server, "acct1")
        small = [f"small/{i:04d}" for i in range(200)]
        for key in small:
            source.write(key, os.urandom(64 * 1024))
        large = [f"large/{i}" for i in range(3)]
        for key in large:
            source.write(key, os.urandom(64 * MIB))
        modes: tuple[Literal["auto", "stream"], ...] = ("auto", "stream")
        for mode in modes:
            seconds, method = measure(source, open_store(server, "acct2", mode), small)
            rows.append(("200 x 64 KiB", method, f"{seconds:.2f}",
                         f"{len(small) / seconds:.0f} objects/s"))
            seconds, method = measure(source, open_store(server, "acct2", mode), large)
            rows.append(("3 x 64 MiB", method, f"{seconds:.2f}",
                         f"{3 * 64 / seconds:.0f} MiB/s"))
    header = ("objects", "method", "seconds", "throughput")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()

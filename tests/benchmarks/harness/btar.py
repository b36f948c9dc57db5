"""btar as its command line in a subprocess, like the peers: one config file and one catalog
per world, `btar enable`, then timed `btar sync`."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.benchmarks.harness.data import PREFIX
from tests.benchmarks.harness.proc import Run, run

ROOT = Path(__file__).resolve().parents[3]
BTAR = str(ROOT / ".venv" / "bin" / "btar")
PRIMARY, SECONDARY = "aws-eu-west-1", "aws-eu-central-1"
SERVICE = PREFIX


def local_region(path: Path) -> str:
    """A local region at ``path``, made here: btar takes a missing location folder for an
    unmounted volume (unreachable), never creating it."""
    path.mkdir(parents=True, exist_ok=True)
    return f'{{ url = "file://{path.resolve()}" }}'


def s3_region(bucket: str, endpoint: str) -> str:
    return f'{{ url = "s3://{bucket}", endpoint_url = "{endpoint}" }}'


@dataclass(frozen=True)
class BtarWorld:
    """A config file (and its catalog beside it) replicating service ``bench``."""

    folder: Path
    env: Mapping[str, str]

    @classmethod
    def create(cls, folder: Path, primary: str, secondary: str, env: Mapping[str, str], *,
               concurrency: int = 32) -> BtarWorld:
        """``primary``/``secondary`` are TOML inline tables (local_region, s3_region)."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "btar.toml").write_text(
            'catalog = "btar.sqlite"\n\n[replication]\n'
            f"concurrency = {concurrency}\n\n[regions]\n"
            f"{PRIMARY} = {primary}\n{SECONDARY} = {secondary}\n\n"
            f'[[services]]\nname = "{SERVICE}"\ntype = "postgresql"\nregion = "{PRIMARY}"\n')
        world = cls(folder, env)
        world.btar("enable", SERVICE, "--region", SECONDARY).check("btar enable")
        return world

    @property
    def config(self) -> Path:
        return self.folder / "btar.toml"

    @property
    def catalog(self) -> Path:
        return self.folder / "btar.sqlite"

    def argv(self, *args: str) -> list[str]:
        return [BTAR, "--config", str(self.config), *args]

    def btar(self, *args: str) -> Run:
        return run(self.argv(*args), env=self.env)

    def sync_once(self, *extra: str) -> Run:
        """One timed `btar sync --once --strict --json` (exit 1 if any copy failed)."""
        return self.btar("sync", "--once", "--strict", "--json", *extra)

    def catalog_query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        connection = sqlite3.connect(f"file:{self.catalog}?mode=ro", uri=True)
        try:
            return connection.execute(sql, params).fetchall()
        finally:
            connection.close()

    def copy_methods(self) -> dict[str, int]:
        """How the secondary's objects were copied (the catalog's objects.method)."""
        rows = self.catalog_query(
            "select method, count(*) from objects where service = ? and region = ? "
            "group by method", SERVICE, SECONDARY)
        return {str(m) or "?": int(str(n)) for m, n in rows}

    def available_items(self) -> int:
        [(count,)] = self.catalog_query(
            "select count(*) from items where service = ? and region = ? and status = ?",
            SERVICE, SECONDARY, "available")
        return int(str(count))


def sync_outcome(result: Run) -> dict[str, int]:
    """published / copied_objects / failed of a `sync --once --json` run."""
    passes = json.loads(result.stdout)["passes"]
    [outcome] = [p for p in passes if p["service"] == SERVICE]
    return {"published": len(outcome["published"]), "copied": int(outcome["copied_objects"]),
            "failed": len(outcome["failed"])}


@cache
def has_full_listing() -> bool:
    """Does this btar have `sync --full-listing` (forces a full listing of the primary)?"""
    text = subprocess.run([BTAR, "sync", "--help"], capture_output=True, text=True).stdout
    return "--full-listing" in text


def version_run(env: Mapping[str, str]) -> Run:
    """The floor of any btar command: start the interpreter, import, print the version."""
    return run([BTAR, "--version"], env=env).check("btar --version")

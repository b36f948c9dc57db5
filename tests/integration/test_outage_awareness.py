"""Outage awareness through the command line: while a primary or a destination cannot be
reached, `btar sync --once` says so in its exit code (4), `btar status` shows the outage and
since when, `btar check` raises it with what to do, and after recovery everything returns to
"in sync" by itself. On the local backend (folder removed, permission denied) and on moto's
S3 server behind a relay that is switched off and on."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from engine.cli import main
from engine.errors import RegionsUnreachable
from engine.storage.local import LocalStorage
from tests.integration.relay import TcpRelay
from tests.integration.s3_server import MotoS3, create_demo_buckets

PRIMARY, DESTINATION = "aws-eu-west-1", "aws-eu-central-1"
#: the demo services whose primary is PRIMARY, and one elsewhere
HIT, SPARED = ("orders", "inventory"), "billing"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()


def demo(root: Path, *init_args: str) -> str:
    """A demo world synced once, whose `btar check` raises a fault as soon as it is seen."""
    code, _, err = run("init", "--demo", str(root), *init_args)
    assert code == 0, err
    config = root / "btar.toml"
    with config.open("a", encoding="utf-8") as out:
        out.write("\n[alerts]\nprimary_unreachable_warning = 0\npaused_warning = 0\n")
    code, _, err = run("--config", str(config), "sync", "--once")
    assert code == 0, err
    return str(config)


def statuses(config: str) -> dict[str, Any]:
    code, out, err = run("--config", config, "status", "--json")
    assert code == 0, err
    return {s["name"]: s for s in json.loads(out)["services"]}


def assert_recovers(config: str, services: tuple[str, ...]) -> None:
    """One more sync after the fault is mended: in sync again, nothing left to raise."""
    code, _, err = run("--config", config, "sync", "--once")
    assert code == 0, err
    now = statuses(config)
    for name in services:
        assert now[name]["state"] == "in sync", now[name]
        assert all(r["fault"] is None for r in now[name]["regions"]), now[name]
    code, out, _ = run("--config", config, "check")
    assert (code, out) == (0, "OK: every replicating service is within its thresholds\n")


def assert_primary_outage(config: str, kind: str, reason: str,
                          hit: tuple[str, ...] = HIT, spared: tuple[str, ...] = (SPARED,)) -> None:
    """Seen within one pass: the exit code, status (text and JSON), check with fork advice."""
    code, _, err = run("--config", config, "sync", "--once")
    assert code == RegionsUnreachable.exit_code, err
    assert f"btar: could not reach {PRIMARY} (for {', '.join(sorted(hit))}); the rest was " \
        "replicated" in err
    now = statuses(config)
    for name in hit:
        fault = now[name]["primary_fault"]
        assert now[name]["state"] == "primary unreachable", now[name]
        assert (fault["kind"], reason in fault["reason"]) == (kind, True), fault
        assert now[name]["state_line"].startswith("primary unreachable since ")
    assert all(now[name]["state"] == "in sync" for name in spared)
    _, table, _ = run("--config", config, "status")
    assert f"{PRIMARY} (primary): {kind}: " in table
    code, out, _ = run("--config", config, "check")
    assert code == 1, out  # warning: past the (zero) warning threshold, not the critical one
    for name in hit:
        assert f"WARNING: {name}: the primary {PRIMARY} cannot be listed" in out, out
        assert f"{DESTINATION} holds a copy restorable to " in out
        assert f"to fork: btar fork {name} --region {DESTINATION} --latest --into DIR" in out


def test_a_removed_primary_folder(tmp_path: Path) -> None:
    config = demo(tmp_path / "world")
    folder = tmp_path / "world" / "regions" / PRIMARY
    shutil.move(folder, tmp_path / "away")
    assert_primary_outage(config, "missing", "the location folder does not exist")
    shutil.move(tmp_path / "away", folder)
    assert_recovers(config, (*HIT, SPARED))


@pytest.fixture
def denied(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Folders the file system refuses to list or write into (the suite may run as root,
    whom permissions do not stop, so the refusal is injected where the OS would give it)."""
    refused: list[Path] = []
    entries, create = LocalStorage._entries, LocalStorage._create

    def check(path: Path) -> None:
        if any(path == root or path.is_relative_to(root) for root in refused):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    def guarded_entries(self: LocalStorage, folder: Path) -> Any:
        check(folder)
        return entries(self, folder)

    def guarded_create(self: LocalStorage, temp: Path, key: str) -> Any:
        check(temp)
        return create(self, temp, key)

    monkeypatch.setattr(LocalStorage, "_entries", guarded_entries)
    monkeypatch.setattr(LocalStorage, "_create", guarded_create)
    return refused


def test_a_primary_that_denies_access(tmp_path: Path, denied: list[Path]) -> None:
    config = demo(tmp_path / "world")
    denied.append((tmp_path / "world" / "regions" / PRIMARY).resolve())
    assert_primary_outage(config, "denied", "permission denied")
    denied.clear()
    assert_recovers(config, (*HIT, SPARED))


def test_a_removed_destination_folder(tmp_path: Path) -> None:
    config = demo(tmp_path / "world")
    folder = tmp_path / "world" / "regions" / DESTINATION
    shutil.move(folder, tmp_path / "away")
    code, _, err = run("--config", config, "sync", "--once")
    assert code == RegionsUnreachable.exit_code, err
    now = statuses(config)
    for name in HIT:
        assert now[name]["state"] == "paused", now[name]
        assert now[name]["state_reason"].startswith(f"{DESTINATION} "), now[name]
        region = next(r for r in now[name]["regions"] if r["region"] == DESTINATION)
        assert region["fault"]["kind"] == "missing"
    assert now[SPARED]["state"] == "in sync"
    code, out, _ = run("--config", config, "check")
    assert code == 1, out
    assert f"orders: replication to {DESTINATION} paused for" in out
    shutil.move(tmp_path / "away", folder)
    assert_recovers(config, (*HIT, SPARED))


@pytest.mark.integration
def test_a_stopped_s3_endpoint(moto_s3: MotoS3, tmp_path: Path) -> None:
    """moto's server behind a relay: switched off (connections refused), then on again."""
    target = urlparse(moto_s3.endpoint)
    relay = TcpRelay(target.hostname or "127.0.0.1", target.port or 80)
    relay.up()
    try:
        create_demo_buckets(moto_s3)
        config = demo(tmp_path / "world", "--backend", "s3", "--endpoint", relay.url)
        relay.down()
        everyone = (*HIT, SPARED)  # the S3 demo has every service in PRIMARY
        assert_primary_outage(config, "unreachable", "no answer", everyone, ())
        relay.up()
        assert_recovers(config, everyone)
    finally:
        relay.down()

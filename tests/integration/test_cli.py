"""The `btar` command line end to end on the local backend (real folders, real SQLite)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main

BTAR = [sys.executable, "-m", "engine.cli"]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    code, out, _ = run("init", "--demo", str(root))
    assert code == 0, out
    return root / "btar.toml"


@pytest.fixture(scope="module")
def synced(demo: Path) -> Path:
    code, out, err = run("--config", str(demo), "sync", "--once")
    assert code == 0, err
    assert "published" in out
    return demo


@pytest.mark.parametrize("service", ["orders", "billing", "inventory"])
def test_window_json_shows_a_secondary_window_for_every_enabled_service(
        synced: Path, service: str) -> None:
    code, out, _ = run("--config", str(synced), "window", service, "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["service"] == service
    roles = {r["role"]: r for r in doc["regions"]}
    assert set(roles) == {"primary", "secondary"}
    assert roles["secondary"]["start"] is not None
    assert roles["secondary"]["end"] == roles["primary"]["end"]
    assert roles["secondary"]["end"].endswith("Z")


@pytest.mark.parametrize(("service", "region", "rule"), [
    ("sessions", "aws-eu-central-1", "rule 1"),
    ("orders", "google-europe-north1", "rule 2"),
    ("orders", "aws-eu-west-1", "rule 2"),
    ("orders", "aws-eu-central-1", "rule 8"),  # already enabled there
])
def test_refusals_exit_3_with_one_line(demo: Path, service: str, region: str,
                                       rule: str) -> None:
    result = subprocess.run([*BTAR, "--config", str(demo), "enable", service, "--region",
                             region], capture_output=True, text=True, check=False)
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert rule in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_input_exits_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "btar.toml"
    bad.write_text('[regions]\naws-eu-west-1 = "file:///tmp/x"\n[[services]]\nname = "a"\n'
                   'type = "oracle"\nregion = "aws-eu-west-1"\n')
    result = subprocess.run([*BTAR, "--config", str(bad), "status"], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 2
    assert "services[0].type" in result.stderr
    assert str(bad) in result.stderr
    assert "Traceback" not in result.stderr
    missing = subprocess.run([*BTAR, "--config", str(tmp_path / "nope.toml"), "status"],
                             capture_output=True, text=True, check=False)
    assert missing.returncode == 2
    assert "btar init" in missing.stderr


def test_config_from_environment_variable(synced: Path) -> None:
    env = {**os.environ, "BTAR_CONFIG": str(synced)}
    result = subprocess.run([*BTAR, "status", "--json"], capture_output=True, text=True,
                            check=False, env=env)
    assert result.returncode == 0, result.stderr
    names = [s["name"] for s in json.loads(result.stdout)["services"]]
    assert names == ["billing", "inventory", "orders", "sessions"]


def test_usage_errors_exit_2(demo: Path) -> None:
    assert run("--config", str(demo), "frobnicate")[0] == 2
    assert run("--config", str(demo), "enable", "orders")[0] == 2  # --region missing
    code, _, err = run("--config", str(demo), "backups", "nosuch")
    assert code == 2
    assert "unknown service 'nosuch'" in err


def test_status_backups_lag_events(synced: Path) -> None:
    code, out, _ = run("--config", str(synced), "status")
    assert code == 0
    assert "in sync" in out
    code, out, _ = run("--config", str(synced), "backups", "orders", "--region",
                       "aws-eu-central-1", "--json")
    items = json.loads(out)["items"]
    assert code == 0
    assert {i["status"] for i in items} == {"available"}
    assert {i["kind"] for i in items} == {"base", "log"}
    code, out, _ = run("--config", str(synced), "lag", "orders", "--period", "day", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["stats"]["count"] == len(items)
    assert len(report["buckets"]) == 24
    code, out, _ = run("--config", str(synced), "events", "--service", "orders")
    assert code == 0
    assert "enabled" in out
    code, out, _ = run("--config", str(synced), "regions", "orders", "--json")
    offered = json.loads(out)["regions"]
    assert all(r["region"].startswith("aws-") for r in offered)
    assert any(r["region"] == "aws-eu-central-1" and r["configured"] for r in offered)


def test_disable_delete_needs_yes_then_keep_works(tmp_path: Path) -> None:
    code, _, _ = run("init", "--demo", str(tmp_path))
    config = str(tmp_path / "btar.toml")
    assert run("--config", config, "sync", "--once", "inventory")[0] == 0
    code, _, err = run("--config", config, "disable", "inventory", "--delete")
    assert code == 3
    assert "--yes" in err
    code, out, _ = run("--config", config, "disable", "inventory", "--keep")
    assert code == 0
    assert "retained" in out
    _, out, _ = run("--config", config, "status", "--json")
    inventory = next(s for s in json.loads(out)["services"] if s["name"] == "inventory")
    assert inventory["state"] == "disabled"
    assert inventory["state_reason"] == ""  # only a paused or failing service has one
    assert inventory["state_line"] == "disabled"
    assert [r["role"] for r in inventory["regions"]] == ["primary", "retained"]
    code, out, _ = run("--config", config, "disable", "orders", "--delete", "--yes")
    assert code == 0
    assert "deleted" in out
    assert not any((tmp_path / "regions" / "aws-eu-central-1" / "orders").rglob("*.log"))
    assert any((tmp_path / "regions" / "aws-eu-west-1" / "orders").rglob("*.log"))


def test_init_starter_config_never_overwrites(tmp_path: Path) -> None:
    target = str(tmp_path / "btar.toml")
    assert run("--config", target, "init")[0] == 0
    code, _, err = run("--config", target, "init")
    assert code == 2
    assert "already exists" in err


def test_demo_headless_runs_for_a_duration(tmp_path: Path) -> None:
    result = subprocess.run([*BTAR, "demo", "--headless", "--duration", "2", "--interval",
                             "0.5", "--dir", str(tmp_path)], capture_output=True, text=True,
                            check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "orders in sync" in result.stdout or "orders copying" in result.stdout
    assert "window" in result.stdout


def test_a_region_whose_location_cannot_be_used_is_changed_to_with_a_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("init", "--demo", str(tmp_path))[0] == 0
    config = str(tmp_path / "btar.toml")
    spare = tmp_path / "regions" / "aws-eu-north-1"
    assert spare.is_dir()
    spare.rmdir()  # an unmounted volume, say
    code, out, _ = run("--config", config, "change-region", "orders", "--region",
                       "aws-eu-north-1")
    assert code == 0, out
    assert "additional region is now aws-eu-north-1" in out
    warning = capsys.readouterr().err
    assert "warning: aws-eu-north-1 cannot be used now" in warning
    assert "the location folder does not exist" in warning
    spare.mkdir()
    assert run("--config", config, "disable", "inventory", "--keep")[0] == 0
    assert run("--config", config, "enable", "inventory", "--region", "aws-eu-north-1")[0] == 0
    assert "warning" not in capsys.readouterr().err

"""`btar sync --once --strict` and `btar check` on holes: a segment missing in the middle of a
chain and a backup the reader refuses fail the strict sync and are reported by check with
the window they cut; `btar window` names the timeline of each interval."""

from __future__ import annotations

import io
import json
from pathlib import Path

from engine.cli import main


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_holes_fail_a_strict_sync_and_check_reports_them(tmp_path: Path) -> None:
    code, out, _ = run("init", "--demo", str(tmp_path))
    assert code == 0, out
    config = str(tmp_path / "btar.toml")
    primary = tmp_path / "regions" / "aws-eu-west-1"
    [segment] = (primary / "orders" / "log" / "1").glob("0000000005_*.log")
    segment.unlink()
    manifest = sorted((primary / "inventory" / "base").glob("*/manifest.json"))[-1]
    manifest.write_text("{not json")

    code, out, err = run("--config", config, "sync", "--once", "--strict")
    assert code == 1, out + err
    assert "misses segment 1/0000000005 (timeline 1) in the middle of its chain" in out
    assert "no restorable point from" in out
    assert f"base/{manifest.parent.name} at the primary (aws-eu-west-1) cannot be read" in out
    assert run("--config", config, "sync", "--once")[0] == 0  # not strict: reported only

    code, out, _ = run("--config", config, "check", "--json")
    assert code == 2
    checks = {(p["service"], p["check"], p["level"]) for p in json.loads(out)["problems"]}
    assert ("orders", "hole", "critical") in checks
    assert ("inventory", "refused", "warning") in checks

    code, out, _ = run("--config", config, "window", "orders", "--json")
    assert code == 0
    [primary_window, secondary] = json.loads(out)["regions"]
    assert primary_window["role"] == "primary"
    assert len(secondary["intervals"]) == 2  # cut by the hole, resumed at the next backup
    assert {i["timeline"] for i in secondary["intervals"]} == {"1"}
    assert secondary["branches"] == []

"""Packaging and the command line's self-description: the wheel carries its data and runs
the demo from outside the source tree; every command has help with an example; completion."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from engine.cli import build_parser, main
from engine.cli.program import commands

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_wheel_carries_package_data_and_runs_the_demo(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(tmp_path / "dist"), str(ROOT)], check=True,
                   capture_output=True)
    [wheel] = list((tmp_path / "dist").glob("btar-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "engine/region_catalogue.toml" in names
    assert any(n.startswith("btar_tui/") and n.endswith(".tcss") for n in names)
    assert any(n.endswith("entry_points.txt") for n in names)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    # Run from the installed copy only: the source tree is neither the cwd nor on the path.
    env = {**os.environ, "PYTHONPATH": str(target)}
    probe = subprocess.run([sys.executable, "-c", "import engine; print(engine.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert probe.stdout.startswith(str(target))
    demo = subprocess.run([sys.executable, "-m", "engine.cli", "demo", "--headless",
                           "--duration", "3", "--interval", "0.5"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert demo.returncode == 0, demo.stderr
    assert "secondary window" in demo.stdout
    version = subprocess.run([sys.executable, "-m", "engine.cli", "--version"], cwd=tmp_path,
                             env=env, capture_output=True, text=True, check=True)
    assert version.stdout.startswith("btar ")


def test_every_command_has_help_with_an_example() -> None:
    parser = build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    examples = {c.name: c.example for c in commands()}
    assert set(choices) == set(examples)
    for name in choices:
        if name == "simulate":
            continue  # its help is the simulator's own parser
        text = choices[name].format_help()
        assert f"example:\n  {examples[name]}" in text, name


def test_the_fronts_contribute_their_commands_through_entry_points() -> None:
    """tui and demo come from btar_tui, simulate from simulator (that the engine imports
    neither is an import-linter contract in pyproject.toml)."""
    found = {c.name: c for c in commands()}
    assert found["tui"].standalone.__module__ == "btar_tui.cli_commands"  # type: ignore[union-attr]
    assert found["demo"].standalone.__module__ == "btar_tui.cli_commands"  # type: ignore[union-attr]
    assert found["simulate"].own_parser.__module__ == "simulator.cli_commands"  # type: ignore[union-attr]


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_script_is_valid_and_knows_the_commands(shell: str) -> None:
    out = io.StringIO()
    assert main(["completion", shell], out=out) == 0
    script = out.getvalue()
    assert "enable" in script
    assert "--target-time" in script
    if shell == "bash":
        subprocess.run(["bash", "-n"], input=script, text=True, check=True)


def test_lag_csv(tmp_path: Path) -> None:
    out = io.StringIO()
    assert main(["init", "--demo", str(tmp_path)], out=out) == 0
    config = str(tmp_path / "btar.toml")
    assert main(["--config", config, "sync", "--once"], out=io.StringIO()) == 0
    out = io.StringIO()
    assert main(["--config", config, "lag", "orders", "--period", "hour", "--csv"],
                out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("bucket_start,items,p50_seconds")
    assert len(lines) == 13

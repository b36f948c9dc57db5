"""The pytest plugin collects scenario files, one item per expectation, and reports a failing
one with its verdict and the command that replays the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.simulation.builders import FAILING, PASSING, tiny, write


def run_pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", *args],
        cwd=folder, capture_output=True, text=True, check=False, timeout=120)


def test_scenario_files_become_items_with_verdicts_and_replay(tmp_path: Path) -> None:
    write(tmp_path, "", "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    write(tmp_path, tiny(PASSING + FAILING), "mixed.btar.toml")
    write(tmp_path, tiny().replace('log_every = "5m"', "log_every = 0"), "broken.btar.toml")
    result = run_pytest(tmp_path)
    output = result.stdout
    assert result.returncode == 1, output
    assert "PASSED mixed.btar.toml::expect[0] no backup is ever published" in output
    assert "FAILED mixed.btar.toml::expect[1] lag of orders p99 <= 1s" in output
    assert "verdict: p50" in output
    assert "replay: btar simulate " in output
    assert "mixed.btar.toml --seed 5" in output
    assert "invalid scenario:" in output
    assert "broken.btar.toml:" in output
    assert "services[0].schedule.log_every" in output


def test_the_ini_option_names_scenario_folders(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\nbtar_scenarios = regressions\n",
                                         encoding="utf-8")
    folder = tmp_path / "regressions"
    folder.mkdir()
    write(folder, tiny(PASSING), "plain-name.toml")
    write(tmp_path, tiny(PASSING), "elsewhere.toml")  # not a scenario folder: ignored
    result = run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout
    assert "PASSED regressions/plain-name.toml::expect[0]" in result.stdout
    assert "elsewhere.toml" not in result.stdout

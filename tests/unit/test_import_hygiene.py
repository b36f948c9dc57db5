"""The engine must stay importable without the front ends' frameworks: the engine
imports neither textual nor simpy, the simulator no textual."""

from __future__ import annotations

import subprocess
import sys

import pytest

ENGINE_MODULES = ["engine", "engine.api", "engine.cli", "engine.replication", "engine.runtime",
                  "engine.demo", "engine.storage.locations"]


def _loaded_after(import_line: str, watched: list[str]) -> list[str]:
    code = (f"import sys\n{import_line}\n"
            f"print(','.join(m for m in {watched!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    return [m for m in result.stdout.strip().split(",") if m]


@pytest.mark.parametrize("module", ENGINE_MODULES)
def test_engine_imports_neither_textual_nor_simpy(module: str) -> None:
    assert _loaded_after(f"import {module}", ["textual", "simpy"]) == []


def test_engine_does_not_load_cloud_sdks_until_a_location_needs_them() -> None:
    loaded = _loaded_after("import engine.api, engine.cli",
                           ["boto3", "google.cloud.storage", "azure.storage.blob"])
    assert loaded == []


def test_building_the_command_line_loads_no_front_framework() -> None:
    """The fronts' commands are registered without importing textual or simpy."""
    assert _loaded_after("import engine.cli.program; engine.cli.program.build_parser()",
                         ["textual", "simpy"]) == []


def test_simulator_imports_no_textual() -> None:
    assert _loaded_after("import simulator", ["textual"]) == []

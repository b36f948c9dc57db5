"""Front ends act only through the application API: they never reach storage, the catalog
or the replication internals directly. The one list of what the TUI may import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALLOWED_FOR_TUI = {"engine.api", "engine.model", "engine.errors", "engine.lag",
                   "engine.restore", "engine.regions", "engine.demo", "engine.config",
                   "engine.operations", "engine.alerts",
                   # how every front writes durations and sizes
                   "engine.units",
                   # the command-line contract its `btar tui` and `btar demo` register with
                   "engine.cli.commands"}


def engine_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("engine"))
        elif isinstance(node, ast.ImportFrom) and node.module \
                and node.module.startswith("engine"):
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted((ROOT / "btar_tui").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_tui_uses_only_the_application_api(path: Path) -> None:
    forbidden = engine_imports(path) - ALLOWED_FOR_TUI
    assert not forbidden, f"{path.name} imports {sorted(forbidden)}"

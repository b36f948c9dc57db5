"""The simulator decides nothing about backups: the engine does. Break or spy on an engine
decision and the simulator's results follow it; break a rule and the scenarios catch it."""

from __future__ import annotations

import ast
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

import engine.api
import engine.replication
from engine.effects import CopyResult, Effect
from engine.replication import PassOutcome
from simulator.runner import run_scenario
from simulator.scenario import load_scenario
from tests.simulation.builders import PASSING, ROOT, SCENARIOS, tiny, write

CORRUPTION = SCENARIOS / "corruption-caught.btar.toml"


def accept_everything(result: CopyResult, expected_sha256: str) -> tuple[bool, str]:
    return result.ok, "accepted without looking"


def test_a_verify_that_accepts_everything_fails_the_corruption_scenario(
        monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = load_scenario(CORRUPTION)
    assert run_scenario(loaded).ok
    monkeypatch.setattr(engine.replication, "verify", accept_everything)
    broken = run_scenario(loaded)
    verdicts = {v.label: v for v in broken.verdicts}
    unverified = verdicts["no backup is ever published with an unverified object"]
    assert not unverified.holds
    assert "unverified: stored bytes hash" in unverified.detail
    probed = verdicts["every window claims only points its region can restore (probed)"]
    assert not probed.holds
    assert "is corrupt in aws-eu-central-1" in probed.detail
    assert broken.replay == f"btar simulate {CORRUPTION} --seed 8"


def test_every_pass_is_the_engines_replication_pass(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    calls: list[str] = []
    real = engine.replication.replication_pass

    def spy(*args: Any, **kwargs: Any) -> Generator[Effect, Any, PassOutcome]:
        calls.append(args[2].name)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine.replication, "replication_pass", spy)
    result = run_scenario(load_scenario(write(tmp_path, tiny(PASSING))))
    passes = [e for e in result.journal.entries if e["op"] == "pass" and e["phase"] == "ok"]
    assert calls
    assert len(calls) == len(passes)
    assert result.ok


def test_an_engine_that_publishes_nothing_leaves_the_secondary_empty(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def idle(*args: Any, **kwargs: Any) -> Generator[Effect, Any, PassOutcome]:
        return PassOutcome(args[2].name)
        yield  # a generator that yields nothing

    monkeypatch.setattr(engine.replication, "replication_pass", idle)
    text = tiny(PASSING + '\n[[expect]]\nkind = "lag"\nservice = "orders"\n'
                          'p99_at_most = "10m"\n')
    result = run_scenario(load_scenario(write(tmp_path, text)))
    assert not [e for e in result.journal.entries if e["op"] in ("copy", "publish")]
    lag = result.verdicts[1]
    assert not lag.holds
    assert "nothing of orders was published" in lag.detail


def test_forks_are_planned_by_the_application_api(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    planned: list[tuple[str, str]] = []
    real = engine.api.Btar.plan_fork

    def spy(self: engine.api.Btar, name: str, region: str, *args: Any,
            **kwargs: Any) -> Any:
        planned.append((name, region))
        return real(self, name, region, *args, **kwargs)

    monkeypatch.setattr(engine.api.Btar, "plan_fork", spy)
    text = tiny('[[timeline]]\nkind = "fork"\nname = "f"\nservice = "orders"\nat = "1h"\n')
    result = run_scenario(load_scenario(write(tmp_path, text)))
    assert planned == [("orders", "aws-eu-central-1")]
    assert [e["phase"] for e in result.journal.entries if e["op"] == "fork"] == \
        ["invoke", "planned", "ok"]


def _calls(tree: ast.AST) -> set[str]:
    return {node.func.attr for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)}


def test_the_simulator_never_writes_decisions_itself() -> None:
    """The catalog's writers and the rules belong to the engine: no simulator module calls
    them, and the replicator and the forks go through engine.replication and engine.api."""
    sources = {path.name: path.read_text(encoding="utf-8")
               for path in (ROOT / "simulator").glob("*.py")}
    writers = {"publish_item", "publish_items", "set_item_status", "record_copy",
               "record_copies", "add_item", "add_items", "add_missing", "set_location",
               "retain_region", "forget_region", "remove_location", "reactivate_region",
               "check_target_in_window", "check_deletion_safe", "check_enable", "check_change"}
    for name, source in sources.items():
        tree = ast.parse(source)
        assert not (_calls(tree) & writers), name
        defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert not defined & {"verify", "replication_pass", "copy_to_region", "plan_restore",
                              "window_of", "discover_primary"}, name
    assert "replication.replication_pass(" in sources["replicator.py"]
    assert "app.plan_fork(" in sources["actions.py"]
    assert "execute_copy(" in sources["interpreter.py"]
    for verb in ("enable", "change_region", "disable"):
        assert f"app.{verb}(" in sources["actions.py"]

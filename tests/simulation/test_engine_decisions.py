"""The simulator decides nothing about backups: the engine does. Break or spy on an engine
decision and the simulator's results follow it; break a rule and the scenarios catch it."""

from __future__ import annotations

import ast
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

import engine.api
import engine.scheduler
from engine.effects import CopyResult, Effect
from engine.replication import PassOutcome
from engine.scheduler import Hooks
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
    # The scheduler is where copies are judged.
    monkeypatch.setattr(engine.scheduler, "verify", accept_everything)
    broken = run_scenario(loaded)
    verdicts = {v.label: v for v in broken.verdicts}
    unverified = verdicts["no backup is ever published with an unverified object"]
    assert not unverified.holds
    assert "unverified: stored bytes hash" in unverified.detail
    probed = verdicts["every window claims only points its region can restore (probed)"]
    assert not probed.holds
    assert "is corrupt in aws-eu-central-1" in probed.detail
    assert broken.replay == f"btar simulate {CORRUPTION} --seed 8"


def test_every_pass_is_a_cycle_of_the_engines_replication(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    """The replicator runs the procedure `btar sync` runs (Btar.replication, continuous), and
    every pass and publication it journals is one the engine's scheduler reported."""
    calls: list[dict[str, Any]] = []
    cycles: list[str] = []
    published: list[tuple[str, str, str]] = []
    real = engine.api.Btar.replication

    def spy(self: engine.api.Btar, *args: Any,
            **kwargs: Any) -> Generator[Effect, Any, list[PassOutcome]]:
        calls.append({"args": args, **kwargs})
        hooks: Hooks = kwargs["hooks"]
        on_cycle, on_publish = hooks.on_cycle, hooks.on_publish
        assert on_cycle is not None
        assert on_publish is not None

        def cycle(outcome: PassOutcome) -> None:
            cycles.append(outcome.service)
            on_cycle(outcome)

        def publish(service: str, region: str, item: str, *rest: Any) -> None:
            published.append((service, region, item))
            on_publish(service, region, item, *rest)

        kwargs["hooks"] = Hooks(on_cycle=cycle, on_publish=publish)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(engine.api.Btar, "replication", spy)
    result = run_scenario(load_scenario(write(tmp_path, tiny(PASSING))))
    entries = result.journal.entries
    passes = [e["service"] for e in entries if e["op"] == "pass" and e["phase"] == "ok"]
    publications = [(e["service"], e["region"], e["item"]) for e in entries
                    if e["op"] == "publish" and e["phase"] == "ok"]
    starts = [e for e in entries if e["op"] == "replicator" and e["phase"] == "start"]
    assert calls
    assert len(calls) == len(starts)
    assert all(call["once"] is False and not call["args"] for call in calls)
    assert passes
    assert cycles == passes
    assert publications
    assert published == publications
    assert result.ok


def test_an_engine_that_publishes_nothing_leaves_the_secondary_empty(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def idle(*args: Any, **kwargs: Any) -> Generator[Effect, Any, list[PassOutcome]]:
        return []
        yield  # a generator that yields nothing

    monkeypatch.setattr(engine.api.Btar, "replication", idle)
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
    them, and the replicator and the forks go through engine.api (the replicator runs
    Btar.replication, the engine's scheduler)."""
    sources = {path.name: path.read_text(encoding="utf-8")
               for path in (ROOT / "simulator").glob("*.py")}
    writers = {"publish_item", "publish_items", "set_item_status", "record_copy",
               "record_copies", "add_item", "add_items", "add_missing", "mark_copying",
               "set_copy_mark", "recheck_copies", "save_listing_cursors", "withdraw_items",
               "expire_items", "set_location",
               "retain_region", "forget_region", "remove_location", "reactivate_region",
               "check_target_in_window", "check_deletion_safe", "check_enable", "check_change"}
    for name, source in sources.items():
        tree = ast.parse(source)
        assert not (_calls(tree) & writers), name
        defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert not defined & {"verify", "replicate", "retire_previous", "apply_retention",
                              "plan_restore", "window_of", "discover_primary"}, name
        assert "Scheduler" not in {n.name for n in ast.walk(tree)
                                   if isinstance(n, ast.ClassDef)}, name
    assert "app.replication(" in sources["replicator.py"]
    assert "app.plan_fork(" in sources["actions.py"]
    assert "execute_copy(" in sources["interpreter.py"]
    for verb in ("enable", "change_region", "disable"):
        assert f"app.{verb}(" in sources["actions.py"]

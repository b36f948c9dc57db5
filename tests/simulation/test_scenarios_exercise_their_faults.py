"""The project's scenarios really go through what they claim: their expectations could pass
for the wrong reason if a fault never struck where it was meant to."""

from __future__ import annotations

from collections import Counter

import pytest

from simulator.runner import run_scenario
from simulator.scenario import load_scenario
from tests.simulation.builders import SCENARIOS


def journal_counts(name: str) -> tuple[Counter[tuple[str, str]], list[dict[str, object]]]:
    result = run_scenario(load_scenario(SCENARIOS / f"{name}.btar.toml"))
    assert result.ok
    entries = result.journal.entries
    return Counter((e["op"], e["phase"]) for e in entries), entries


def test_the_crash_strikes_in_the_middle_of_a_base_backup_copy() -> None:
    counts, entries = journal_counts("replicator-crash-mid-backup")
    assert counts[("replicator", "crash")] == 1
    assert counts[("replicator", "start")] == 2  # and a new one resumes
    cancelled = [e["key"] for e in entries if e["op"] == "copy" and e["phase"] == "cancel"]
    assert cancelled
    assert any("/base/" in str(key) for key in cancelled)


@pytest.mark.parametrize(("name", "kind"), [("throttling-storm", "throttled"),
                                            ("secondary-long-outage", "unreachable"),
                                            ("fork-after-secondary-end", "unreachable")])
def test_copies_fail_the_way_the_fault_says(name: str, kind: str) -> None:
    _, entries = journal_counts(name)
    kinds = {e["error_kind"] for e in entries if e["op"] == "copy" and e["phase"] == "fail"}
    assert kinds == {kind}


def test_corrupted_copies_land_and_are_never_published() -> None:
    _, entries = journal_counts("wal-gap-repair")
    bad = {e["key"] for e in entries if e["op"] == "copy" and e["phase"] == "ok"
           and e["stored_sha256"] != e["source_sha256"]}
    assert len(bad) == 1
    [key] = bad
    assert "/log/1/0000000013_" in str(key)
    publishes = [e for e in entries if e["op"] == "publish" and e["item"] == "log/1/0000000013"]
    assert len(publishes) == 1
    assert float(str(publishes[0]["published_at"])) >= 6300  # after the corruption ended

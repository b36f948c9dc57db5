"""The project's scenarios really go through what they claim: their expectations could pass
for the wrong reason if a fault never struck where it was meant to."""

from __future__ import annotations

from collections import Counter
from typing import Any

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


@pytest.mark.parametrize(("name", "kind", "region"), [
    ("throttling-storm", "throttled", None),
    ("secondary-long-outage", "unreachable", "aws-eu-central-1"),
    ("fork-after-secondary-end", "unreachable", "aws-eu-central-1")])
def test_copies_fail_the_way_the_fault_says(name: str, kind: str, region: str | None) -> None:
    _, entries = journal_counts(name)
    kinds = {e["error_kind"] for e in entries if e["op"] == "copy" and e["phase"] == "fail"}
    if region is None:
        assert kinds == {kind}
        return
    # An outage of a destination strikes either copies into it or the engine's look at it
    # (a listing may probe a destination that no copy reached since the previous one, which
    # then pauses before any copy fails).
    looks = [e for e in entries if e["op"] == "list" and e["phase"] == "fail"
             and e["region"] == region and "injected outage" in str(e["error"])]
    assert kinds == {kind} or (not kinds and looks)


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


def test_both_outages_strike_and_status_goes_through_every_state() -> None:
    counts, entries = journal_counts("outage-states")
    assert counts[("fault", "start")] == counts[("fault", "end")] == 2
    passes = [e for e in entries if e["op"] == "pass"]
    assert any(e["primary_error"] for e in passes)
    assert any(e["paused"] for e in passes)
    shown: list[dict[str, Any]] = [e["services"]["orders"]  # type: ignore[index]
                                   for e in entries if e["op"] == "snapshot"]
    order: list[str] = []
    for status in shown:
        state = str(status["state"])
        if not order or order[-1] != state:
            order.append(state)
    assert order == ["disabled", "waiting for first sync", "in sync", "primary unreachable",
                     "in sync", "paused", "in sync"]
    critical = [p for status in shown for p in status["problems"]
                if p["check"] == "primary" and p["level"] == "critical"]
    assert critical
    assert all("to fork: btar fork orders --region aws-eu-central-1 --latest --into DIR"
               in p["message"] for p in critical)

"""A run is keyed by (seed, scenario file): the same pair gives the same journal, byte for
byte, and so do the report files."""

from __future__ import annotations

from pathlib import Path

from simulator.report import write_report
from simulator.runner import run_scenario
from simulator.scenario import load_scenario
from tests.simulation.builders import PASSING, tiny, write

#: faults that draw random numbers (throttling, link failures, a share of corruptions) and a
#: crash, so that determinism is tested where it is hard
RANDOM_FAULTS = """
[[timeline]]
kind = "throttle"
region = "aws-eu-west-1"
rate = 0.5
at = "20m"
until = "50m"

[[timeline]]
kind = "link_degrade"
between = ["aws-eu-west-1", "aws-eu-central-1"]
failure_rate = 0.4
at = "30m"
until = "1h"

[[timeline]]
kind = "corrupt"
region = "aws-eu-central-1"
share = 0.5
at = "40m"
until = "1h10m"

[[timeline]]
kind = "replicator_crash"
at = "1h5m"
restart_after = "3m"

[[timeline]]
kind = "fork"
name = "f"
at = "1h30m"
service = "orders"
""" + PASSING + """
[[expect]]
kind = "windows_restorable"
"""


def test_same_seed_and_file_give_a_byte_identical_journal(tmp_path: Path) -> None:
    loaded = load_scenario(write(tmp_path, tiny(RANDOM_FAULTS)))
    first = run_scenario(loaded, seed=42)
    second = run_scenario(loaded, seed=42)
    assert first.journal.text() == second.journal.text()
    assert first.events == second.events
    kinds = {(e["op"], e["phase"]) for e in first.journal.entries}
    # The faults really fired, so the equality above covered random draws.
    assert {("copy", "fail"), ("list", "fail"), ("replicator", "crash")} <= kinds


def test_the_path_does_not_matter_only_the_bytes(tmp_path: Path) -> None:
    text = tiny(RANDOM_FAULTS)
    a = run_scenario(load_scenario(write(tmp_path, text, "a.btar.toml")), seed=3)
    b = run_scenario(load_scenario(write(tmp_path, text, "b.btar.toml")), seed=3)
    assert a.journal.text() == b.journal.text()


def test_another_seed_gives_another_run(tmp_path: Path) -> None:
    loaded = load_scenario(write(tmp_path, tiny(RANDOM_FAULTS)))
    assert run_scenario(loaded, seed=1).journal.text() != \
        run_scenario(loaded, seed=2).journal.text()


def test_report_files_are_identical_across_replays(tmp_path: Path) -> None:
    loaded = load_scenario(write(tmp_path, tiny(RANDOM_FAULTS)))
    for name in ("one", "two"):
        write_report(run_scenario(loaded, seed=9), tmp_path / name)
    for file in ("journal.jsonl", "plot.svg", "summary.json", "report.html"):
        assert (tmp_path / "one" / file).read_bytes() == (tmp_path / "two" / file).read_bytes()
    svg = (tmp_path / "one" / "plot.svg").read_text()
    assert svg.startswith("<svg")
    assert "<polyline" in svg
    assert "<polygon" in svg

"""`btar simulate`: exit 0 when every expectation holds, 4 when one fails, 2 when a scenario is
invalid; a failing run prints the command that replays it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

import engine.scheduler
from engine.catalog import Catalog
from engine.cli import main as btar_main
from engine.effects import CopyResult
from simulator.cli import main
from tests.simulation.builders import FAILING, PASSING, tiny, write


def simulate(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_all_expectations_hold_exit_0(tmp_path: Path) -> None:
    path = write(tmp_path, tiny(PASSING))
    code, out, _ = simulate(str(path))
    assert code == 0
    assert "PASS  expect[0] no backup is ever published with an unverified object" in out
    assert "events simulated, virtual time 02:00:00, wall time" in out
    assert "replay:" not in out


def test_a_failing_expectation_exits_4_and_prints_the_replay_command(tmp_path: Path) -> None:
    path = write(tmp_path, tiny(PASSING + FAILING))
    code, out, _ = simulate(str(path), "--seed", "17")
    assert code == 4
    assert "FAIL  expect[1] lag of orders p99 <= 1s: p50" in out
    assert f"replay: btar simulate {path} --seed 17" in out


def test_a_full_catalog_stops_the_run_with_one_sentence(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's in-memory limit (1 GiB) is the run's size, not an engine bug: no traceback."""
    made = Catalog.in_memory

    def nearly_full() -> Catalog:
        catalog = made()
        pages = catalog.conn.execute("PRAGMA page_count").fetchone()[0]
        catalog.conn.execute(f"PRAGMA max_page_count = {pages + 8}")
        return catalog

    monkeypatch.setattr(Catalog, "in_memory", staticmethod(nearly_full))
    code, out, _ = simulate(str(write(tmp_path, tiny(PASSING))))
    assert code == 4
    assert "CRASH the run raised:\n    the simulated catalog is full: SQLite holds at most " \
        "1024 MiB in memory; replay fewer services or a shorter duration per scenario" in out
    assert "Traceback" not in out


def test_an_invalid_scenario_exits_2_and_runs_nothing(tmp_path: Path) -> None:
    good = write(tmp_path, tiny(PASSING), "good.btar.toml")
    bad = write(tmp_path, tiny(PASSING).replace('bandwidth = "100MB/s"', "bandwidth = -1"),
                "bad.btar.toml")
    code, out, err = simulate(str(good), str(bad))
    assert code == 2
    assert out == ""
    line = bad.read_text().splitlines().index("bandwidth = -1") + 1
    assert f"{bad}:{line}: links[0].bandwidth: expected a rate" in err


def test_usage_errors_and_help(tmp_path: Path) -> None:
    assert simulate()[0] == 2
    assert simulate("--seed", "x", "f.btar.toml")[0] == 2
    code, out, _ = simulate("--help")
    assert code == 0
    assert "usage: btar simulate" in out
    assert "--swarm N" in out
    assert simulate(str(tmp_path / "missing.btar.toml"))[0] == 2


def test_json_and_report(tmp_path: Path) -> None:
    path = write(tmp_path, tiny(PASSING + FAILING))
    code, out, _ = simulate(str(path), "--json", "--report", str(tmp_path / "report"))
    assert code == 4
    document = json.loads(out)
    [run] = document["runs"]
    assert document["ok"] is False
    assert run["seed"] == 5
    assert [v["holds"] for v in run["verdicts"]] == [True, False]
    assert run["replay"] == f"btar simulate {path} --seed 5"
    folder = tmp_path / "report" / "case"
    assert sorted(p.name for p in folder.iterdir()) == \
        ["journal.jsonl", "plot.svg", "report.html", "summary.json"]
    first = json.loads((folder / "journal.jsonl").read_text().splitlines()[0])
    assert first["op"] == "run"
    assert first["seed"] == 5
    assert "file_sha256" in first


OUTAGE = """
[[timeline]]
kind = "region_outage"
region = "aws-eu-west-1"
at = "30m30s"
until = "1h0m30s"
"""


def test_the_output_and_the_report_show_what_status_showed(tmp_path: Path) -> None:
    path = write(tmp_path, tiny(OUTAGE + PASSING))
    code, out, _ = simulate(str(path), "--report", str(tmp_path / "report"))
    assert code == 0, out
    lines = out.splitlines()
    at = lines.index("  status of orders (btar status at each sample):")
    down = next(line for line in lines[at:] if " primary unreachable;" in line)
    # The span, the primary's fault (class and since), the staleness, the check's problems.
    assert down.startswith("    T+00:31:")
    assert "; primary unreachable since T+00:31:" in down
    assert "; staleness up to 00:" in down
    assert "check: primary warning T+00:3" in down
    assert lines[-2].startswith("    T+01:01:15..T+02:00:00 in sync; staleness up to 60s")
    page = (tmp_path / "report" / "case" / "report.html").read_text()
    assert "<h2>Status over time" in page
    assert "<td>primary unreachable</td><td>unreachable since T+00:31:" in page
    assert "state shown by btar status" in (tmp_path / "report" / "case" / "plot.svg").read_text()
    summary = json.loads((tmp_path / "report" / "case" / "summary.json").read_text())
    states = [span["state"] for span in summary["states"]["orders"]]
    assert "primary unreachable" in states
    assert states[-1] == "in sync"


def test_through_the_btar_command(tmp_path: Path) -> None:
    path = write(tmp_path, tiny(PASSING))
    out = io.StringIO()
    assert btar_main(["simulate", str(path), "--seed", "3"], out, io.StringIO()) == 0
    assert "(seed 3," in out.getvalue()
    # A leading option reaches the simulator after "--" (see the simulator's report).
    out = io.StringIO()
    assert btar_main(["simulate", "--", "--help"], out, io.StringIO()) == 0
    assert "usage: btar simulate" in out.getvalue()


def test_swarm_passes_with_the_real_engine(tmp_path: Path) -> None:
    code, out, _ = simulate("--swarm", "2", "--seed", "1", "--report", str(tmp_path))
    assert code == 0, out
    assert "swarm seed 1: 2 of 2 runs hold every invariant" in out
    assert not list(tmp_path.iterdir())


def test_swarm_catches_a_broken_verify_and_writes_a_regression_scenario(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def accept(result: CopyResult, expected: str) -> tuple[bool, str]:
        return result.ok, "accepted"

    monkeypatch.setattr(engine.scheduler, "verify", accept)  # where copies are judged
    code, out, _ = simulate("--swarm", "2", "--seed", "1", "--report", str(tmp_path))
    assert code == 4
    written = sorted(tmp_path.glob("swarm-1-*.btar.toml"))
    assert written
    replay = next(line.split("replay: ", 1)[1] for line in out.splitlines()
                  if "replay: " in line)
    assert replay.startswith(f"btar simulate {written[0]} --seed ")
    # The written file replays the failure exactly.
    code, again, _ = simulate(*replay.split()[2:])
    assert code == 4
    assert "FAIL  expect[0] no backup is ever published" in again

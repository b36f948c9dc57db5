"""pytest plugin (entry point ``btar``): scenario files become test items.

Every ``*.btar.toml`` file pytest meets, and every ``*.toml`` file inside a folder named by the
ini option ``btar_scenarios``, is collected; each of its expectations is one item. The scenario
runs once, on its first item; a failing item reports the verdict and the command that replays
the run. An invalid scenario is one failing item that lists its problems (file, line, key).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulator.expectations import Verdict, label
from simulator.runner import RunResult, run_scenario
from simulator.scenario import LoadedScenario, ScenarioError, load_scenario
from simulator.scenario_files import SUFFIX


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("btar_scenarios", type="paths", default=[],
                  help="folders whose *.toml files are btar scenarios (besides *.btar.toml "
                       "files anywhere)")


def _in_scenario_folder(config: pytest.Config, file_path: Path) -> bool:
    folders = config.getini("btar_scenarios")
    resolved = file_path.resolve()
    return any(Path(folder).resolve() in resolved.parents for folder in folders)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name.endswith(SUFFIX) or (
            file_path.suffix == ".toml" and _in_scenario_folder(parent.config, file_path)):
        scenario: ScenarioFile = ScenarioFile.from_parent(parent, path=file_path)
        return scenario
    return None


class ScenarioFailed(Exception):
    """An expectation did not hold (or the scenario is invalid, or the run crashed)."""


class ScenarioFile(pytest.File):
    """One scenario file; runs once for all its expectations."""

    loaded: LoadedScenario | None = None
    _result: RunResult | None = None

    def collect(self) -> Iterator[pytest.Item]:
        try:
            self.loaded = load_scenario(self.path)
        except ScenarioError as error:
            yield InvalidScenarioItem.from_parent(self, name="(scenario)", problems=error)
            return
        for index, expectation in enumerate(self.loaded.scenario.expect):
            yield ExpectationItem.from_parent(
                self, name=f"expect[{index}] {label(expectation)}", index=index)

    def result(self) -> RunResult:
        if self._result is None:
            assert self.loaded is not None
            self._result = run_scenario(self.loaded)
        return self._result


class ExpectationItem(pytest.Item):
    def __init__(self, *, index: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.index = index

    @property
    def scenario_file(self) -> ScenarioFile:
        assert isinstance(self.parent, ScenarioFile)
        return self.parent

    def runtest(self) -> None:
        result = self.scenario_file.result()
        if result.crashed:
            raise ScenarioFailed(f"the run crashed:\n{result.crashed}\nreplay: {result.replay}")
        verdict: Verdict = result.verdicts[self.index]
        if not verdict.holds:
            raise ScenarioFailed(f"{verdict.label}\n  verdict: {verdict.detail}\n"
                                 f"  replay: {result.replay}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        loaded = self.scenario_file.loaded
        line = loaded.line("expect", self.index) if loaded else 1
        return self.path, line - 1, self.name


class InvalidScenarioItem(pytest.Item):
    def __init__(self, *, problems: ScenarioError, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.problems = problems

    def runtest(self) -> None:
        raise ScenarioFailed("invalid scenario:\n" + "\n".join(self.problems.lines()))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        return str(excinfo.value)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, "invalid scenario"

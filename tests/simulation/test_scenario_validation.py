"""Scenario files: every problem names the file, the line and the dotted key, and says what
is expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.scenario import ScenarioError, load_scenario
from simulator.tomllines import key_lines
from simulator.units import parse_duration, parse_moment, parse_rate, parse_size
from tests.simulation.builders import SCENARIOS, tiny, write


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert caught.value.path == str(path)
    return caught.value.lines()


def line_number(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_every_project_scenario_is_valid() -> None:
    files = sorted(SCENARIOS.glob("*.btar.toml"))
    assert len(files) >= 10
    for path in files:
        assert load_scenario(path).scenario.expect, path


def test_nested_value_of_the_wrong_kind_names_line_and_dotted_key(tmp_path: Path) -> None:
    text = tiny().replace('log_every = "5m"', 'log_every = "5 minutes"')
    [problem] = problems_of(tmp_path, text)
    line = line_number(text, "log_every")
    assert problem.startswith(f"{tmp_path / 'case.btar.toml'}:{line}: "
                              "services[0].schedule.log_every: ")
    assert 'expected a duration such as "90s"' in problem
    assert "'5 minutes'" in problem


def test_missing_key_is_reported_at_its_table(tmp_path: Path) -> None:
    text = tiny('[[timeline]]\nkind = "region_outage"\nat = "1h"\n')
    [problem] = problems_of(tmp_path, text)
    assert f":{line_number(text, '[[timeline]]')}: timeline[0].region: required key is " \
           "missing" in problem


def test_unknown_key_and_unknown_kind(tmp_path: Path) -> None:
    text = tiny('[[timeline]]\nkind = "meteor"\nat = "1h"\n\n'
                '[[expect]]\nkind = "lag"\nservice = "orders"\np99_at_mots = "5m"\n')
    problems = problems_of(tmp_path, text)
    assert any(f":{line_number(text, 'meteor') - 1}: timeline[0]: unknown kind 'meteor'; "
               "expected one of: change_region, corrupt," in p for p in problems)
    assert any(f":{line_number(text, 'p99_at_mots')}: expect[0].p99_at_mots: unknown key"
               in p for p in problems)


def test_a_value_inside_a_union_member_names_its_key_without_the_tag(tmp_path: Path) -> None:
    text = tiny('[[timeline]]\nkind = "throttle"\nregion = "aws-eu-west-1"\nat = "1h"\n'
                "rate = 1.5\n")
    [problem] = problems_of(tmp_path, text)
    assert f":{line_number(text, 'rate = 1.5')}: timeline[0].rate: " in problem
    assert "less than or equal to 1" in problem


def test_toml_syntax_error_names_its_line(tmp_path: Path) -> None:
    text = tiny().replace('name = "tiny"', 'name = "tiny')
    [problem] = problems_of(tmp_path, text)
    assert f":{line_number(text, 'name = ')}: (syntax): not valid TOML" in problem


def test_schema_version_is_required_and_checked(tmp_path: Path) -> None:
    [problem] = problems_of(tmp_path, tiny().replace("schema = 1", "schema = 2"))
    assert ":1: schema: unsupported schema version 2; this btar reads schema = 1" in problem
    [problem] = problems_of(tmp_path, tiny().replace("schema = 1\n", ""))
    assert "schema: missing" in problem


def test_references_are_checked_with_their_lines(tmp_path: Path) -> None:
    text = tiny('[[timeline]]\nkind = "region_outage"\nregion = "aws-eu-west-9"\nat = "1h"\n\n'
                '[[timeline]]\nkind = "fork"\nname = "f"\nservice = "orders"\nat = "9h"\n\n'
                '[[expect]]\nkind = "rto"\nfork = "nope"\nat_most = "1m"\n')
    problems = problems_of(tmp_path, text)
    assert any(f":{line_number(text, 'aws-eu-west-9')}: timeline[0].region: unknown region "
               "'aws-eu-west-9'; declared: aws-eu-west-1, aws-eu-central-1" in p
               for p in problems)
    late = line_number(text, 'at = "9h"')
    assert any(f":{late}: timeline[1].at: outside the run" in p for p in problems)
    assert any(f":{line_number(text, 'nope')}: expect[0].fork: no fork event named 'nope'" in p
               for p in problems)


def test_a_region_needs_a_link_and_must_exist_in_the_catalogue(tmp_path: Path) -> None:
    text = tiny().replace('between = ["aws-eu-west-1", "aws-eu-central-1"]',
                          'between = ["aws-eu-west-1", "aws-eu-west-1"]')
    problems = problems_of(tmp_path, text)
    assert any("services[0].additional_region: no link between aws-eu-west-1 and "
               "aws-eu-central-1" in p for p in problems)
    text = tiny().replace('id = "aws-eu-central-1"', 'id = "aws-mars-1"')
    assert any("regions[1].id: unknown region" in p for p in problems_of(tmp_path, text))


def test_key_lines_follow_arrays_of_tables_and_inline_tables() -> None:
    text = ('a = 1\n[[s]]\nn = "x"\n[s.sub]\nk = 2\n[[s]]\nn = "y"\nt = { p = 1, q = [1,\n 2] }'
            '\nm = """\nfake = 1\n"""\n')
    lines = key_lines(text)
    assert lines[("a",)] == 1
    assert lines[("s", 0, "sub", "k")] == 5
    assert lines[("s", 1, "n")] == 7
    assert lines[("s", 1, "t", "q", 1)] == 9
    assert ("fake",) not in lines
    assert ("s", 1, "fake") not in lines


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("1h30m", 5400), ("250ms", 0.25),
                                               ("2d", 172800), (12, 12.0)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_sizes_rates_and_moments() -> None:
    assert parse_size("16MiB") == 16 * 2**20
    assert parse_size("2GB") == 2 * 10**9
    assert parse_rate("50MB/s") == 50e6
    assert parse_moment("2h") == 7200.0
    with pytest.raises(ValueError, match="has no zone"):
        parse_moment("2026-11-02T03:00:00")
    with pytest.raises(ValueError, match="a rate such as"):
        parse_rate("50MB")


STATE = '\n[[expect]]\nkind = "state"\nservice = "orders"\n'


@pytest.mark.parametrize(("fields", "key", "message"), [
    ('state = "in-sync"\n', "state", "unknown state 'in-sync'; a state starts with one of: "
                                     "unsupported, disabled, primary unreachable"),
    ('state = "in sync: yes"\n', "state", "unknown state 'in sync: yes'"),
    # only paused and failing come with a reason
    ('state = "primary unreachable: x"\n', "state", "unknown state 'primary unreachable: x'"),
    ('state = "paused:x"\n', "state", "unknown state 'paused:x'"),
    ('primary_fault = "down"\n', "primary_fault",
     "unknown fault 'down'; expected none or one of: unreachable, missing, denied, unusable, "
     "throttled, error"),
    ('destination_fault = 3\n', "destination_fault", "Input should be a valid string"),
    ('check = "pager"\n', "check", "unknown check 'pager'; expected one of: lag, window, "
                                   "paused, copies, primary"),
    ('check = "primary"\nlevel = "warn"\n', "level", "Input should be 'ok', 'warning' or "
                                                     "'critical'"),
    ('state = "paused"\nlevel = "ok"\n', "level", "a level needs the check it grades: give "
                                                  "check"),
    ('state = "paused"\nwithin = "soon"\n', "within", 'expected a duration such as "90s"'),
    ('state = "paused"\nfrom = "1h"\nto = "30m"\n', "to", "must be after from"),
    ('state = "paused"\nfrom = "1h"\nto = "1h30m"\nwithin = "31m"\n', "within",
     "longer than from..to (1800s): nothing would be judged"),
    ('state = "paused"\nfrom = "3h"\n', "from", "outside the run: 10800s after the start"),
    ('state = "paused"\nuntil = "1h"\n', "until", "unknown key"),
])
def test_a_state_expectation_is_validated(tmp_path: Path, fields: str, key: str,
                                          message: str) -> None:
    text = tiny(STATE + fields)
    [problem] = problems_of(tmp_path, text)
    written = fields.splitlines()[-1] if key in fields.splitlines()[-1] else \
        next(line for line in fields.splitlines() if line.startswith(key))
    assert f":{line_number(text, written)}: expect[0].{key}: {message}" in problem, problem


def test_a_state_expectation_needs_something_to_expect(tmp_path: Path) -> None:
    text = tiny(STATE + 'from = "1h"\n')
    [problem] = problems_of(tmp_path, text)
    table = line_number(text, "[[expect]]")
    assert f":{table}: expect[0]: nothing to expect: give state, primary_fault, " \
           "destination_fault or check" in problem


def test_a_state_expectation_takes_a_state_prefix_and_fault_classes(tmp_path: Path) -> None:
    text = tiny(STATE + 'from = "1h"\nwithin = "2m"\nto = "2h"\nstate = "paused: aws-eu"\n'
                'primary_fault = "none"\ndestination_fault = "unreachable"\n'
                'check = "paused"\nlevel = "warning"\n' + STATE + 'state = "primary"\n')
    expect = load_scenario(write(tmp_path, text)).scenario.expect
    assert [e.state for e in expect] == ["paused: aws-eu", "primary"]  # type: ignore[union-attr]


def test_first_log_sets_when_the_first_segment_ends(tmp_path: Path) -> None:
    from simulator.runner import run_scenario

    text = tiny(duration="20m").replace('log_every = "5m"', 'log_every = "5m"\nfirst_log = "90s"')
    result = run_scenario(load_scenario(write(tmp_path, text)))
    ends = [e["end"] for e in result.journal.entries
            if e["op"] == "produce" and e["kind"] == "log"]
    assert ends == ["2026-11-02T00:01:30Z", "2026-11-02T00:06:30Z", "2026-11-02T00:11:30Z",
                    "2026-11-02T00:16:30Z"]
    zero = tiny().replace('log_every = "5m"', 'log_every = "5m"\nfirst_log = "0s"')
    assert problems_of(tmp_path, zero) == [
        f"{tmp_path / 'case.btar.toml'}:29: services[0].schedule.first_log: Input should be "
        "greater than 0; got '0s'"]

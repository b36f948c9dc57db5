"""The swarm's random scenarios are valid scenario files, reproducible from their seed, with
faults switched on in some runs and off in others."""

from __future__ import annotations

from simulator.scenario import (
    ExpectNeverUnverified,
    ExpectNoOnlyCopyDeleted,
    ExpectWindowsRestorable,
    parse_scenario,
)
from simulator.swarm import case_seed, generate


def test_generated_scenarios_are_valid_and_reproducible() -> None:
    cases = [generate(7, index) for index in range(25)]
    assert [c.text for c in cases] == [generate(7, i).text for i in range(25)]
    for case in cases:
        loaded = parse_scenario(case.text.encode(), f"swarm-7-{case.index}.btar.toml")
        assert loaded.scenario.seed == case.seed == case_seed(7, case.index)
        kinds = {type(e) for e in loaded.scenario.expect}
        assert kinds == {ExpectNeverUnverified, ExpectWindowsRestorable,
                         ExpectNoOnlyCopyDeleted}
    with_faults = [c for c in cases if c.faults]
    assert 0 < len(with_faults) < len(cases)
    assert len({f for c in cases for f in c.faults}) == 6


def test_another_swarm_seed_gives_other_scenarios() -> None:
    assert generate(1, 0).text != generate(2, 0).text

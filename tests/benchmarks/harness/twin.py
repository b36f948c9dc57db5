"""Case "twin": the real runtime against the simulator on the twin-run scenario (log lag p50
and p99 per service; the two agree within 10 %). See tests/twin_run.py."""

from __future__ import annotations

from pathlib import Path

from tests.benchmarks.harness.proc import progress
from tests.benchmarks.harness.results import Case, Row
from tests.twin_run import TWIN_SCENARIO, twin

AGREEMENT = 0.10


def run(folder: Path) -> Case:
    case = Case("twin", details={"scenario": TWIN_SCENARIO.name})
    progress("twin: the scenario in the simulator, then 40 s on the real runtime")
    simulated, real = twin(folder)
    for service in sorted(simulated):
        sim, live = simulated[service], real[service]
        case.details[service] = {"simulated": vars(sim), "real": vars(live)}
        for name in ("p50", "p99"):
            a, b = getattr(sim, name), getattr(live, name)
            case.add(Row(f"twin {service} log lag {name}", b, peer="simulator", peer_value=a,
                         target="within 10 %", met=abs(b - a) <= AGREEMENT * a,
                         note=f"{live.count} segments real, {sim.count} simulated"))
    return case

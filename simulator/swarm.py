"""Swarm testing: random scenarios (faults on or off per run) checked against the invariants
that must hold whatever happens:

- no backup is ever published with an unverified object;
- a window never claims a point its region cannot restore (restore plans probed at random
  points, every planned object present with the right SHA-256);
- no deletion removes the only restorable copy of a point in time.

Some runs also restore a primary to a point in time (a ``promotion``: a new timeline, the old
one's latest segments abandoned) and fork along the abandoned branch, so the probes judge
every branch's window too.

Each generated scenario is a real scenario file: a failing one is written out, so it becomes a
regression scenario that ``btar simulate FILE --seed N`` replays exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from simulator.runner import RunResult, run_scenario
from simulator.scenario import parse_scenario

REGION_SETS = {
    "aws": ("aws-eu-west-1", "aws-eu-central-1", "aws-eu-north-1"),
    "google": ("google-europe-west1", "google-europe-west4", "google-europe-north1"),
}
INVARIANTS = ('[[expect]]\nkind = "never_published_unverified"\n\n'
              '[[expect]]\nkind = "windows_restorable"\nprobes = 1\n\n'
              '[[expect]]\nkind = "no_only_copy_deleted"\n')


@dataclass(frozen=True)
class SwarmCase:
    index: int
    seed: int
    name: str
    text: str
    faults: tuple[str, ...]
    #: promotions (point-in-time restores of a primary) in the run
    promotions: int = 0


def case_seed(seed: int, index: int) -> int:
    return random.Random(f"swarm:{seed}:{index}").randrange(2**31)


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def generate(seed: int, index: int) -> SwarmCase:
    """The ``index``-th random scenario of the swarm keyed by ``seed``."""
    run_seed = case_seed(seed, index)
    rng = random.Random(f"swarm-scenario:{seed}:{index}")
    provider = rng.choice(sorted(REGION_SETS))
    primary, second, third = REGION_SETS[provider]
    hours = rng.choice((4, 6, 8))
    duration = hours * 3600
    name = f"swarm {seed}/{index}"
    out = [f"schema = 1\nname = {_q(name)}\nseed = {run_seed}\n"
           f"start = 2026-11-02T00:00:00Z\nduration = \"{hours}h\"\nsample_every = \"10m\"\n"]
    for region in (primary, second, third):
        out.append(f"[[regions]]\nid = {_q(region)}\n")
    for other in (second, third):
        bandwidth = rng.choice(("20MB/s", "50MB/s", "200MB/s"))
        latency = rng.choice(("10ms", "40ms", "120ms"))
        out.append(f"[[links]]\nbetween = [{_q(primary)}, {_q(other)}]\n"
                   f"bandwidth = {_q(bandwidth)}\nlatency = {_q(latency)}\n")
    services = [f"svc-{letter}" for letter in "ab"[: rng.randint(1, 2)]]
    enabled_later = []
    for service in services:
        kind = rng.choice(("postgresql", "mysql"))
        at_start = rng.random() < 0.8
        if not at_start:
            enabled_later.append(service)
        out.append(
            f"[[services]]\nname = {_q(service)}\ntype = {_q(kind)}\nregion = {_q(primary)}\n"
            + (f"additional_region = {_q(second)}\n" if at_start else "")
            + f"[services.schedule]\nbase_every = {_q(rng.choice(('2h', '3h')))}\n"
            f"base_duration = {_q(rng.choice(('5m', '15m')))}\n"
            f"base_size = {_q(rng.choice(('500MB', '2GB')))}\n"
            f"base_objects = {rng.randint(1, 4)}\n"
            f"log_every = {_q(rng.choice(('2m', '5m', '10m')))}\nlog_size = \"16MB\"\n")
    out.append(f"[replicator]\npoll_interval = {_q(rng.choice(('1m', '2m', '5m')))}\n"
               f"concurrency = {rng.randint(1, 8)}\n"
               f"max_attempts = {rng.choice((1, 3))}\n")
    events: list[tuple[float, str]] = []

    def moment(low: float, high: float) -> float:
        return round(rng.uniform(low, high) * duration / 60) * 60.0

    for service in enabled_later:
        events.append((moment(0.05, 0.3), f'kind = "enable"\nservice = {_q(service)}\n'
                                          f"region = {_q(second)}\n"))
    faults: list[str] = []
    if rng.random() < 0.75:
        for _ in range(rng.randint(1, 4)):
            kind = rng.choice(("region_outage", "link_down", "link_degrade", "throttle",
                               "corrupt", "replicator_crash"))
            at = moment(0.1, 0.8)
            until = min(duration, at + rng.choice((600, 1800, 3600, 5400)))
            faults.append(kind)
            span = f"until = \"{int(until)}s\"\n"
            if kind == "region_outage":
                body = f"region = {_q(rng.choice((primary, second)))}\n{span}"
            elif kind == "link_down":
                body = f"between = [{_q(primary)}, {_q(second)}]\n{span}"
            elif kind == "link_degrade":
                body = (f"between = [{_q(primary)}, {_q(second)}]\n{span}"
                        f"bandwidth = \"5MB/s\"\nfailure_rate = {rng.choice((0.2, 0.5, 0.8))}\n")
            elif kind == "throttle":
                body = f"region = {_q(rng.choice((primary, second)))}\n{span}" \
                       f"rate = {rng.choice((0.3, 0.6, 0.9))}\n"
            elif kind == "corrupt":
                body = f"region = {_q(second)}\n{span}share = {rng.choice((0.3, 1.0))}\n"
            else:
                body = f"restart_after = {_q(rng.choice(('2m', '20m', '1h')))}\n"
            events.append((at, f"kind = {_q(kind)}\n{body}"))
    if rng.random() < 0.3:
        events.append((moment(0.3, 0.6), f'kind = "change_region"\nservice = {_q(services[0])}'
                                         f"\nregion = {_q(third)}\n"))
    if rng.random() < 0.3:
        mode = rng.choice(("keep", "delete"))
        events.append((moment(0.7, 0.9), f'kind = "disable"\nservice = {_q(services[-1])}\n'
                                         f"mode = {_q(mode)}\n"))
    for number in range(rng.randint(0, 2)):
        at = moment(0.2, 0.95)
        back = rng.choice((600, 3600))
        target = "latest" if rng.random() < 0.5 else f"{int(max(0.0, at - back))}s"
        events.append((at, f'kind = "fork"\nname = "fork-{number}"\n'
                           f"service = {_q(rng.choice(services))}\ntarget = {_q(target)}\n"))
    # Drawn from a generator of their own: the rest of a case stays what it was before
    # promotions were added to the swarm.
    promoting = random.Random(f"swarm-promotion:{seed}:{index}")
    promotions = 0
    if promoting.random() < 0.3:
        promotions = 1
        service = promoting.choice(services)
        at = round(promoting.uniform(0.3, 0.7) * duration / 60) * 60.0
        to = max(0.0, at - promoting.choice((0, 600, 1800, 3600)))
        events.append((at, f'kind = "promotion"\nservice = {_q(service)}\n'
                           f'to = "{int(to)}s"\n'))
        if promoting.random() < 0.5:
            fork_at = round(promoting.uniform(0.75, 0.95) * duration / 60) * 60.0
            events.append((fork_at, f'kind = "fork"\nname = "fork-branch"\n'
                                    f"service = {_q(service)}\ntimeline = \"1\"\n"
                                    f'target = "{int(max(0.0, at - 300))}s"\n'))
    for at, body in sorted(events, key=lambda e: e[0]):
        out.append(f"[[timeline]]\nat = \"{int(at)}s\"\n{body}")
    out.append(INVARIANTS)
    return SwarmCase(index, run_seed, name, "\n".join(out), tuple(faults), promotions)


@dataclass
class SwarmRun:
    case: SwarmCase
    result: RunResult
    written: Path | None = None


def run_case(case: SwarmCase, seed: int, out_dir: Path) -> SwarmRun:
    """Run one generated scenario; a failing one is written to ``out_dir``."""
    shown = str(out_dir / f"swarm-{seed}-{case.index}.btar.toml")
    loaded = parse_scenario(case.text.encode(), shown)
    result = run_scenario(loaded, case.seed)
    run = SwarmRun(case, result)
    if not result.ok:
        out_dir.mkdir(parents=True, exist_ok=True)
        Path(shown).write_text(case.text, encoding="utf-8")
        run.written = Path(shown)
    return run

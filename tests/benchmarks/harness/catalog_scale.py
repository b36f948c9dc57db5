"""Case catalog (issue 17, target 3: the catalog at fleet size).

A real catalog file of 10,000,000 items over 1,000 services (harness/catalog_data.py; built
once and kept in ``WORK/catalog-cache`` between runs; a file of an older schema version is
migrated by the first open, which is timed and reported apart). Timed as the user meets it:

- ``btar --config CFG status --json`` as a command (the launcher, spawn to reap), and the
  in-process ``Btar.status()`` of an open installation;
- the window (``Btar.window``) and restore plans (``plan_restore``, latest and a random
  target) of one service's secondary region, in process, median of several;
- ``btar --config CFG check`` as a command, and ``engine.operations.check`` in process.

Targets: status of every service <= 300 ms; window and plan <= 10 ms; check <= 1 s.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from engine.api import Btar
from engine.catalog import Catalog
from engine.operations import check
from engine.restore import plan_restore
from tests.benchmarks.harness import catalog_data as data
from tests.benchmarks.harness.btar import BTAR, PRIMARY, SECONDARY, local_region
from tests.benchmarks.harness.proc import progress, run
from tests.benchmarks.harness.results import Case, Row

ITEMS, QUICK_ITEMS, SERVICES = 10_000_000, 1_000_000, 1_000
IN_PROCESS_REPEAT = 9
#: in-process status and check: median of this many (after a warm-up call)
FLEET_REPEAT = 5


def _config(folder: Path, catalog: Path, services: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f'catalog = "{catalog}"', "", "[regions]",
             f"{PRIMARY} = {local_region(folder / 'primary')}",
             f"{SECONDARY} = {local_region(folder / 'secondary')}", ""]
    for index in range(services):
        lines += ["[[services]]", f'name = "{data.service_name(index)}"',
                  'type = "postgresql"', f'region = "{PRIMARY}"', ""]
    path = folder / "btar.toml"
    path.write_text("\n".join(lines))
    return path


def _median_ms(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median of ``repeat`` timed calls after one untimed call: in process is where a front
    (the TUI) calls again and again, with SQLite's page cache warm; the commands above are
    the cold case. Returns the median wall and CPU milliseconds (CPU: what another process
    on a shared machine does not inflate)."""
    fn()
    samples, cpu = [], []
    for _ in range(repeat):
        started, used = time.perf_counter(), time.process_time()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - used) * 1000)
    return statistics.median(samples), statistics.median(cpu)


def catalog_file(work: Path, items: int, services: int) -> tuple[Path, dict[str, Any]]:
    """The cached catalog (built when missing), opened once so that it is at the engine's
    schema version before anything is timed."""
    path = data.cache_path(work, items, services)
    facts: dict[str, Any] = {"catalog": str(path)}
    if not path.exists():
        progress(f"catalog: building {items:,} items over {services:,} services")
        facts["build_s"] = round(data.build(path, items, services), 1)
        progress(f"catalog: built in {facts['build_s']} s")
    started = time.perf_counter()
    catalog = Catalog.open(path)
    facts["open_or_migrate_s"] = round(time.perf_counter() - started, 2)
    facts["schema_version"] = catalog.schema_version
    catalog.close()
    facts["file_mib"] = round(path.stat().st_size / 2**20)
    return path, facts


def installed_environment(work: Path, env: Mapping[str, str]) -> tuple[dict[str, str], str]:
    """``env`` for the commands, with Python's compiled bytecode kept (in ``WORK/pycache``,
    outside the tree) as an installed btar has it (pip compiles a wheel's modules when it
    installs them). An editable checkout under PYTHONDONTWRITEBYTECODE would compile every
    module of the engine from source at each start: 0.1-0.3 s of a command's time that no
    installation pays. Returns the environment and what the note says about it."""
    commands = dict(env)
    if commands.pop("PYTHONDONTWRITEBYTECODE", None) is None:
        return commands, "bytecode as the environment has it"
    commands.setdefault("PYTHONPYCACHEPREFIX", str(work / "pycache"))
    return commands, "bytecode compiled once (as installed)"


def run_case(work: Path, items: int, services: int, repeat: int,
             env: Mapping[str, str]) -> Case:
    case = Case("catalog")
    path, facts = catalog_file(work, items, services)
    case.details.update(facts, items=items, services=services)
    env, bytecode = installed_environment(work, env)
    case.details["bytecode"] = bytecode
    config = _config(work / "catalog", path, services)
    label = f"{items / 1e6:g}M items / {services:,} services"
    argv = [BTAR, "--config", str(config)]
    run([*argv, "status", "--json"], env=env).check("btar status (warm-up)")
    status_runs = [run([*argv, "status", "--json"], env=env).check("btar status")
                   for _ in range(repeat)]
    status_cmd = statistics.median(r.seconds for r in status_runs) * 1000
    version = statistics.median(run([BTAR, "--version"], env=env).seconds
                                for _ in range(repeat)) * 1000
    check_runs = [run([*argv, "check"], env=env) for _ in range(repeat)]
    for result in check_runs:
        if result.returncode not in (0, 1, 2):
            result.check("btar check")
    check_cmd = statistics.median(r.seconds for r in check_runs) * 1000
    # CPU of the command itself (its rusage): what another process on the machine does not
    # inflate, unlike the wall time
    status_cmd_cpu = statistics.median(r.cpu_seconds for r in status_runs) * 1000
    check_cmd_cpu = statistics.median(r.cpu_seconds for r in check_runs) * 1000
    app = Btar.open(str(config), actor="bench")
    try:
        name = data.service_name(services // 2)
        service = app.service(name)
        status_in, status_cpu = _median_ms(app.status, FLEET_REPEAT)
        now = app.driver.now()
        check_in, check_cpu = _median_ms(lambda: check(app, app.alerts, now), FLEET_REPEAT)
        window, window_cpu = _median_ms(lambda: app.window(name, SECONDARY), IN_PROCESS_REPEAT)
        latest, latest_cpu = _median_ms(
            lambda: plan_restore(app.catalog, service, SECONDARY, None, now), IN_PROCESS_REPEAT)
        segments, _ = data.shape(items, services)
        rng = random.Random(3)
        first = data.END - data.STEP * segments

        def random_plan() -> object:
            # inside the window: after the first base backup, before the pending tail
            target = first + (data.END - first - timedelta(minutes=5)) * rng.random()
            return plan_restore(app.catalog, service, SECONDARY, target, now)
        planned, planned_cpu = _median_ms(random_plan, IN_PROCESS_REPEAT)
        problems = len(check(app, app.alerts, now))
    finally:
        app.close()
    case.details.update({
        "status_command_ms": [r.seconds * 1000 for r in status_runs],
        "check_command_ms": [r.seconds * 1000 for r in check_runs],
        "check_exit": check_runs[0].returncode, "check_problems": problems,
        "version_ms": version, "status_rss_mib": status_runs[0].max_rss_mib,
        "in_process_cpu_ms": {"status": status_cpu, "check": check_cpu, "window": window_cpu,
                              "plan_latest": latest_cpu, "plan_random": planned_cpu}})
    floor = f"`btar --version` {version:.0f} ms; {bytecode}"
    case.add(Row(f"status --json, command @{label}", status_cmd, unit="ms",
                 target="<= 300 ms", met=status_cmd <= 300,
                 note=f"median of {repeat}; CPU {status_cmd_cpu:.0f} ms; floor of any "
                 f"command: {floor}"))
    case.add(Row("status, in process (Btar.status)", status_in, unit="ms",
                 target="<= 300 ms", met=status_in <= 300,
                 note=f"median of {FLEET_REPEAT} after a warm-up call (also check); CPU "
                 f"{status_cpu:.0f} ms"))
    case.add(Row("window of one service (secondary)", window, unit="ms", target="<= 10 ms",
                 met=window <= 10,
                 note=f"median of {IN_PROCESS_REPEAT} after a warm-up call (also the plans)"))
    case.add(Row("plan latest (secondary)", latest, unit="ms", target="<= 10 ms",
                 met=latest <= 10, note=f"CPU {latest_cpu:.1f} ms"))
    case.add(Row("plan random target (secondary)", planned, unit="ms", target="<= 10 ms",
                 met=planned <= 10, note=f"CPU {planned_cpu:.1f} ms"))
    case.add(Row(f"check, command @{label}", check_cmd, unit="ms", target="<= 1000 ms",
                 met=check_cmd <= 1000,
                 note=f"median of {repeat}; CPU {check_cmd_cpu:.0f} ms; {problems} problems"))
    case.add(Row("check, in process (operations.check)", check_in, unit="ms",
                 target="<= 1000 ms", met=check_in <= 1000, note=f"CPU {check_cpu:.0f} ms"))
    return case


def run_default(work: Path, quick: bool, repeat: int, env: Mapping[str, str],
                items: int | None = None) -> Case:
    return run_case(work, items or (QUICK_ITEMS if quick else ITEMS), SERVICES, repeat, env)

"""``btar simulate``: replay scenario files in virtual time against the engine, or run a swarm
of random scenarios against the invariants.

Exit codes: 0 every expectation holds, 4 one fails (or a run crashed), 2 invalid scenario or
usage.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO

from simulator.report import report_folder, write_report
from simulator.runner import RunResult, run_scenario, summary
from simulator.scenario import ScenarioError, load_scenario
from simulator.states import span_line, state_spans
from simulator.swarm import generate, run_case
from simulator.units import format_duration

EXIT_OK, EXIT_INVALID, EXIT_FAILED = 0, 2, 4
#: spans of status printed per service (all of them are in --json and --report)
SHOWN_SPANS = 20


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as exit 2 without killing the caller."""

    def __init__(self, err: TextIO, out: TextIO, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._err = err
        self._out = out

    def error(self, message: str) -> Any:
        self.print_usage(self._err)
        self._err.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_INVALID)

    def print_help(self, file: Any = None) -> None:
        super().print_help(self._out)


def build_parser(out: TextIO, err: TextIO) -> argparse.ArgumentParser:
    parser = _Parser(
        err, out, prog="btar simulate",
        description="Replay scenario files (outages, lag, forks) in virtual time against the "
                    "btar engine and judge their expectations. Exit 0 when every expectation "
                    "holds, 4 when one fails, 2 for an invalid scenario.",
        epilog="A failing run prints the command that replays it exactly: "
               "btar simulate FILE --seed N.")
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help="scenario files (*.btar.toml)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the run (default: the scenario's own seed; with --swarm, "
                             "the swarm's seed, default 0)")
    parser.add_argument("--report", metavar="DIR", type=Path, default=None,
                        help="write journal.jsonl, plot.svg, summary.json and report.html per "
                             "scenario into DIR (and failing swarm scenarios)")
    parser.add_argument("--json", action="store_true",
                        help="print the results as one JSON document")
    parser.add_argument("--swarm", type=int, metavar="N", default=None,
                        help="run N random scenarios (faults on or off per run) against the "
                             "invariants; failing ones are written out as regression scenarios")
    return parser


def main(argv: list[str], out: TextIO, err: TextIO) -> int:
    """Entry point of ``btar simulate`` (everything after ``simulate`` is ``argv``)."""
    if argv[:1] == ["--"]:
        # `btar simulate -- --swarm 8`: the top-level parser hands a leading option over only
        # after "--" (see the report); the rest is ours.
        argv = argv[1:]
    try:
        args = build_parser(out, err).parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if args.swarm is not None:
        if args.scenarios:
            err.write("btar simulate: give scenario files or --swarm N, not both\n")
            return EXIT_INVALID
        return _swarm(args, out, err)
    if not args.scenarios:
        err.write("btar simulate: give at least one scenario file (or --swarm N); see --help\n")
        return EXIT_INVALID
    loaded = []
    invalid = False
    for path in args.scenarios:
        try:
            loaded.append(load_scenario(path))
        except ScenarioError as error:
            invalid = True
            for line in error.lines():
                err.write(f"{line}\n")
    if invalid:
        err.write("btar simulate: invalid scenario; nothing was run\n")
        return EXIT_INVALID
    results = []
    for scenario in loaded:
        result = run_scenario(scenario, args.seed)
        results.append(result)
        if args.report is not None:
            write_report(result, report_folder(args.report, scenario.path))
        if not args.json:
            _print(result, out)
    if args.json:
        out.write(json.dumps({"ok": all(r.ok for r in results),
                              "runs": [summary(r) for r in results]}, indent=2) + "\n")
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def _print(result: RunResult, out: TextIO) -> None:
    loaded = result.loaded
    title = f": {loaded.scenario.name}" if loaded.scenario.name else ""
    out.write(f"scenario {loaded.path}{title} (seed {result.seed}, sha256 "
              f"{loaded.sha256[:12]})\n")
    for verdict in result.verdicts:
        mark = "PASS" if verdict.holds else "FAIL"
        out.write(f"  {mark}  expect[{verdict.index}] {verdict.label}: {verdict.detail}\n")
    start = next((e["start"] for e in result.journal.entries if e["op"] == "run"), "")
    for name, spans in state_spans(result.journal.entries).items():
        out.write(f"  status of {name} (btar status at each sample):\n")
        for span in spans[:SHOWN_SPANS]:
            out.write(f"    {span_line(span, start)}\n")
        if len(spans) > SHOWN_SPANS:
            out.write(f"    ... {len(spans) - SHOWN_SPANS} more (--json or --report)\n")
    if result.crashed:
        out.write("  CRASH the run raised:\n")
        for line in result.crashed.rstrip().splitlines():
            out.write(f"    {line}\n")
    out.write(f"  summary: {result.events} events simulated, virtual time "
              f"{format_duration(result.virtual_seconds)}, wall time "
              f"{result.wall_seconds:.2f} s\n")
    if not result.ok:
        out.write(f"  replay: {result.replay}\n")


def _swarm(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    seed = args.seed or 0
    out_dir = args.report if args.report is not None else Path("btar-swarm-failures")
    failures = 0
    runs = []
    for index in range(args.swarm):
        case = generate(seed, index)
        run = run_case(case, seed, out_dir)
        runs.append(run)
        result = run.result
        faults = ", ".join(case.faults) or "no faults"
        if case.promotions:
            faults += f"; {case.promotions} promotion"
        if not args.json:
            out.write(f"swarm {index + 1}/{args.swarm} seed {case.seed}: "
                      f"{'PASS' if result.ok else 'FAIL'} ({faults}; {result.events} events, "
                      f"{result.wall_seconds:.2f} s)\n")
        if not result.ok:
            failures += 1
            if not args.json:
                for verdict in result.verdicts:
                    if not verdict.holds:
                        out.write(f"  FAIL  {verdict.label}: {verdict.detail}\n")
                if result.crashed:
                    out.write(f"  CRASH {result.crashed.strip().splitlines()[-1]}\n")
                out.write(f"  scenario written to {run.written}\n  replay: {result.replay}\n")
    if args.json:
        out.write(json.dumps({"ok": failures == 0, "seed": seed, "runs": [
            {**summary(r.result), "faults": list(r.case.faults),
             "written": str(r.written) if r.written else None} for r in runs]}, indent=2) + "\n")
    else:
        out.write(f"swarm seed {seed}: {args.swarm - failures} of {args.swarm} runs hold every "
                  "invariant\n")
    return EXIT_OK if failures == 0 else EXIT_FAILED

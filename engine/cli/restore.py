"""Commands that restore: `btar fork` and `btar wal-fetch` (a fork's restore_command)."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from engine.cli.commands import Command
from engine.cli.output import duration, json_flag, print_json
from engine.errors import BadInput
from engine.model import parse_iso

if TYPE_CHECKING:  # each command imports what it runs on when it runs (engine.cli.program)
    from engine.api import Btar


def _target(args: argparse.Namespace) -> datetime | None:
    if args.latest:
        return None
    try:
        return parse_iso(args.target_time)
    except ValueError as error:
        raise BadInput(f"--target-time: {error}") from None


def cmd_fork(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    from engine.api.restoring import plan_as_json
    from engine.config import config_path
    from engine.restore_tools import ToolOptions

    target = _target(args)
    if args.dry_run:
        plan = app.plan_fork(args.service, args.region, target, source_region=args.source_region,
                             timeline=args.timeline)
        rate, measured = app.fork_throughput()
        summary = plan_as_json(plan)
        summary["estimated_seconds"] = round(plan.bytes_total / rate, 3)
        summary["estimate_basis"] = "measured on earlier forks" if measured else \
            f"assumed {rate / 2**20:.0f} MiB/s (no fork measured yet)"
        if args.json:
            print_json(summary, out)
            return 0
        out.write(_plan_text(summary))
        return 0
    if not args.into:
        raise BadInput("btar fork: --into DIR is required unless --dry-run")
    if args.port is not None and not args.start:
        raise BadInput("btar fork: --port goes with --start")
    config = str(config_path(args.config).resolve())
    into = Path(args.into).resolve()
    tools = ToolOptions(fetch_only=args.fetch_only, start=args.start, port=args.port,
                        run_as=args.run_as)
    outcome = app.fork(args.service, args.region, target, into,
                       source_region=args.source_region,
                       wal_fetch_command=["btar", "--config", config, "wal-fetch",
                                          args.service, "--region", args.region],
                       tools=tools, timeline=args.timeline)
    restored = outcome.restore
    if args.json:
        print_json({"plan": plan_as_json(outcome.plan), "downloaded": outcome.downloaded,
                     "skipped": outcome.skipped, "bytes_downloaded": outcome.bytes_downloaded,
                     "seconds": outcome.seconds, "written": outcome.written,
                     "into": str(into), "restore": restored,
                     "next_steps": outcome.next_steps}, out)
        return 0
    out.write(_plan_text(plan_as_json(outcome.plan)))
    out.write(f"fetched {outcome.downloaded} objects ({outcome.bytes_downloaded} bytes) in "
              f"{outcome.seconds:.1f}s, {outcome.skipped} already there and verified\n"
              f"laid out in {into}: {', '.join(outcome.written)}\n")
    if restored is not None:
        steps = ", ".join(f"{step} {seconds:.1f}s" for step, seconds in restored.steps)
        out.write(f"restored with {restored.tool} as {restored.user} into {restored.datadir}: "
                  f"{steps}\n")
        for command in restored.commands:
            out.write(f"  ran: {command}\n")
        for note in restored.notes:
            out.write(f"  {note}\n")
        if restored.running:
            out.write(f"  running: port {restored.port}, socket {restored.socket}, "
                      f"pid {restored.pid}; stop with: {restored.stop_command}\n")
    if outcome.next_steps:
        out.write("next steps:\n" + "".join(f"  {step}\n" for step in outcome.next_steps))
    return 0


def _plan_text(plan: dict[str, Any]) -> str:
    segments = plan["segments"]
    lines = [
        f"fork {plan['service']} in {plan['region']} ({plan['role']} copy) to "
        f"{plan['effective_target']}" + (" (latest)" if plan["target"] == "latest" else ""),
        f"  window       {plan['window']['start']} .. {plan['window']['end']}",
        f"  base backup  {plan['base_backup']} (consistent at {plan['base_end']})",
        f"  timeline     {plan['timeline']}"
        + (" (asked for)" if plan["timeline_asked"] else " (the latest)"),
        f"  log segments {segments['count']}"
        + (f": {segments['first']} .. {segments['last']}" if segments["count"] else ""),
        f"  to fetch     {plan['objects']} objects, {plan['bytes']} bytes",
    ]
    if "estimated_seconds" in plan:
        lines.append(f"  estimate     {plan['estimated_seconds']}s ({plan['estimate_basis']})")
    if plan["expected_data_loss_seconds"] is not None:
        lines.append(f"  data loss    {duration(plan['expected_data_loss_seconds'])} behind "
                     "the primary's latest point")
    return "\n".join(lines) + "\n"


def cmd_wal_fetch(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    app.wal_fetch(args.service, args.region, args.segment, Path(args.destination))
    return 0



def _fork_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("service")
    p.add_argument("--region", required=True,
                   help="where the fork runs; the copy stored there is used (rule 6)")
    p.add_argument("--source-region",
                   help="the copy to restore from (must equal --region; refused otherwise)")
    when_ = p.add_mutually_exclusive_group(required=True)
    when_.add_argument("--latest", action="store_true", help="the end of the region's window")
    when_.add_argument("--target-time", metavar="ISO", help="a UTC time, e.g. 2026-11-26T08:00Z")
    p.add_argument("--timeline", metavar="N",
                   help="recover along this timeline (a branch `btar window` shows) instead "
                   "of the latest one")
    p.add_argument("--into", metavar="DIR", help="folder to restore into (resumable)")
    p.add_argument("--dry-run", action="store_true", help="print the plan only")
    p.add_argument("--fetch-only", action="store_true",
                   help="fetch and lay out only; do not run the restore tool (pgbackrest, "
                   "mariadb-backup, barman-cloud-restore)")
    p.add_argument("--start", action="store_true",
                   help="leave the database running on the fork (PostgreSQL: once it left "
                   "recovery)")
    p.add_argument("--port", type=int, help="port of the started fork (default: a free one)")
    p.add_argument("--run-as", metavar="USER",
                   help="OS user that owns the fork and runs the tools and the server "
                   "(default: you; postgres or mysql when run as root)")
    json_flag(p)


def _wal_fetch_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("service")
    p.add_argument("--region", required=True)
    p.add_argument("segment", help="STREAM/SEQ, or a WAL file name (%%f: the native layout, "
                   "pgbackrest and barman-cloud; theirs is decompressed on delivery)")
    p.add_argument("destination", help="where the segment goes (%%p)")


COMMANDS = [
    Command("fork", "restore a service from the copy in a region, to the latest "
            "point or a point in time inside that region's window",
            "btar fork orders --region aws-eu-central-1 --target-time 2026-11-26T08:00Z "
            "--into ./fork --dry-run", _fork_arguments, with_app=cmd_fork,
            config_parts=frozenset({"locations"})),
    Command("wal-fetch", "fetch one log segment from a region's copy "
            "(the restore_command of a fork)",
            "btar wal-fetch orders --region aws-eu-central-1 1/42 /tmp/segment",
            _wal_fetch_arguments, with_app=cmd_wal_fetch,
            config_parts=frozenset({"locations"})),
]

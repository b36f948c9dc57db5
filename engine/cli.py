"""The `btar` command line: the application API made scriptable, with JSON output.

Exit codes: 0 success, 1 unexpected failure, 2 bad input (usage, configuration),
3 refused by a rule of the feature (the message names the rule), 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sqlite3
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn, TextIO

from engine import __version__
from engine.api import Btar, ServiceStatus, plan_as_json
from engine.config import LoadedConfig, config_path, load_config
from engine.errors import BadInput, BtarError, CatalogDamaged, ConfigError, RegionsUnreachable
from engine.fork import ToolOptions
from engine.lag import LagBucket, Period
from engine.model import RestoreWindow, iso, parse_iso
from engine.runtime import CopyProgress
from engine.timelines import view_as_json
from engine.units import short_duration


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise BadInput(f"{self.prog}: {message} (see {self.prog} --help)")


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums and datetimes as plain JSON values."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, RestoreWindow):
        return {"region": value.region, "role": value.role.value,
                "start": iso(value.start) if value.start else None,
                "end": iso(value.end) if value.end else None,
                "intervals": [{"start": iso(r.start), "end": iso(r.end)}
                              for r in value.intervals]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def _print_json(value: Any, out: TextIO) -> None:
    json.dump(to_jsonable(value), out, indent=2, sort_keys=False)
    out.write("\n")


def _table(rows: list[list[str]], out: TextIO) -> None:
    if not rows:
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")


_duration = short_duration


def _when(moment: datetime | None) -> str:
    return iso(moment.replace(microsecond=0)) if moment else "-"


# -- commands --------------------------------------------------------------------------------

def cmd_init(args: argparse.Namespace, out: TextIO) -> int:
    from engine.demo import create_demo, write_starter_config

    target = config_path(args.config)
    if args.demo:
        accounts: tuple[str, str] | None = None
        if args.azure_accounts:
            names = args.azure_accounts.split(",")
            if len(names) != 2:
                raise BadInput("--azure-accounts takes two names: PRIMARY,SECONDARY")
            accounts = (names[0], names[1])
        path = create_demo(Path(args.demo), config=Path(args.config) if args.config else None,
                           backend=args.backend, endpoint=args.endpoint,
                           azure_accounts=accounts)
        out.write(f"demo world written under {Path(args.demo).resolve()}\n"
                  f"configuration: {path}\n"
                  f"next: btar --config {path} sync --once && "
                  f"btar --config {path} window orders --json\n")
        return 0
    write_starter_config(target)
    out.write(f"wrote {target}; edit [regions] and [[services]], then run `btar status`\n")
    return 0


def cmd_status(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    statuses = app.status()
    settings = app.settings
    streams = {"concurrency": settings.concurrency, "base_streams": settings.base_stream_limit}
    if args.json:
        _print_json({"services": [{**to_jsonable(s), "backlog": to_jsonable(s.backlog),
                                   "primary_fault": to_jsonable(s.primary_fault),
                                   "state_line": s.state_line}
                                  for s in statuses], "streams": streams}, out)
        return 0
    rows = [["SERVICE", "TYPE", "PRIMARY", "ADDITIONAL", "STATE", "LAG", "PRIMARY LISTED",
             "BACKLOG (LOG / BASE)", "WINDOW END (SECONDARY)"]]
    for s in statuses:
        listed = "-" if s.staleness_seconds is None else f"{_duration(s.staleness_seconds)} ago"
        # A reason is printed once, under the table, with the region's fault class.
        rows.append([s.name, s.type, s.primary_region, s.additional_region or "-", s.short_state,
                     _duration(s.current_lag_seconds), listed, _backlog(s), _secondary_end(s)])
    _table(rows, out)
    for s in statuses:
        for region in s.regions:
            if region.fault is not None:
                out.write(f"{s.name}: {region.region} ({region.role}): {region.fault.kind}: "
                          f"{region.fault.reason}\n")
    out.write(f"copy streams: {streams['concurrency']}, base backups take at most "
              f"{streams['base_streams']} (replication.concurrency, replication.base_streams)\n")
    return 0


def _backlog(status: ServiceStatus) -> str:
    """Items (and bytes) still to copy into the additional region, log lane / base lane."""
    if status.additional_region is None:
        return "-"
    lanes = status.backlog
    return " / ".join(f"{lanes[lane].items} ({_bytes(lanes[lane].bytes)})" if lane in lanes
                      else "0" for lane in ("log", "base"))


def _secondary_end(status: ServiceStatus) -> str:
    for region in status.regions:
        if region.region == status.additional_region:
            return _when(region.window.end)
    return "-"


def cmd_backups(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    rows_ = app.backups(args.service, args.region)
    if args.json:
        _print_json({"service": args.service, "items": rows_}, out)
        return 0
    rows = [["REGION", "KIND", "ITEM", "END", "SIZE", "STATUS", "LAG"]]
    for item in rows_:
        rows.append([item.region, item.kind.value, item.item_id, _when(item.end_time),
                     str(item.size), item.status.value + (f" ({item.reason})" if item.reason
                                                          else ""),
                     _duration(item.lag_seconds)])
    _table(rows, out)
    return 0


def cmd_enable(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    app.enable(args.service, args.region)
    out.write(f"{args.service}: backups now replicate to {args.region}; "
              "run `btar sync` to copy them\n")
    return 0


def cmd_change(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    old = app.additional_region(args.service)
    app.change_region(args.service, args.region)
    out.write(f"{args.service}: additional region is now {args.region}; {old} keeps "
              "replicating until it can restore\n")
    return 0


def cmd_disable(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    outcome = app.disable(args.service, keep=args.keep, delete=args.delete, confirmed=args.yes)
    if args.json:
        _print_json(outcome, out)
    elif outcome.mode == "keep":
        out.write(f"{args.service}: replication stopped; copies in "
                  f"{', '.join(outcome.regions)} are retained\n")
    else:
        out.write(f"{args.service}: replication stopped; deleted {outcome.deleted_objects} "
                  f"objects in {', '.join(outcome.regions)}\n")
    return 0


def cmd_sync(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    if not args.once:
        return _sync_daemon(app, args)
    started = app.driver.now()
    outcomes = app.sync(args.services or None, full_listing=args.full_listing)
    failed = False
    unreachable: dict[str, list[str]] = {}
    for o in outcomes:
        failed = failed or bool(o.failed or o.unexpected)
        for region in [*o.paused, *([app.service(o.service).region] if o.primary_error else [])]:
            unreachable.setdefault(region, []).append(o.service)
        if args.json:
            continue
        line = (f"{o.service}: {o.discovered} new in primary, {len(o.published)} published, "
                f"{o.copied_objects} objects ({o.copied_bytes} bytes) copied")
        if o.failed:
            line += f", {len(o.failed)} failed"
        for region, reason in o.paused.items():
            line += f"; {region} paused: {reason}"
        if o.primary_error:
            line += f"; primary: {o.primary_error}"
        if o.unexpected:
            line += f"; {o.unexpected}"
        out.write(line + "\n")
    from engine.operations import findings_of

    holes, refused = findings_of(app, [o.service for o in outcomes], started)
    if args.json:
        _print_json({"passes": outcomes, "holes": [h.message for h in holes],
                     "refused": [r.message for r in refused]}, out)
    else:
        for line in [*(h.message for h in holes), *(r.message for r in refused)]:
            out.write(f"  {line}\n")
    if unreachable:
        raise RegionsUnreachable(unreachable)
    return 1 if (failed or holes or refused) and args.strict else 0


def _sync_daemon(app: Btar, args: argparse.Namespace) -> int:
    from engine.daemon import run_sync
    from engine.logs import configure

    logger = configure(args.log_format or ("human" if sys.stderr.isatty() else "json"),
                       args.log_level)
    metrics = None
    if args.metrics_port is not None:
        from engine.metrics import SyncMetrics

        metrics = SyncMetrics()
        metrics.serve(args.metrics_port, args.metrics_address)
        logger.info("metrics on http://%s:%d/metrics", args.metrics_address, args.metrics_port)
    if args.interval:
        app.settings = dataclasses.replace(app.settings, poll_interval=args.interval)
    run_sync(app, args.services, logger=logger, metrics=metrics)
    return 0


def cmd_check(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    from engine.alerts import exit_code
    from engine.operations import check

    problems = check(app, app.alerts, app.driver.now())
    if args.json:
        _print_json({"status": ["ok", "warning", "critical"][exit_code(problems)],
                     "problems": [{"service": p.service, "level": p.level.name.lower(),
                                   "check": p.check, "message": p.message}
                                  for p in problems]}, out)
    elif not problems:
        out.write("OK: every replicating service is within its thresholds\n")
    else:
        for problem in problems:
            out.write(f"{problem.level.name}: {problem.message}\n")
    return exit_code(problems)


def cmd_cost(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    from engine.operations import cost_report

    rows_ = cost_report(app, app.prices, Period(args.period), app.driver.now())
    currency = app.prices.currency
    if args.json:
        _print_json({"currency": currency, "period": args.period, "regions": rows_}, out)
        return 0
    rows = [["SERVICE", "REGION", "ROLE", "STORED", f"{currency}/MONTH",
             f"COPIED ({args.period})", currency]]
    for r in rows_:
        rows.append([r.service, r.region, r.role, _bytes(r.bytes_stored),
                     f"{r.storage_cost_month:.4f}", _bytes(r.bytes_transferred),
                     f"{r.transfer_cost:.4f}"])
    _table(rows, out)
    total = sum(r.storage_cost_month for r in rows_)
    out.write(f"storage in additional regions: {total:.4f} {currency} per month "
              "(prices from [cost] in the configuration, else documented examples)\n")
    return 0


def _bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{count} B"


def cmd_lag(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    report = app.lag(args.service, Period(args.period), args.region)
    if args.json:
        # The items are the chart's input: a year of one-minute WAL is half a million of them.
        _print_json({k: v for k, v in to_jsonable(report).items() if k != "items"}, out)
        return 0
    if args.csv:
        out.write("bucket_start,items,p50_seconds,p95_seconds,p99_seconds,max_seconds\n")
        for bucket in report.buckets:
            b = bucket.stats
            cells = [iso(bucket.start), str(b.count),
                     *("" if v is None else f"{v:.3f}" for v in (b.p50, b.p95, b.p99, b.max))]
            out.write(",".join(cells) + "\n")
        return 0
    s = report.stats
    out.write(f"{report.service} -> {report.region}, last {report.period.value} "
              f"({_when(report.start)} .. {_when(report.end)})\n")
    out.write(f"current lag {_duration(report.current_lag_seconds)}; {s.count} items: "
              f"p50 {_duration(s.p50)}, p95 {_duration(s.p95)}, p99 {_duration(s.p99)}, "
              f"max {_duration(s.max)}\n")
    if out.isatty():
        out.write(lag_chart(report.buckets))
        return 0
    rows = [["FROM", "ITEMS", "P50", "MAX"]]
    for bucket in report.buckets:
        if bucket.stats.count:
            rows.append([_when(bucket.start), str(bucket.stats.count),
                         _duration(bucket.stats.p50), _duration(bucket.stats.max)])
    _table(rows, out)
    return 0


def lag_chart(buckets: Sequence[LagBucket], width: int = 40) -> str:
    """A horizontal bar per bucket: p50 in full blocks, up to the max in light shade."""
    peak = max((b.stats.max or 0.0 for b in buckets), default=0.0) or 1.0
    lines = []
    for bucket in buckets:
        p50, top = bucket.stats.p50 or 0.0, bucket.stats.max or 0.0
        solid = round(p50 / peak * width)
        shade = max(0, round(top / peak * width) - solid)
        label = _duration(bucket.stats.max) if bucket.stats.count else "-"
        lines.append(f"{_when(bucket.start)} {'█' * solid}{'░' * shade} {label}")
    return "\n".join(lines) + "\n"


def cmd_window(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    views = app.timeline_views(args.service)
    if args.json:
        _print_json({"service": args.service,
                     "regions": [view_as_json(to_jsonable(v.window), v) for v in views]}, out)
        return 0
    rows = [["REGION", "ROLE", "TIMELINE", "START", "END", "GAPS"]]
    for view in views:
        w = view.window
        rows.append([w.region, w.role.value, view.followed or "-", _when(w.start), _when(w.end),
                     str(max(0, len(w.intervals) - 1))])
        for branch in view.branches:
            if branch.followed:
                continue
            start = branch.intervals[0].start if branch.intervals else None
            end = branch.intervals[-1].end if branch.intervals else None
            rows.append(["", "  branch", f"{branch.timeline} (--timeline)", _when(start),
                         _when(end), str(max(0, len(branch.intervals) - 1))])
    _table(rows, out)
    followed = {v.followed for v in views if v.followed and len(v.branches) > 1}
    if followed:
        out.write(f"forks follow timeline {', '.join(sorted(followed))} (the latest); a branch "
                  "is restored only with --timeline\n")
    return 0


def cmd_regions(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    from engine.regions import distance_km, get_region

    service = app.service(args.service)
    primary = get_region(service.region)
    offered = app.offered_regions(args.service)
    if args.json:
        _print_json({"service": service.name, "regions": [
            {"region": r.id, "name": r.name, "distance_km": round(distance_km(primary, r)),
             "configured": configured} for r, configured in offered]}, out)
        return 0
    rows = [["REGION", "NAME", "DISTANCE", "LOCATION"]]
    for region, configured in offered:
        rows.append([region.id, region.name, f"{distance_km(primary, region):.0f} km",
                     "configured" if configured else "-"])
    _table(rows, out)
    return 0


def cmd_events(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    events = app.events(args.limit, args.service)
    if args.json:
        _print_json({"events": events}, out)
        return 0
    for e in events:
        out.write(f"{_when(e.at)} {e.level:<7} {e.service} {e.region}: {e.message}\n")
    return 0


def _target(args: argparse.Namespace) -> datetime | None:
    if args.latest:
        return None
    try:
        return parse_iso(args.target_time)
    except ValueError as error:
        raise BadInput(f"--target-time: {error}") from None


def cmd_fork(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
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
            _print_json(summary, out)
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
        _print_json({"plan": plan_as_json(outcome.plan), "downloaded": outcome.downloaded,
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
        lines.append(f"  data loss    {_duration(plan['expected_data_loss_seconds'])} behind "
                     "the primary's latest point")
    return "\n".join(lines) + "\n"


def cmd_wal_fetch(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    app.wal_fetch(args.service, args.region, args.segment, Path(args.destination))
    return 0


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from engine.demo import run_demo

    if not args.headless and sys.stdout.isatty() and sys.stdin.isatty() and _tui_installed():
        from btar_tui.app import run_demo_tui

        return int(run_demo_tui(Path(args.dir) if args.dir else None, interval=args.interval,
                                duration=args.duration))
    return run_demo(Path(args.dir) if args.dir else None, duration=args.duration,
                    interval=args.interval, out=out)


def _tui_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("btar_tui.app") is not None


def cmd_tui(args: argparse.Namespace, out: TextIO) -> int:
    if not _tui_installed():
        raise BadInput("the terminal UI is not part of this build; use the other commands")
    from btar_tui.app import run_tui

    return int(run_tui(config_path(args.config)))


EXAMPLES = {
    "init": "btar init --demo ./demo && export BTAR_CONFIG=./demo/btar.toml",
    "status": "btar status --json | jq '.services[] | {name, state}'",
    "backups": "btar backups orders --region aws-eu-central-1",
    "regions": "btar regions orders",
    "enable": "btar enable orders --region aws-eu-central-1",
    "change-region": "btar change-region orders --region aws-eu-north-1",
    "disable": "btar disable orders --keep      # or: --delete --yes",
    "sync": "btar sync --metrics-port 9477 --log-format json   # or: btar sync --once",
    "check": "btar check || echo 'paged'",
    "cost": "btar cost --period month",
    "lag": "btar lag orders --period week --csv > lag.csv",
    "window": "btar window orders --json",
    "events": "btar events --service orders --limit 20",
    "fork": "btar fork orders --region aws-eu-central-1 --target-time 2026-11-26T08:00Z "
            "--into ./fork --dry-run",
    "wal-fetch": "btar wal-fetch orders --region aws-eu-central-1 1/42 /tmp/segment",
    "tui": "btar tui --config ./demo/btar.toml",
    "completion": 'eval "$(btar completion bash)"',
    "demo": "btar demo --headless --duration 30",
}


def cmd_completion(args: argparse.Namespace, out: TextIO) -> int:
    out.write(completion_script(build_parser(), args.shell))
    return 0


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """A bash completion function for every command and its flags (zsh via bashcompinit)."""
    commands: dict[str, list[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                commands[name] = sorted(o for a in sub._actions for o in a.option_strings)
    cases = "\n".join(f'        {name}) opts="{" ".join(flags)}" ;;'
                      for name, flags in sorted(commands.items()))
    script = f"""_btar() {{
    local cur cmd opts i
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    cmd=""
    for ((i=1; i<COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            --config) ((i++)) ;;
            -*) ;;
            *) cmd="${{COMP_WORDS[i]}}"; break ;;
        esac
    done
    if [ -z "$cmd" ]; then
        COMPREPLY=($(compgen -W "{' '.join(sorted(commands))} --config --help --version" \
            -- "$cur"))
        return
    fi
    case "$cmd" in
{cases}
        *) opts="" ;;
    esac
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}}
complete -o default -F _btar btar
"""
    if shell == "zsh":
        script = "autoload -U +X bashcompinit && bashcompinit\n" + script
    return script


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="btar", description=(
        "Copy database backups to an additional region of the same cloud, keep a catalog of "
        "what is where, measure the lag and know what each region can restore."))
    parser.add_argument("--version", action="version", version=f"btar {__version__}")
    parser.add_argument("--config", metavar="PATH",
                        help="configuration file (default: $BTAR_CONFIG or ./btar.toml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def add(name: str, handler: Callable[..., int], text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text,
                           epilog=f"example:\n  {EXAMPLES[name]}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(handler=handler)
        return p

    def json_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print JSON")

    p = add("init", cmd_init, "write a starter configuration, or a local demo world")
    p.add_argument("--demo", metavar="DIR", help="create a demo world in DIR")
    p.add_argument("--backend", choices=["local", "s3", "gcs", "azure"], default="local",
                   help="where the demo's regions live (default: folders under DIR); the "
                   "cloud ones write into existing buckets btar-demo-<region>")
    p.add_argument("--endpoint", metavar="URL",
                   help="an S3-compatible endpoint, a GCS emulator or an Azurite base URL")
    p.add_argument("--azure-accounts", metavar="A,B",
                   help="the two storage accounts of an Azure demo (keys in "
                   "$BTAR_AZURE_KEY_<ACCOUNT>)")
    p = add("status", cmd_status, "services, their regions, state, lag and window")
    json_flag(p)
    p = add("backups", cmd_backups, "base backups and log segments of a service per region")
    p.add_argument("service")
    p.add_argument("--region", help="only this region")
    json_flag(p)
    p = add("regions", cmd_regions, "the regions that qualify as a service's additional region")
    p.add_argument("service")
    json_flag(p)
    p = add("enable", cmd_enable, "replicate a service's backups to an additional region")
    p.add_argument("service")
    p.add_argument("--region", required=True)
    p = add("change-region", cmd_change, "move a service's additional region")
    p.add_argument("service")
    p.add_argument("--region", required=True)
    p = add("disable", cmd_disable, "stop replication; keep or delete the copies")
    p.add_argument("service")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--keep", action="store_true", help="keep the copies (listed as retained)")
    mode.add_argument("--delete", action="store_true", help="delete the copies (needs --yes)")
    p.add_argument("--yes", action="store_true", help="confirm --delete")
    json_flag(p)
    p = add("sync", cmd_sync, "copy pending backups; without --once, keep going until Ctrl-C")
    p.add_argument("services", nargs="*", metavar="SERVICE")
    p.add_argument("--once", action="store_true",
                   help="list each service once, copy what is pending, then exit")
    p.add_argument("--full-listing", action="store_true",
                   help="list each primary in full now (otherwise only what is new is listed "
                        "between full listings, see full_listing_interval)")
    p.add_argument("--interval", type=float,
                   help="longest wait between two listings of a service (default: "
                        "replication.poll_interval); after a listing that found work the next "
                        "comes after replication.busy_poll_interval")
    p.add_argument("--strict", action="store_true",
                   help="with --once, also exit 1 when a copy failed (a primary or a "
                        "destination that cannot be reached exits 4 without it)")
    json_flag(p)
    p.add_argument("--log-format", choices=["human", "json"],
                   help="daemon logs (default: human on a terminal, else JSON lines)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                   default="info")
    p.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve Prometheus metrics on this port while syncing")
    p.add_argument("--metrics-address", default="127.0.0.1", metavar="ADDR",
                   help="address for --metrics-port (default 127.0.0.1)")
    p = add("check", cmd_check, "health against the [alerts] thresholds: exit 0 ok, 1 warning, "
            "2 critical, one line per problem (for cron, probes and monitoring)")
    json_flag(p)
    p = add("cost", cmd_cost, "bytes stored and copied per additional region, priced")
    p.add_argument("--period", choices=[x.value for x in Period], default="month",
                   help="period for the bytes copied (default month)")
    json_flag(p)
    p = add("lag", cmd_lag, "replication lag of a service over a period")
    p.add_argument("service")
    p.add_argument("--period", choices=[x.value for x in Period], default="day")
    p.add_argument("--region", help="default: the additional region")
    json_flag(p)
    p.add_argument("--csv", action="store_true", help="print one CSV row per bucket")
    p = add("window", cmd_window, "the restorable window of each region of a service")
    p.add_argument("service")
    json_flag(p)
    p = add("events", cmd_events, "recent replication events and management actions")
    p.add_argument("--service")
    p.add_argument("--limit", type=int, default=50)
    json_flag(p)
    p = add("fork", cmd_fork, "restore a service from the copy in a region, to the latest "
            "point or a point in time inside that region's window")
    p.add_argument("service")
    p.add_argument("--region", required=True,
                   help="where the fork runs; the copy stored there is used (rule 6)")
    p.add_argument("--source-region",
                   help="the copy to restore from (must equal --region; refused otherwise)")
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--latest", action="store_true", help="the end of the region's window")
    when.add_argument("--target-time", metavar="ISO", help="a UTC time, e.g. 2026-11-26T08:00Z")
    p.add_argument("--timeline", metavar="N",
                   help="recover along this timeline (a branch `btar window` shows) instead "
                   "of the latest one")
    p.add_argument("--into", metavar="DIR", help="folder to restore into (resumable)")
    p.add_argument("--dry-run", action="store_true", help="print the plan only")
    p.add_argument("--fetch-only", action="store_true",
                   help="fetch and lay out only; do not run pgbackrest / mariadb-backup")
    p.add_argument("--start", action="store_true",
                   help="leave the database running on the fork (PostgreSQL: once it left "
                   "recovery)")
    p.add_argument("--port", type=int, help="port of the started fork (default: a free one)")
    p.add_argument("--run-as", metavar="USER",
                   help="OS user that owns the fork and runs the tools and the server "
                   "(default: you; postgres or mysql when run as root)")
    json_flag(p)
    p = add("wal-fetch", cmd_wal_fetch, "fetch one log segment from a region's copy "
            "(the restore_command of a fork)")
    p.add_argument("service")
    p.add_argument("--region", required=True)
    p.add_argument("segment", help="STREAM/SEQ or a PostgreSQL WAL file name")
    p.add_argument("destination")
    add("tui", cmd_tui, "the terminal UI: watch and manage replication, fork")
    p = add("completion", cmd_completion, "print a shell completion script")
    p.add_argument("shell", choices=["bash", "zsh"])
    # Listed for --help only: main() hands `simulate ...` to the simulator's own parser
    # (imported then, since it pulls in simpy, which the engine never imports).
    sub.add_parser("simulate", help="replay scenario files (outages, lag, restores) in "
                   "virtual time against the engine; `btar simulate --help` for its options")
    p = add("demo", cmd_demo, "a live demo on local folders: backups produced and replicated")
    p.add_argument("--dir", help="where to build the demo world (default: a temporary folder)")
    p.add_argument("--duration", type=float, default=None,
                   help="stop after this many seconds (default: until Ctrl-C)")
    p.add_argument("--interval", type=float, default=2.0,
                   help="seconds between new log segments (default 2)")
    p.add_argument("--headless", action="store_true",
                   help="print status lines instead of opening the terminal UI")
    return parser


_NO_CONFIG = {cmd_init, cmd_demo, cmd_tui, cmd_completion}


def main(argv: Sequence[str] | None = None, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    """Entry point of the `btar` console script."""
    out = out or sys.stdout
    err = err or sys.stderr
    app: Btar | None = None
    loaded: LoadedConfig | None = None
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        rest = _simulate_arguments(argv)
        if rest is not None:
            from simulator.cli import main as simulate

            return int(simulate(rest, out, err))
        args = build_parser().parse_args(argv)
        handler = args.handler
        if handler in _NO_CONFIG:
            return int(handler(args, out))
        try:
            loaded = load_config(config_path(args.config))
        except UnicodeDecodeError as error:  # load_config reads text; not every file is
            raise ConfigError(str(config_path(args.config)), "",
                              f"not UTF-8 text ({error.reason} at byte {error.start})") from None
        command = getattr(args, "command", "")
        on_copy = _progress_printer(err) if command == "sync" else None
        # One sync per catalog at a time; a deletion waits for no sync either (copies into a
        # region being deleted would be left behind).
        exclusive = command == "sync" or (command == "disable" and bool(args.delete))
        app = Btar.open(loaded, on_copy=on_copy, exclusive=exclusive)
        return int(handler(app, args, out))
    except BtarError as error:
        err.write(f"btar: {_one_line(str(error))}\n")
        return error.exit_code
    except sqlite3.DatabaseError as error:
        # The catalog went bad under a running command (open() checks what it can up front).
        path = str(loaded.catalog_path) if loaded is not None else "the catalog"
        if isinstance(error, sqlite3.OperationalError):
            err.write(f"btar: {path}: {_one_line(str(error))}\n")
            return 1
        err.write(f"btar: {CatalogDamaged(path, _one_line(str(error)))}\n")
        return CatalogDamaged.exit_code
    except KeyboardInterrupt:
        err.write("btar: interrupted; run the same command again to continue\n")
        return 130
    finally:
        if app is not None:
            app.close()


def _one_line(text: str) -> str:
    """Messages are one line: a hostile value with newlines cannot forge more output."""
    return " ".join(text.splitlines())


def _simulate_arguments(argv: list[str]) -> list[str] | None:
    """Everything after `simulate`, untouched: its flags (--help, --swarm ...) belong to the
    simulator's own parser, which argparse's sub-commands would otherwise claim."""
    index = 0
    while index < len(argv) and argv[index] in ("--config",):
        index += 2
    if index < len(argv) and argv[index].startswith("--config="):
        index += 1
    if index < len(argv) and argv[index] == "simulate":
        return argv[index + 1:]
    return None


def _progress_printer(err: TextIO) -> Callable[[CopyProgress], None] | None:
    if not err.isatty():
        return None

    def show(p: CopyProgress) -> None:
        err.write(f"\r  copying {p.done}/{p.total} objects, "
                  f"{p.bytes_done / 1e6:.1f}/{p.bytes_total / 1e6:.1f} MB ")
        if p.done == p.total:
            err.write("\n")
        err.flush()

    return show


if __name__ == "__main__":
    raise SystemExit(main())

"""Commands that report: status, backups, health, cost, lag, windows and events."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, TextIO

from engine.cli.commands import Command
from engine.cli.output import (
    Record,
    duration,
    json_flag,
    json_text,
    print_json,
    service_and_json,
    table,
    to_jsonable,
    when,
)
from engine.model import iso
from engine.units import byte_size

if TYPE_CHECKING:  # each command imports what it runs on when it runs (engine.cli.program)
    from engine.api import Btar, ServiceStatus
    from engine.lag import LagBucket


class _Periods:
    """The names of engine.lag's periods, the choices of --period: looked up when argparse
    checks or shows them, so that building the parser (every command) imports no lag
    statistics."""

    def __iter__(self) -> Iterator[str]:
        from engine.lag import Period

        return iter([period.value for period in Period])

    def __contains__(self, name: object) -> bool:
        return name in list(self)


def cmd_status(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    statuses = app.status()
    settings = app.settings
    streams = {"concurrency": settings.concurrency, "base_streams": settings.base_stream_limit}
    if args.json:
        # print_json's text, made by json_text in one pass and written once: at a thousand
        # services the document is some 60,000 values.
        out.write(json_text({"services": [
            Record(s, {"backlog": s.backlog, "primary_fault": s.primary_fault,
                       "state_line": s.state_line}) for s in statuses],
            "streams": streams}) + "\n")
        return 0
    rows = [["SERVICE", "TYPE", "PRIMARY", "ADDITIONAL", "STATE", "LAG", "PRIMARY LISTED",
             "BACKLOG (LOG / BASE)", "WINDOW END (SECONDARY)"]]
    for s in statuses:
        listed = "-" if s.staleness_seconds is None else f"{duration(s.staleness_seconds)} ago"
        # A reason is printed once, under the table, with the region's fault class.
        rows.append([s.name, s.type, s.primary_region, s.additional_region or "-", s.short_state,
                     duration(s.current_lag_seconds), listed, _backlog(s), _secondary_end(s)])
    table(rows, out)
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
    return " / ".join(f"{lanes[lane].items} ({byte_size(lanes[lane].bytes)})" if lane in lanes
                      else "0" for lane in ("log", "base"))


def _secondary_end(status: ServiceStatus) -> str:
    for region in status.regions:
        if region.region == status.additional_region:
            return when(region.window.end)
    return "-"


def cmd_backups(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    rows_ = app.backups(args.service, args.region)
    if args.json:
        print_json({"service": args.service, "items": rows_}, out)
        return 0
    rows = [["REGION", "KIND", "ITEM", "END", "SIZE", "STATUS", "LAG"]]
    for item in rows_:
        rows.append([item.region, item.kind.value, item.item_id, when(item.end_time),
                     str(item.size), item.status.value + (f" ({item.reason})" if item.reason
                                                          else ""),
                     duration(item.lag_seconds)])
    table(rows, out)
    return 0


def cmd_check(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    from engine.alerts import exit_code
    from engine.operations import check

    problems = check(app, app.alerts, app.now())
    if args.json:
        print_json({"status": ["ok", "warning", "critical"][exit_code(problems)],
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
    from engine.lag import Period
    from engine.operations import cost_report

    rows_ = cost_report(app, app.prices, Period(args.period), app.now())
    currency = app.prices.currency
    if args.json:
        print_json({"currency": currency, "period": args.period, "regions": rows_}, out)
        return 0
    rows = [["SERVICE", "REGION", "ROLE", "STORED", f"{currency}/MONTH",
             f"COPIED ({args.period})", currency]]
    for r in rows_:
        rows.append([r.service, r.region, r.role, byte_size(r.bytes_stored),
                     f"{r.storage_cost_month:.4f}", byte_size(r.bytes_transferred),
                     f"{r.transfer_cost:.4f}"])
    table(rows, out)
    total = sum(r.storage_cost_month for r in rows_)
    out.write(f"storage in additional regions: {total:.4f} {currency} per month "
              "(prices from [cost] in the configuration, else documented examples)\n")
    return 0


def cmd_lag(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    from engine.lag import Period

    report = app.lag(args.service, Period(args.period), args.region)
    if args.json:
        # The items are the chart's input: a year of one-minute WAL is half a million of them.
        print_json({k: v for k, v in to_jsonable(report).items() if k != "items"}, out)
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
              f"({when(report.start)} .. {when(report.end)})\n")
    out.write(f"current lag {duration(report.current_lag_seconds)}; {s.count} items: "
              f"p50 {duration(s.p50)}, p95 {duration(s.p95)}, p99 {duration(s.p99)}, "
              f"max {duration(s.max)}\n")
    if out.isatty():
        out.write(lag_chart(report.buckets))
        return 0
    rows = [["FROM", "ITEMS", "P50", "MAX"]]
    for bucket in report.buckets:
        if bucket.stats.count:
            rows.append([when(bucket.start), str(bucket.stats.count),
                         duration(bucket.stats.p50), duration(bucket.stats.max)])
    table(rows, out)
    return 0


def lag_chart(buckets: Sequence[LagBucket], width: int = 40) -> str:
    """A horizontal bar per bucket: p50 in full blocks, up to the max in light shade."""
    peak = max((b.stats.max or 0.0 for b in buckets), default=0.0) or 1.0
    lines = []
    for bucket in buckets:
        p50, top = bucket.stats.p50 or 0.0, bucket.stats.max or 0.0
        solid = round(p50 / peak * width)
        shade = max(0, round(top / peak * width) - solid)
        label = duration(bucket.stats.max) if bucket.stats.count else "-"
        lines.append(f"{when(bucket.start)} {'█' * solid}{'░' * shade} {label}")
    return "\n".join(lines) + "\n"


def cmd_window(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    from engine.timelines import view_as_json

    views = app.timeline_views(args.service)
    if args.json:
        print_json({"service": args.service,
                     "regions": [view_as_json(to_jsonable(v.window), v) for v in views]}, out)
        return 0
    rows = [["REGION", "ROLE", "TIMELINE", "START", "END", "GAPS"]]
    for view in views:
        w = view.window
        rows.append([w.region, w.role.value, view.followed or "-", when(w.start), when(w.end),
                     str(max(0, len(w.intervals) - 1))])
        for branch in view.branches:
            if branch.followed:
                continue
            start = branch.intervals[0].start if branch.intervals else None
            end = branch.intervals[-1].end if branch.intervals else None
            rows.append(["", "  branch", f"{branch.timeline} (--timeline)", when(start),
                         when(end), str(max(0, len(branch.intervals) - 1))])
    table(rows, out)
    followed = {v.followed for v in views if v.followed and len(v.branches) > 1}
    if followed:
        out.write(f"forks follow timeline {', '.join(sorted(followed))} (the latest); a branch "
                  "is restored only with --timeline\n")
    return 0


def cmd_events(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    events = app.events(args.limit, args.service)
    if args.json:
        print_json({"events": events}, out)
        return 0
    for e in events:
        out.write(f"{when(e.at)} {e.level:<7} {e.service} {e.region}: {e.message}\n")
    return 0



def _backups_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("service")
    p.add_argument("--region", help="only this region")
    json_flag(p)


def _cost_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--period", choices=_Periods(), default="month",
                   help="period for the bytes copied (default month)")
    json_flag(p)


def _lag_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("service")
    p.add_argument("--period", choices=_Periods(), default="day")
    p.add_argument("--region", help="default: the additional region")
    json_flag(p)
    p.add_argument("--csv", action="store_true", help="print one CSV row per bucket")


def _events_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--service")
    p.add_argument("--limit", type=int, default=50)
    json_flag(p)


COMMANDS = [
    Command("status", "services, their regions, state, lag and window",
            "btar status --json | jq '.services[] | {name, state}'", json_flag,
            with_app=cmd_status, config_parts=frozenset(), reads_and_ends=True),
    Command("backups", "base backups and log segments of a service per region",
            "btar backups orders --region aws-eu-central-1", _backups_arguments,
            with_app=cmd_backups, config_parts=frozenset(), reads_and_ends=True),
    Command("check", "health against the [alerts] thresholds: exit 0 ok, 1 warning, "
            "2 critical, one line per problem (for cron, probes and monitoring)",
            "btar check || echo 'paged'", json_flag, with_app=cmd_check,
            config_parts=frozenset({"thresholds"}), reads_and_ends=True),
    Command("cost", "bytes stored and copied per additional region, priced",
            "btar cost --period month", _cost_arguments, with_app=cmd_cost,
            config_parts=frozenset({"prices"}), reads_and_ends=True),
    Command("lag", "replication lag of a service over a period",
            "btar lag orders --period week --csv > lag.csv", _lag_arguments, with_app=cmd_lag,
            config_parts=frozenset(), reads_and_ends=True),
    Command("window", "the restorable window of each region of a service",
            "btar window orders --json", service_and_json, with_app=cmd_window,
            config_parts=frozenset(), reads_and_ends=True),
    Command("events", "recent replication events and management actions",
            "btar events --service orders --limit 20", _events_arguments,
            with_app=cmd_events, config_parts=frozenset(), reads_and_ends=True),
]

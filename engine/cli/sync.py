"""`btar sync`: one pass, or the daemon."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from engine.cli.commands import Command
from engine.cli.output import json_flag, print_json
from engine.errors import RegionsUnreachable

if TYPE_CHECKING:  # each command imports what it runs on when it runs (engine.cli.program)
    from engine.api import Btar
    from engine.runtime import CopyProgress


def cmd_sync(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    if not args.once:
        return _sync_daemon(app, args)
    started = app.now()
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
    from engine.findings import findings_of

    holes, refused = findings_of(app, [o.service for o in outcomes], started)
    if args.json:
        print_json({"passes": outcomes, "holes": [h.message for h in holes],
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


def progress_printer(err: TextIO) -> Callable[[CopyProgress], None] | None:
    if not err.isatty():
        return None

    def show(p: CopyProgress) -> None:
        err.write(f"\r  copying {p.done}/{p.total} objects, "
                  f"{p.bytes_done / 1e6:.1f}/{p.bytes_total / 1e6:.1f} MB ")
        if p.done == p.total:
            err.write("\n")
        err.flush()

    return show



def _sync_arguments(p: argparse.ArgumentParser) -> None:
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


COMMANDS = [
    # One sync per catalog at a time.
    Command("sync", "copy pending backups; without --once, keep going until Ctrl-C",
            "btar sync --metrics-port 9477 --log-format json   # or: btar sync --once",
            _sync_arguments, with_app=cmd_sync, exclusive=lambda args: True,
            shows_progress=True, config_parts=frozenset({"locations", "retention"})),
]

"""Commands that manage a service's additional region, and `btar init`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from engine.cli.commands import Command
from engine.cli.output import json_flag, print_json, service_and_json, table
from engine.errors import BadInput

if TYPE_CHECKING:  # each command imports what it runs on when it runs (engine.cli.program)
    from engine.api import Btar
    from engine.config import ConfigPart


def cmd_init(args: argparse.Namespace, out: TextIO) -> int:
    from engine.config import config_path
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


def cmd_regions(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    from engine.regions import distance_km, get_region

    service = app.service(args.service)
    primary = get_region(service.region)
    offered = app.offered_regions(args.service)
    if args.json:
        print_json({"service": service.name, "regions": [
            {"region": r.id, "name": r.name, "distance_km": round(distance_km(primary, r)),
             "configured": configured} for r, configured in offered]}, out)
        return 0
    rows = [["REGION", "NAME", "DISTANCE", "LOCATION"]]
    for region, configured in offered:
        rows.append([region.id, region.name, f"{distance_km(primary, region):.0f} km",
                     "configured" if configured else "-"])
    table(rows, out)
    return 0


def cmd_enable(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    app.enable(args.service, args.region)
    out.write(f"{args.service}: backups now replicate to {args.region}; "
              "run `btar sync` to copy them\n")
    _warn_if_unusable(app, args.service, args.region)
    return 0


def cmd_change(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    old = app.additional_region(args.service)
    app.change_region(args.service, args.region)
    out.write(f"{args.service}: additional region is now {args.region}; {old} keeps "
              "replicating until it can restore\n")
    _warn_if_unusable(app, args.service, args.region)
    return 0


def _warn_if_unusable(app: Btar, service: str, region: str) -> None:
    """Say at once when the new region's location cannot be used (the change stands:
    its copies wait, and start by themselves once it can)."""
    problem = app.location_problem(service, region)
    if problem:
        sys.stderr.write(f"btar: warning: {region} cannot be used now: {problem}. "
                         f"{service}'s copies wait until it can; `btar status` shows it\n")


def cmd_disable(app: Btar, args: argparse.Namespace, out: TextIO) -> int:
    outcome = app.disable(args.service, keep=args.keep, delete=args.delete, confirmed=args.yes)
    if args.json:
        print_json(outcome, out)
    elif outcome.mode == "keep":
        out.write(f"{args.service}: replication stopped; copies in "
                  f"{', '.join(outcome.regions)} are retained\n")
    else:
        out.write(f"{args.service}: replication stopped; deleted {outcome.deleted_objects} "
                  f"objects in {', '.join(outcome.regions)}\n")
    return 0



def _init_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--demo", metavar="DIR", help="create a demo world in DIR")
    p.add_argument("--backend", choices=["local", "s3", "gcs", "azure"], default="local",
                   help="where the demo's regions live (default: folders under DIR); the "
                   "cloud ones write into existing buckets btar-demo-<region>")
    p.add_argument("--endpoint", metavar="URL",
                   help="an S3-compatible endpoint, a GCS emulator or an Azurite base URL")
    p.add_argument("--azure-accounts", metavar="A,B",
                   help="the two storage accounts of an Azure demo (keys in "
                   "$BTAR_AZURE_KEY_<ACCOUNT>)")


def _service_and_region(p: argparse.ArgumentParser) -> None:
    p.add_argument("service")
    p.add_argument("--region", required=True)


def _disable_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("service")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--keep", action="store_true", help="keep the copies (listed as retained)")
    mode.add_argument("--delete", action="store_true", help="delete the copies (needs --yes)")
    p.add_argument("--yes", action="store_true", help="confirm --delete")
    json_flag(p)


#: what changing a service's regions reads of the configuration
_MANAGES: frozenset[ConfigPart] = frozenset({"locations", "retention"})

COMMANDS = [
    Command("init", "write a starter configuration, or a local demo world",
            "btar init --demo ./demo && export BTAR_CONFIG=./demo/btar.toml",
            _init_arguments, standalone=cmd_init),
    Command("regions", "the regions that qualify as a service's additional region",
            "btar regions orders", service_and_json, with_app=cmd_regions,
            config_parts=frozenset({"locations"})),
    Command("enable", "replicate a service's backups to an additional region",
            "btar enable orders --region aws-eu-central-1", _service_and_region,
            with_app=cmd_enable, config_parts=_MANAGES),
    Command("change-region", "move a service's additional region",
            "btar change-region orders --region aws-eu-north-1", _service_and_region,
            with_app=cmd_change, config_parts=_MANAGES),
    # A deletion waits for no sync either: copies into a region being deleted would be left
    # behind.
    Command("disable", "stop replication; keep or delete the copies",
            "btar disable orders --keep      # or: --delete --yes", _disable_arguments,
            with_app=cmd_disable, exclusive=lambda args: bool(args.delete),
            config_parts=_MANAGES),
]

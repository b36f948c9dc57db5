"""The commands the terminal UI contributes to `btar` (entry-point group ``btar.commands``):
`btar tui` and `btar demo`. Imported whenever the parser is built, so textual is imported
only when one of them runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from engine.cli.commands import Command


def cmd_tui(args: argparse.Namespace, out: TextIO) -> int:
    from btar_tui.app import run_tui
    from engine.config import config_path  # pydantic: not for building the parser

    return int(run_tui(config_path(args.config)))


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    root = Path(args.dir) if args.dir else None
    if not args.headless and sys.stdout.isatty() and sys.stdin.isatty():
        from btar_tui.app import run_demo_tui

        return int(run_demo_tui(root, interval=args.interval, duration=args.duration))
    from engine.demo import run_demo

    return run_demo(root, duration=args.duration, interval=args.interval, out=out)


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", help="where to build the demo world (default: a temporary folder)")
    p.add_argument("--duration", type=float, default=None,
                   help="stop after this many seconds (default: until Ctrl-C)")
    p.add_argument("--interval", type=float, default=2.0,
                   help="seconds between new log segments (default 2)")
    p.add_argument("--headless", action="store_true",
                   help="print status lines instead of opening the terminal UI")


def commands() -> list[Command]:
    """What the terminal UI adds to the command line."""
    return [
        Command("tui", "the terminal UI: watch and manage replication, fork",
                "btar tui --config ./demo/btar.toml", standalone=cmd_tui),
        Command("demo", "a live demo on local folders: backups produced and replicated",
                "btar demo --headless --duration 30", _demo_arguments, standalone=cmd_demo),
    ]

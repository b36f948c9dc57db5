"""The `btar` command line (engine.cli.program); commands per group in manage, status, sync and
restore; the fronts contribute theirs through the ``btar.commands`` entry points."""

from engine.cli.program import build_parser, main

__all__ = ["build_parser", "main"]

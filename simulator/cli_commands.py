"""The command the simulator contributes to `btar` (entry-point group ``btar.commands``):
`btar simulate`, with its own parser. simpy is imported only when it runs."""

from __future__ import annotations

from typing import TextIO

from engine.cli.commands import Command


def _simulate(rest: list[str], out: TextIO, err: TextIO) -> int:
    from simulator.cli import main

    return int(main(rest, out, err))


def commands() -> list[Command]:
    """What the simulator adds to the command line."""
    return [Command("simulate", "replay scenario files (outages, lag, restores) in virtual "
                    "time against the engine; `btar simulate --help` for its options",
                    "btar simulate scenarios/steady-replication.btar.toml",
                    own_parser=_simulate)]

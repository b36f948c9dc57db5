"""What a command of the `btar` command line is, and where commands come from.

The engine contributes its own commands; the packages that own a front contribute theirs
(`btar tui` and `btar demo` from btar_tui, `btar simulate` from simulator) through the
``btar.commands`` entry-point group, so that the engine never imports a front. An entry point
names a function that returns a list of :class:`Command`; it is loaded when the parser is
built, so a registering module must import nothing heavy (textual, simpy) at import time.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from engine.api import Btar
    from engine.config import ConfigPart

ENTRY_POINT_GROUP = "btar.commands"

#: runs a command that needs no configuration: (args, out) -> exit code
Standalone = Callable[[argparse.Namespace, TextIO], int]
#: runs a command against the opened installation: (app, args, out) -> exit code
WithApp = Callable[["Btar", argparse.Namespace, TextIO], int]
#: runs a command that parses its own arguments: (rest of argv, out, err) -> exit code
OwnParser = Callable[[list[str], TextIO, TextIO], int]


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """A command without arguments of its own."""


@dataclass(frozen=True)
class Command:
    """One sub-command: its name, help, an example for its --help, its arguments and how it
    runs. Exactly one of ``with_app``, ``standalone`` and ``own_parser`` is set."""

    name: str
    help: str
    example: str
    arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    with_app: WithApp | None = None
    standalone: Standalone | None = None
    #: the command takes the rest of the command line as it is (its own parser, its own
    #: --help): argparse's sub-commands would otherwise claim flags such as --help
    own_parser: OwnParser | None = None
    #: the installation is opened for this command alone (one sync per catalog at a time)
    exclusive: Callable[[argparse.Namespace], bool] = lambda args: False
    #: copy progress is shown on a terminal
    shows_progress: bool = False
    #: what the command reads of its configuration beyond its services, catalog and
    #: replication settings (engine.config.ConfigPart; a command of the fronts is taken to
    #: read all of it). Those engine.config reads a plain file without the models for (the
    #: locations, the retention) cost nothing; for the others (thresholds, prices) the
    #: models are built while the command sets up, with the cycle collector off
    #: (engine.config.LoadedConfig.prepare). A file is valid once loaded, whatever is read.
    config_parts: frozenset[ConfigPart] = frozenset(
        {"locations", "retention", "thresholds", "prices"})
    #: the command reads, prints once and ends: run as the program, it runs with Python's
    #: cycle collector off (engine.cli.program._SetUp), since all it makes lives until it
    #: prints (`btar status` at a thousand services: some 90 collections, 12 ms, nothing freed)
    reads_and_ends: bool = False

    def __post_init__(self) -> None:
        runners = [r for r in (self.with_app, self.standalone, self.own_parser) if r]
        if len(runners) != 1:
            raise ValueError(f"command {self.name!r} needs exactly one way to run")


def contributed() -> list[Command]:
    """The commands that installed packages contribute through the entry-point group."""
    # Imported here: importlib.metadata, and the scan of every installed distribution's
    # entry points, are for a line that names no engine command (see program.main).
    from importlib.metadata import entry_points

    found: list[Command] = []
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        provide: Callable[[], Sequence[Any]] = point.load()
        found.extend(c for c in provide() if isinstance(c, Command))
    return found

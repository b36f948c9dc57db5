"""The `btar` command line: the composition root. It gathers the engine's commands and those
the fronts contribute (engine.cli.commands), parses, opens the installation when a command
needs it, and turns every BtarError into one line and its exit code."""

from __future__ import annotations

import argparse
import gc
import sqlite3
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn, TextIO

from engine import __version__
from engine.cli import manage, restore, status, sync
from engine.cli.commands import Command, contributed
from engine.errors import BadInput, BtarError, CatalogDamaged, ConfigError

if TYPE_CHECKING:
    from engine.api import Btar
    from engine.config import LoadedConfig


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise BadInput(f"{self.prog}: {message} (see {self.prog} --help)")


def cmd_completion(args: argparse.Namespace, out: TextIO) -> int:
    out.write(completion_script(build_parser(), args.shell))
    return 0


def _completion_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("shell", choices=["bash", "zsh"])


COMPLETION = Command("completion", "print a shell completion script",
                     'eval "$(btar completion bash)"', _completion_arguments,
                     standalone=cmd_completion)


def engine_commands() -> list[Command]:
    """The engine's own commands, in the order --help lists them."""
    return [*manage.COMMANDS[:1], *status.COMMANDS[:2], *manage.COMMANDS[1:],
            *sync.COMMANDS, *status.COMMANDS[2:], *restore.COMMANDS, COMPLETION]


def commands() -> list[Command]:
    """Every command, in the order --help lists them: the engine's, then the fronts'."""
    own = engine_commands()
    return [*own[:-1], *contributed(), own[-1]]


def commands_for(argv: Sequence[str]) -> list[Command]:
    """The commands the parser of this line needs: the engine's alone when the line names
    one of them (a front cannot contribute a command of the same name: argparse refuses a
    second sub-command of a name), else every command. Looking up the fronts' entry points
    (importlib.metadata, every installed distribution's metadata read) is some 30 ms of a
    `btar status` that needs none of them."""
    own = engine_commands()
    name = _command_word(argv)
    if name is not None and any(command.name == name for command in own):
        return own
    return commands()


def build_parser(available: Sequence[Command] | None = None,
                 only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command (``available``, default all); with ``only``, the name
    the line gives, that command's arguments alone are built, the others listed by name and
    help as --help shows them: some fifty arguments, each with a help formatter made for it
    by argparse, are no part of `btar status`."""
    parser = _Parser(prog="btar", description=(
        "Copy database backups to an additional region of the same cloud, keep a catalog of "
        "what is where, measure the lag and know what each region can restore."))
    parser.add_argument("--version", action="version", version=f"btar {__version__}")
    parser.add_argument("--config", metavar="PATH",
                        help="configuration file (default: $BTAR_CONFIG or ./btar.toml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for command in available if available is not None else commands():
        if command.own_parser is not None or (only is not None and command.name != only):
            # Listed for --help only: main() hands the rest of the line to a command with
            # its own parser untouched, and a line names one command.
            sub.add_parser(command.name, help=command.help)
            continue
        p = sub.add_parser(command.name, help=command.help, description=command.help,
                           epilog=f"example:\n  {command.example}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        command.arguments(p)
        p.set_defaults(spec=command)
    return parser


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """A bash completion function for every command and its flags (zsh via bashcompinit)."""
    flags_of: dict[str, list[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                flags_of[name] = sorted(o for a in sub._actions for o in a.option_strings)
    cases = "\n".join(f'        {name}) opts="{" ".join(flags)}" ;;'
                      for name, flags in sorted(flags_of.items()))
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
        COMPREPLY=($(compgen -W "{' '.join(sorted(flags_of))} --config --help --version" \
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


def main(argv: Sequence[str] | None = None, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    """Entry point of the `btar` console script."""
    out = out or sys.stdout
    err = err or sys.stderr
    app: Btar | None = None
    loaded: LoadedConfig | None = None
    setting_up = _SetUp(the_program=argv is None)
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        available = commands_for(argv)
        handed = _own_parser_call(argv, available)
        if handed is not None:
            command, rest = handed
            assert command.own_parser is not None
            setting_up.done()
            return int(command.own_parser(rest, out, err))
        args = build_parser(available, only=_command_word(argv)).parse_args(argv)
        command = args.spec
        if command.standalone is not None:
            setting_up.done()
            return int(command.standalone(args, out))
        assert command.with_app is not None
        # Imported here, not at the top: building the parser (--help, --version, init,
        # completion) must not pay for the engine, nor for the configuration's validation.
        from engine.api.btar import Btar
        from engine.config import config_path, load_config

        try:
            loaded = load_config(config_path(args.config))
        except UnicodeDecodeError as error:  # load_config reads text; not every file is
            raise ConfigError(str(config_path(args.config)), "",
                              f"not UTF-8 text ({error.reason} at byte {error.start})") from None
        # The models, if the command reads what a file read plain does not give: made
        # here, with the cycle collector off (_SetUp), rather than when first asked for.
        loaded.prepare(command.config_parts)
        on_copy = sync.progress_printer(err) if command.shows_progress else None
        app = Btar.open(loaded, on_copy=on_copy, exclusive=command.exclusive(args))
        setting_up.done(ends_after=command.reads_and_ends)
        return int(command.with_app(app, args, out))
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
        setting_up.done()
        if app is not None:
            app.close()


class _SetUp:
    """Python's cycle collector, off while a command sets up. Importing the engine and
    pydantic and loading a configuration of a thousand services make some 40,000 container
    objects that all live until the command ends: the collector runs about a hundred times
    over them and frees nothing (measured: `btar status --json` and `btar check` at a
    thousand services take some 8 % less CPU without it). It is on again, as it was, for the
    command's own work; run as the program, what was set up is also frozen (gc.freeze: left
    out of every later collection), and a command that reads, prints and ends
    (Command.reads_and_ends) keeps it off to its end. A caller of main() in its own
    process, a test, is spared both."""

    def __init__(self, *, the_program: bool) -> None:
        self._the_program = the_program
        self._collecting = gc.isenabled()
        self._setting_up = True
        gc.disable()

    def done(self, *, ends_after: bool = False) -> None:
        """Set up: the collector as it was (``ends_after``: off, run as the program)."""
        if not self._setting_up:
            return
        self._setting_up = False
        if not self._collecting:
            return
        if self._the_program:
            gc.freeze()
            if ends_after:
                return
        gc.enable()


def _one_line(text: str) -> str:
    """Messages are one line: a hostile value with newlines cannot forge more output."""
    return " ".join(text.splitlines())


def _command_index(argv: Sequence[str]) -> int:
    """Where the command's name stands on the line: after the global --config, if given."""
    index = 0
    while index < len(argv) and argv[index] in ("--config",):
        index += 2
    if index < len(argv) and argv[index].startswith("--config="):
        index += 1
    return index


def _command_word(argv: Sequence[str]) -> str | None:
    index = _command_index(argv)
    return argv[index] if index < len(argv) else None


def _own_parser_call(argv: list[str],
                     available: Sequence[Command]) -> tuple[Command, list[str]] | None:
    """The command with its own parser named on this line, and everything after it,
    untouched: its flags (--help, --swarm ...) belong to that parser."""
    index = _command_index(argv)
    if index < len(argv):
        for command in available:
            if command.own_parser is not None and argv[index] == command.name:
                return command, argv[index + 1:]
    return None

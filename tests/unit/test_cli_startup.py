"""What starting `btar` costs is what it imports: the command line imports a command's
modules, the engine and its libraries only when that command runs (issue 17, target 3: a
command at fleet size is mostly Python starting). Checked by the modules loaded in a fresh
interpreter, never by time."""

from __future__ import annotations

import gc
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.catalog import Catalog
from engine.cli.program import main

#: what no command needs before it runs: validation, the catalog's library, cloud SDKs, and
#: the engine behind the application API
HEAVY = ["pydantic", "sqlite_utils", "boto3", "botocore", "engine.api.btar", "engine.catalog",
         "engine.config", "engine.scheduler", "engine.runtime"]


def _loaded_after(code: str) -> list[str]:
    """The modules (of HEAVY, and their submodules) a fresh interpreter holds after ``code``."""
    probe = (f"import sys\n{code}\n"
             "import json\n"
             f"heavy = {HEAVY!r}\n"
             "print(json.dumps(sorted(m for m in sys.modules\n"
             "                        if any(m == h or m.startswith(h + '.') for h in heavy))))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    loaded: list[str] = json.loads(result.stdout)
    return loaded


def _command_loads(argv: list[str], watched: tuple[str, ...]) -> tuple[int, list[str]]:
    """Run `btar ARGV` in a fresh interpreter: its exit code, and which of ``watched`` it
    imported."""
    probe = ("import io, json, sys\nfrom engine.cli.program import main\n"
             f"code = main({argv!r}, io.StringIO(), io.StringIO())\n"
             f"print(json.dumps([code, sorted(m for m in {watched!r} if m in sys.modules)]))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    code, loaded = json.loads(result.stdout)
    return code, loaded


def test_importing_the_command_line_imports_no_engine_part_and_no_library() -> None:
    assert _loaded_after("import engine.cli.program") == []


def test_the_application_api_imports_a_name_when_it_is_asked_for() -> None:
    assert _loaded_after("import engine.api") == []
    loaded = _loaded_after("from engine.api import ServiceState")
    assert "engine.api.btar" not in loaded


def test_the_application_api_still_has_every_name() -> None:
    import engine.api

    for name in engine.api.__all__:
        assert getattr(engine.api, name) is not None
    assert set(engine.api.__all__) <= set(dir(engine.api))


def test_reading_the_catalog_makes_no_sqlite_utils_database(tmp_path: Path) -> None:
    """sqlite_utils (and its plugins) serve writes and migrations; a command that reads
    the fleet's status goes through the plain connection."""
    Catalog.open(tmp_path / "btar.sqlite").close()  # created and migrated
    catalog = Catalog.open(tmp_path / "btar.sqlite")
    try:
        catalog.locations_by_service()
        catalog.reachability_by_service()
        catalog.region_counts()
        catalog.chain_marks()
        catalog.runs_by_region()
        assert catalog.schema_version > 0
        assert catalog._db is None
    finally:
        catalog.close()


def test_main_called_in_a_process_leaves_the_cycle_collector_as_it_was(tmp_path: Path) -> None:
    """main() turns the collector off while a command sets up; a caller in its own process
    (these tests) gets it back on, and nothing of its own frozen."""
    frozen = gc.get_freeze_count()
    out, err = io.StringIO(), io.StringIO()
    assert main(["completion", "bash"], out, err) == 0
    assert main(["--config", str(tmp_path / "missing.toml"), "status"], out, err) != 0
    with pytest.raises(SystemExit):
        main(["--version"], out, err)
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen
    gc.disable()
    try:
        main(["completion", "bash"], out, err)
        assert not gc.isenabled()  # off it was, off it stays
    finally:
        gc.enable()


def test_status_of_a_plain_configuration_imports_no_validation_and_no_fronts(
        tmp_path: Path) -> None:
    """`btar status` reads its catalog: pydantic (the configuration's models), the fronts'
    entry points (importlib.metadata), sqlite_utils, what forks, schedules and checks, and
    the live driver (it reads only the time: engine.api.live) are no part of it (once the
    catalog exists: creating it is a write)."""
    folder = tmp_path / "west"
    folder.mkdir()
    config = tmp_path / "btar.toml"
    config.write_text(f'[regions]\naws-eu-west-1 = "file://{folder}"\n\n[[services]]\n'
                      'name = "orders"\ntype = "postgresql"\nregion = "aws-eu-west-1"\n')
    assert main(["--config", str(config), "status"], io.StringIO(), io.StringIO()) == 0
    assert _command_loads(
        ["--config", str(config), "status", "--json"],
        ("pydantic", "importlib.metadata", "sqlite_utils", "engine.scheduler", "engine.fork",
         "engine.restore", "engine.alerts", "engine.storage.locations", "engine.runtime",
         "engine.effects", "engine.lag", "importlib.resources")) == (0, [])


def test_sync_of_a_plain_configuration_imports_no_validation(tmp_path: Path) -> None:
    """`btar sync` opens its locations, made from the plain reading of a plain file: pydantic
    (the configuration's models, the thresholds' and prices') is no part of it."""
    west, central = tmp_path / "west", tmp_path / "central"
    (west / "orders").mkdir(parents=True)
    central.mkdir()
    (west / "orders" / "notes.txt").write_text("not a backup")
    config = tmp_path / "btar.toml"
    config.write_text(f'[regions]\naws-eu-west-1 = "file://{west}"\naws-eu-central-1 = '
                      f'{{ url = "file://{central}", copy_mode = "stream" }}\n\n'
                      '[[services]]\nname = "orders"\ntype = "postgresql"\n'
                      'region = "aws-eu-west-1"\n')
    assert main(["--config", str(config), "enable", "orders", "--region", "aws-eu-central-1"],
                io.StringIO(), io.StringIO()) == 0
    assert _command_loads(
        ["--config", str(config), "sync", "--once", "--json"],
        ("pydantic", "engine.config_schema", "engine.storage.location_schema",
         "engine.alerts", "engine.cost", "engine.storage.local")) == (0, ["engine.storage.local"])


def test_a_sync_that_copies_and_publishes_writes_without_sqlite_utils(tmp_path: Path) -> None:
    """sqlite_utils (with its plugins, some 0.1 s to import) serves the catalog's migrations
    only: a `btar sync` that copies, publishes and records events never imports it."""
    from engine.demo import create_demo

    config = create_demo(tmp_path / "demo")
    assert _command_loads(["--config", str(config), "sync", "--once", "--json"],
                          ("sqlite_utils",)) == (0, [])


def test_a_line_naming_an_engine_command_builds_the_engine_commands_only() -> None:
    from engine.cli.program import commands, commands_for, engine_commands

    own = [c.name for c in engine_commands()]
    assert [c.name for c in commands_for(["--config", "x.toml", "status"])] == own
    assert [c.name for c in commands_for(["--config=x.toml", "check", "--json"])] == own
    every = [c.name for c in commands()]
    assert set(own) < set(every)  # the fronts contribute theirs (tui, demo, simulate)
    for line in ([], ["--version"], ["--help"], ["tui"], ["--config", "x.toml", "demo"]):
        assert [c.name for c in commands_for(line)] == every


def test_a_parser_built_for_the_command_named_helps_and_parses_as_the_whole_one() -> None:
    """main() builds the arguments of the command a line names only: the others are listed
    by name and help, which is all that --help shows of them."""
    from engine.cli.program import build_parser, engine_commands

    own = engine_commands()
    assert build_parser(own, only="status").format_help() == build_parser(own).format_help()
    line = ["--config", "x.toml", "lag", "orders", "--period", "week", "--csv"]
    assert vars(build_parser(own, only="lag").parse_args(line)) \
        == vars(build_parser(own).parse_args(line))

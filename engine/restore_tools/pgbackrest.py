"""pgBackRest: the plan's objects land in ``INTO/repo`` (a pgBackRest repository), with the
info files mirrored into the region (engine.mirror; or, for a backup sealed by an older btar,
the snapshot in its seal), and ``pgbackrest restore`` writes ``INTO/data``."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.errors import CorruptBackup, RuleViolation
from engine.formats.pgbackrest import (
    SEAL_FOLDER,
    info_keys,
    parse_ini,
    parse_seal,
    summarize_manifest,
)
from engine.model import iso
from engine.restore import RestorePlan
from engine.restore_tools.base import (
    InRepository,
    ToolOptions,
    ToolRun,
    pg_time,
    postgresql_runner,
    private_folder,
    recovery_reaches_past,
    recovery_timeline,
    start_or_explain,
    write_private,
)


class BackupNotInMirroredInfo(RuleViolation):
    """The backup.info mirrored into the region does not list the plan's backup (it was
    mirrored before that backup was published there), so pgBackRest would not restore it."""

    rule = 5

    def __init__(self, label: str, region: str) -> None:
        self.label = label
        self.region = region
        super().__init__(f"backup {label} is not in the backup.info mirrored to {region} yet; "
                         "run `btar sync` (it mirrors backup.info once every backup listed in "
                         "it is published there) and fork again")


class PgBackRest(InRepository):
    """Backups in the pgbackrest layout, restored by ``pgbackrest restore``."""

    def lay_out(self, plan: RestorePlan, into: Path, wal_fetch_command: list[str]) -> list[str]:
        return lay_out_pgbackrest(plan, into)

    def consistency_wal(self, plan: RestorePlan, into: Path) -> Mapping[str, object] | None:
        return read_bounds(plan, into)

    def restore(self, plan: RestorePlan, into: Path, options: ToolOptions) -> ToolRun | None:
        return restore_pgbackrest(plan, into, options)

    def next_steps(self, plan: RestorePlan, into: Path, written: Sequence[str]) -> list[str]:
        data = shlex.quote(str(into / "data"))
        command, _ = pgbackrest_restore_command(plan, into)
        return [f"restore it with: {shlex.join([*command, 'restore'])}",
                f"start it with: pg_ctl -D {data} -o '-p PORT -c archive_mode=off' start"]


def stanza_of(plan: RestorePlan) -> str:
    return plan.layout.partition(":")[2] or "main"


def base_label(plan: RestorePlan) -> str:
    return plan.base_id.removeprefix("base/")


def read_seal(plan: RestorePlan, into: Path) -> dict[str, Any]:
    """The seal of the plan's backup, as fetched into the staging repository."""
    key = f"{SEAL_FOLDER}/{stanza_of(plan)}/{base_label(plan)}.json"
    path = into / f"repo/{key}"
    try:
        return parse_seal(path.read_bytes(), key)
    except FileNotFoundError:
        raise CorruptBackup(key, "the backup's seal was not fetched") from None


def read_bounds(plan: RestorePlan, into: Path) -> dict[str, Any]:
    """The stop segment and the references of the plan's backup: from its manifest as
    fetched (pgBackRest's own record), else from its seal (older btar)."""
    folder = f"backup/{stanza_of(plan)}/{base_label(plan)}"
    for key in (f"{folder}/backup.manifest", f"{folder}/backup.manifest.copy"):
        try:
            text = (into / "repo" / key).read_text("utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as error:
            raise CorruptBackup(key, f"unreadable manifest: {error}") from None
        try:
            summary = summarize_manifest(text)
        except ValueError as error:
            raise CorruptBackup(key, str(error)) from None
        return {"archive_stop": summary.archive_stop, "references": list(summary.references)}
    return read_seal(plan, into)


def lists_backup(path: Path, label: str) -> bool:
    """Does the backup.info at ``path`` list ``label`` among its current backups?"""
    try:
        return label in parse_ini(path.read_text("utf-8")).get("backup:current", {})
    except (OSError, UnicodeDecodeError, ValueError):
        return False


def lay_out_info(plan: RestorePlan, into: Path) -> list[str]:
    """The info files of ``INTO/repo``: the region's mirrored copies, fetched with the plan
    (byte-identical to the primary's, so they need nothing written), when they list the
    backup; else the snapshot in the backup's seal (a backup sealed by an older btar)."""
    repo, label = into / "repo", base_label(plan)
    backup_info = [repo / key for key in info_keys(stanza_of(plan))[:2]
                   if (repo / key).exists()]
    # pgBackRest reads backup.info, and its .copy only when the main file is missing
    if backup_info and lists_backup(backup_info[0], label):
        return []
    sealed = (repo / SEAL_FOLDER / stanza_of(plan) / f"{label}.json").exists()
    if not sealed:
        raise BackupNotInMirroredInfo(label, plan.region)
    seal = read_seal(plan, into)
    written: list[str] = []
    for key, text in sorted(seal.get("info", {}).items()):
        path = repo / key
        private_folder(path.parent)
        write_private(path, text)
        written.append(f"repo/{key}")
    return written


def lay_out_pgbackrest(plan: RestorePlan, into: Path) -> list[str]:
    """Complete ``INTO/repo`` into a repository pgBackRest can restore from: its info files
    (pgBackRest's own bytes), and ``INTO/pgbackrest.conf``."""
    written = lay_out_info(plan, into)
    stanza = stanza_of(plan)
    config = "\n".join([
        "# written by btar fork: a staging copy of the repository in " + plan.region,
        "[global]", "repo1-type=posix", f"repo1-path={into / 'repo'}",
        f"log-path={into / 'log'}", f"lock-path={into / 'lock'}", f"spool-path={into / 'spool'}",
        "log-level-console=warn", "log-level-file=info", "",
        f"[{stanza}]", f"pg1-path={into / 'data'}", ""])
    write_private(into / "pgbackrest.conf", config)
    for folder in ("log", "lock", "spool"):
        private_folder(into / folder)
    return [*written, "pgbackrest.conf"]


def pgbackrest_restore_command(plan: RestorePlan, into: Path) -> tuple[list[str], str]:
    """The ``pgbackrest`` command (without ``--delta`` and the final ``restore``) that restores
    the fork's staging repository to the plan's point, and what its recovery does."""
    command = ["pgbackrest", f"--config={into / 'pgbackrest.conf'}",
               f"--stanza={stanza_of(plan)}", f"--set={base_label(plan)}", "--archive-mode=off"]
    # Recovery follows the plan's timeline, never another one its archive happens to hold:
    # the window the plan was checked against is that timeline's.
    timeline = recovery_timeline(plan)
    along = [f"--target-timeline={timeline}"] if timeline != "latest" else []
    follows = f" along timeline {timeline}" if along else ""
    if plan.target is not None and recovery_reaches_past(plan, plan.target):
        command += ["--type=time", f"--target={pg_time(plan.target)}",
                    "--target-action=promote", *along]
        return command, (f"recovery stops before the first commit after {iso(plan.target)}"
                         f"{follows}")
    # latest, or a target after the last commit in the fetched WAL: replay all of it
    command += ["--type=default", *along]
    return command, f"recovery replays every fetched WAL segment{follows}, then promotes"


def restore_pgbackrest(plan: RestorePlan, into: Path, options: ToolOptions) -> ToolRun:
    """``pgbackrest restore`` from the staging repository into ``INTO/data``, optionally
    starting PostgreSQL and waiting until it left recovery."""
    data = into / "data"
    runner = postgresql_runner("pgbackrest", into, options)
    run = runner.run_
    runner.hand_over(into)
    command, note = pgbackrest_restore_command(plan, into)
    run.notes.append(note)
    if data.exists() and any(data.iterdir()):
        command.append("--delta")
    runner("restore", [*command, "restore"])
    run.notes.append("archive_mode=off: the fork never pushes WAL into the source repository")
    start_or_explain(plan, into, options, runner, run)
    return run

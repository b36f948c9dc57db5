"""Running a fork: fetch a restore plan's objects into a folder (verified, resumable), lay
out what the database's own tooling starts from, and, for real backups, run that tooling.
What each tool needs is its restorer's (engine.restore_tools); this is the flow they share."""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.effects import Effect, FetchBatch, FetchResult, FetchTask, Now
from engine.errors import BtarError
from engine.restore import RestorePlan
from engine.restore_tools import ToolOptions, ToolRun, restorer_for
from engine.restore_tools.base import private_folder, ran_steps, write_private

__all__ = ["FETCH_BATCH", "PLAN_FILE", "FetchOutcome", "ForkIncomplete", "consistency_wal",
           "fetch_plan", "lay_out", "local_path", "next_steps", "run_restore_tools",
           "write_plan_file"]

FETCH_BATCH = 32
PLAN_FILE = "fork.json"


class ForkIncomplete(BtarError):
    """Some objects could not be fetched or verified; running the fork again resumes it."""

    def __init__(self, failures: list[str]) -> None:
        self.failures = failures
        super().__init__(f"{len(failures)} objects failed ({failures[0]}); "
                         "run the same fork again to resume")


@dataclass
class FetchOutcome:
    downloaded: int = 0
    skipped: int = 0
    bytes_downloaded: int = 0
    failures: list[str] = field(default_factory=list)
    started: datetime | None = None
    finished: datetime | None = None


def local_path(plan: RestorePlan, key: str) -> str:
    """Where an object of the plan lands inside the fork folder."""
    return restorer_for(plan).local_path(plan, key)


def fetch_plan(plan: RestorePlan, prefix: str, into: Path,
               keys: Sequence[str] | None = None) -> Generator[Effect, Any, FetchOutcome]:
    """Download every object of the plan (or only those of ``keys``) into ``into``; files
    already whole are kept."""
    outcome = FetchOutcome()
    outcome.started = yield Now()
    wanted = None if keys is None else set(keys)
    restorer = restorer_for(plan)
    tasks = [FetchTask(plan.region, f"{prefix}/{o.key}",
                       str(into / restorer.local_path(plan, o.key)), o.size, o.sha256, o.digest)
             for o in plan.objects if wanted is None or o.key in wanted]
    for start in range(0, len(tasks), FETCH_BATCH):
        results: tuple[FetchResult, ...] = yield FetchBatch(tuple(tasks[start:start + FETCH_BATCH]))
        for result in results:
            if not result.ok:
                outcome.failures.append(result.error)
            elif result.skipped:
                outcome.skipped += 1
            else:
                outcome.downloaded += 1
                outcome.bytes_downloaded += result.task.size
    outcome.finished = yield Now()
    return outcome


def write_plan_file(plan_json: dict[str, Any], into: Path, state: str) -> None:
    private_folder(into)
    document = {"state": state, "plan": plan_json}
    temp = into / f".{PLAN_FILE}.tmp"
    write_private(temp, json.dumps(document, indent=2) + "\n")
    temp.replace(into / PLAN_FILE)


def consistency_wal(plan: RestorePlan, into: Path) -> Mapping[str, object] | None:
    """What the fetched backup says about the WAL that makes it consistent (for
    engine.restore.supplement_consistency); None: the plan needs nothing more."""
    return restorer_for(plan).consistency_wal(plan, into)


def lay_out(plan: RestorePlan, into: Path, wal_fetch_command: list[str]) -> list[str]:
    """Write the recovery configuration next to the fetched files; returns what was written."""
    return restorer_for(plan).lay_out(plan, into, wal_fetch_command)


def run_restore_tools(plan: RestorePlan, into: Path, options: ToolOptions) -> ToolRun | None:
    """Run the database's own restore on a fetched and laid-out fork (None: nothing to run)."""
    if options.fetch_only:
        return None
    return restorer_for(plan).restore(plan, into, options)


def next_steps(plan: RestorePlan, into: Path, written: Sequence[str],
               restored: ToolRun | None) -> list[str]:
    """What to do with a finished fork, one instruction a line (commands ready to copy)."""
    if restored is not None:
        return ran_steps(restored)
    return restorer_for(plan).next_steps(plan, into, written)

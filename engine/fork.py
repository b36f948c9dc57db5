"""Running a fork: fetch a restore plan's objects into a folder (verified, resumable) and lay
out what the database's own tooling starts from."""

from __future__ import annotations

import json
import shlex
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.effects import Effect, FetchBatch, FetchResult, FetchTask, Now
from engine.errors import BtarError, CorruptBackup
from engine.model import ServiceType, iso, parse_iso
from engine.restore import RestorePlan

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


def log_folder(service_type: str) -> str:
    return "binlogs" if service_type == ServiceType.MYSQL else "wal"


def local_path(plan: RestorePlan, key: str) -> str:
    """Where an object of the plan lands inside the fork folder."""
    parts = key.split("/")
    if parts[0] == "base" and parts[2:3] == ["data"]:
        return "/".join(["data", *parts[3:]])
    if parts[0] == "base":
        return "backup_manifest.json"
    folder = log_folder(plan.service_type)
    if parts[-1] == "history.json":
        return f"{folder}/{parts[1]}/history.json"
    return f"{folder}/{parts[1]}/{parts[2].split('_', 1)[0]}.log"


def fetch_plan(plan: RestorePlan, prefix: str,
               into: Path) -> Generator[Effect, Any, FetchOutcome]:
    """Download every object of the plan into ``into``; files already whole are kept."""
    outcome = FetchOutcome()
    outcome.started = yield Now()
    tasks = [FetchTask(plan.region, f"{prefix}/{o.key}", str(into / local_path(plan, o.key)),
                       o.size, o.sha256) for o in plan.objects]
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
    into.mkdir(parents=True, exist_ok=True)
    document = {"state": state, "plan": plan_json}
    temp = into / f".{PLAN_FILE}.tmp"
    temp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    temp.replace(into / PLAN_FILE)


def lay_out(plan: RestorePlan, into: Path, wal_fetch_command: list[str]) -> list[str]:
    """Write the recovery configuration next to the fetched files; returns what was written."""
    written: list[str] = []
    target = iso(plan.effective_target)
    if plan.service_type == ServiceType.POSTGRESQL:
        data = into / "data"
        data.mkdir(parents=True, exist_ok=True)
        (data / "recovery.signal").write_text("", encoding="utf-8")
        restore = " ".join([*map(shlex.quote, wal_fetch_command), '"%f"', '"%p"'])
        lines = [
            "# written by btar fork: recover from the copy in " + plan.region,
            f"restore_command = '{restore}'",
            "recovery_target_timeline = 'latest'",
            "recovery_target_action = 'promote'",
            # a fork must never push WAL into the source's archive
            "archive_mode = 'off'",
        ]
        if plan.target is not None:
            lines.append(f"recovery_target_time = '{target.replace('Z', '+00')}'")
        (data / "postgresql.auto.conf").write_text("\n".join(lines) + "\n", encoding="utf-8")
        written += ["data/recovery.signal", "data/postgresql.auto.conf"]
    else:
        replay = {
            "binlogs": [f"binlogs/{s.stream}/{s.seq:010d}.log" for s in plan.segments],
            "start_after": iso(plan.base_end),
            "stop_datetime": target,
            "note": "replay these binlogs in order on top of the restored backup, stopping at "
                    "stop_datetime (UTC)",
        }
        (into / "replay.json").write_text(json.dumps(replay, indent=2) + "\n",
                                          encoding="utf-8")
        written.append("replay.json")
    if plan.layout == "native":
        state = reconstruct_native_state(plan, into)
        (into / "state.json").write_text(json.dumps(state, indent=1, sort_keys=True) + "\n",
                                         encoding="utf-8")
        written.append("state.json")
    return written


def reconstruct_native_state(plan: RestorePlan, into: Path) -> dict[str, object]:
    """The native layout carries a tiny key-value database: the base backup's snapshot, then
    every logged write after the backup up to the target."""
    state: dict[str, object] = {}
    for part in sorted((into / "data").glob("*.json")):
        try:
            state.update(json.loads(part.read_text(encoding="utf-8")))
        except (ValueError, AttributeError) as error:
            raise CorruptBackup(str(part), f"not a native snapshot: {error}") from None
    folder = log_folder(plan.service_type)
    for segment in plan.segments:
        path = into / folder / segment.stream / f"{segment.seq:010d}.log"
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            moment = parse_iso(record["t"])
            if plan.base_end < moment <= plan.effective_target:
                state[str(record["key"])] = record["value"]
    return state

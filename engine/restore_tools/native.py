"""btar's native layout: a base backup's payload and the log segments after it, laid out for
recovery (PostgreSQL: ``recovery.signal`` and a restore_command through ``btar wal-fetch``;
MySQL and the rest: ``replay.json``, the binlogs to replay in order). The demo's key-value
data has no server to start: ``state.json`` is reconstructed instead."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from engine.errors import BadInput, CorruptBackup
from engine.model import ServiceType, iso, parse_iso
from engine.restore import RestorePlan
from engine.restore_tools.base import (
    ToolOptions,
    ToolRun,
    log_folder,
    private_folder,
    recovery_timeline,
    write_private,
)


def native_path(plan: RestorePlan, key: str) -> str:
    """Where an object of a native-layout plan lands: the base's payload in ``data``, its
    manifest, the logs by stream and sequence number."""
    parts = key.split("/")
    if parts[0] == "base" and parts[2:3] == ["data"]:
        return "/".join(["data", *parts[3:]])
    if parts[0] == "base":
        return "backup_manifest.json"
    folder = log_folder(plan.service_type)
    if parts[-1] == "history.json":
        return f"{folder}/{parts[1]}/history.json"
    return f"{folder}/{parts[1]}/{parts[2].split('_', 1)[0]}.log"


def lay_out_recovery(plan: RestorePlan, into: Path, wal_fetch_command: list[str]) -> list[str]:
    """The recovery configuration next to the fetched files; returns what was written."""
    target = iso(plan.effective_target)
    if plan.service_type == ServiceType.POSTGRESQL:
        data = into / "data"
        private_folder(data)
        write_private(data / "recovery.signal", "")
        restore = " ".join([*map(shlex.quote, wal_fetch_command), '"%f"', '"%p"'])
        lines = [
            "# written by btar fork: recover from the copy in " + plan.region,
            f"restore_command = '{restore}'",
            f"recovery_target_timeline = '{recovery_timeline(plan)}'",
            "recovery_target_action = 'promote'",
            # a fork must never push WAL into the source's archive
            "archive_mode = 'off'",
        ]
        if plan.target is not None:
            lines.append(f"recovery_target_time = '{target.replace('Z', '+00')}'")
        write_private(data / "postgresql.auto.conf", "\n".join(lines) + "\n")
        return ["data/recovery.signal", "data/postgresql.auto.conf"]
    replay = {
        "binlogs": [f"binlogs/{s.stream}/{s.seq:010d}.log" for s in plan.segments],
        "start_after": iso(plan.base_end),
        "stop_datetime": target,
        "note": "replay these binlogs in order on top of the restored backup, stopping at "
                "stop_datetime (UTC)",
    }
    write_private(into / "replay.json", json.dumps(replay, indent=2) + "\n")
    return ["replay.json"]


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


class Native:
    """The native layout's own data (the demo's key-value state), PostgreSQL or MySQL: laid
    out for recovery and reconstructed in ``state.json``; there is no tool to run."""

    def handles(self, plan: RestorePlan) -> bool:
        return True

    def local_path(self, plan: RestorePlan, key: str) -> str:
        return native_path(plan, key)

    def lay_out(self, plan: RestorePlan, into: Path, wal_fetch_command: list[str]) -> list[str]:
        written = lay_out_recovery(plan, into, wal_fetch_command)
        state = reconstruct_native_state(plan, into)
        write_private(into / "state.json", json.dumps(state, indent=1, sort_keys=True) + "\n")
        return [*written, "state.json"]

    def consistency_wal(self, plan: RestorePlan, into: Path) -> Mapping[str, object] | None:
        return None

    def restore(self, plan: RestorePlan, into: Path, options: ToolOptions) -> ToolRun | None:
        if options.start:
            raise BadInput("--start needs a real backup (layout pgbackrest, or a mariadb-backup "
                           "base in the native layout); this fork holds btar's demo data")
        return None

    def next_steps(self, plan: RestorePlan, into: Path, written: Sequence[str]) -> list[str]:
        if "state.json" in written:  # the demo's key-value data: there is no server to start
            point = iso(plan.effective_target.replace(microsecond=0))
            return [f"read the data at {point}: cat {shlex.quote(str(into / 'state.json'))}"]
        data = shlex.quote(str(into / "data"))
        if plan.service_type == ServiceType.POSTGRESQL:
            return [f"start it with: pg_ctl -D {data} -o '-p PORT -c archive_mode=off' start "
                    f"(recovery fetches its WAL from the copy in {plan.region})"]
        replay = shlex.quote(str(into / "replay.json"))
        return [f"replay the binlogs listed in {replay} on top of the backup in {data}"]

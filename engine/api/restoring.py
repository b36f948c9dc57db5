"""Restoring: planning a fork, checking a confirmed plan, running it, serving WAL."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Generator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import rules
from engine.api.status import StatusPart
from engine.errors import (
    BadInput,
    BtarError,
    CorruptBackup,
    ObjectNotFound,
    StorageError,
)
from engine.model import (
    ItemStatus,
    iso,
)

if TYPE_CHECKING:
    # Imported where they run (see engine.api.management): a fork's machinery is no part
    # of the commands that only read the catalog.
    from engine.effects import Effect, FetchResult, FetchTask
    from engine.restore import RestorePlan
    from engine.restore_tools import ToolOptions, ToolRun

#: used for estimates until a fork has been measured
ASSUMED_FORK_THROUGHPUT = 100 * 1024 * 1024


class RestorePart(StatusPart):
    """Plan, check and run forks; fetch WAL for a fork's restore_command."""

    def plan_fork(self, name: str, region: str, target: datetime | None = None, *,
                  source_region: str | None = None,
                  refresh_primary: bool = True, timeline: str | None = None) -> RestorePlan:
        """Plan a fork in ``region`` from the copy stored there, to ``target`` (None: latest),
        along ``timeline`` (None: the latest timeline, as recovery follows it).
        Refused outside the region's window (rule 5) or from another region (rule 6).
        ``refresh_primary`` lists the primary first to measure the data loss of "latest"."""
        from engine.formats import get_layout
        from engine.replication import discover_primary
        from engine.restore import plan_restore

        service = self.service(name)
        rules.check_replicable(service)
        if refresh_primary and target is None and region != service.region:
            # Data loss is measured against the primary's latest point: refresh it if the
            # primary answers; during an outage the catalog's last view is what we have.
            with contextlib.suppress(StorageError):
                self.driver.run(discover_primary(self.catalog, get_layout(service.layout),
                                                 service, self.settings, full=False))
        return plan_restore(self.catalog, service, region, target, self.now(),
                            source_region=source_region, timeline=timeline)

    def fork_throughput(self) -> tuple[float, bool]:
        """Bytes per second of past forks (measured), else an assumption (False)."""
        for entry in reversed(self.catalog.audit_log()):
            if entry["action"] != "fork":
                continue
            details = json.loads(entry["details"])
            if details.get("bytes_downloaded", 0) > 0 and details.get("seconds", 0) > 0:
                return details["bytes_downloaded"] / details["seconds"], True
        return ASSUMED_FORK_THROUGHPUT, False

    def check_fork_plan(self, plan: RestorePlan, name: str, region: str,
                        target: datetime | None, *,
                        source_region: str | None = None,
                        timeline: str | None = None) -> RestorePlan:
        """A plan made earlier for this request, if it still holds against the catalog (it is
        then returned unchanged, even if the window grew since); otherwise PlanChanged, with
        what planning the request now gives."""
        from engine.restore import PlanChanged, plan_problem

        if (plan.service, plan.region, plan.target) != (name, region, target):
            wanted = iso(target) if target else "the latest point"
            planned = iso(plan.target) if plan.target else "the latest point"
            raise BadInput(f"the plan given restores {plan.service} in {plan.region} to "
                           f"{planned}, not {name} in {region} to {wanted}")
        service = self.service(name)
        rules.check_replicable(service)
        rules.check_restore_region(source_region or region, region)
        problem = plan_problem(self.catalog, service, plan)
        if problem is None:
            return plan
        try:
            replacement = self.plan_fork(name, region, target, source_region=source_region,
                                         refresh_primary=False,
                                         timeline=timeline or (plan.timeline
                                                               if plan.timeline_asked else None))
        except BtarError as error:
            raise PlanChanged(plan, problem, None, error) from error
        raise PlanChanged(plan, problem, replacement)

    def fork(self, name: str, region: str, target: datetime | None, into: Path, *,
             plan: RestorePlan | None = None,
             source_region: str | None = None,
             wal_fetch_command: list[str] | None = None,
             tools: ToolOptions | None = None,
             timeline: str | None = None) -> ForkOutcome:
        """Fetch and verify what a fork needs into ``into``, lay out the restore and, for real
        backups (pgbackrest layout, mariadb-backup bases), run the database's own restore
        (``tools``; see engine.restore_tools). Run it again after an interruption: verified
        files are not fetched again.

        ``plan``: the plan a user confirmed (from plan_fork). It is checked against the
        catalog first and then run exactly, to its own point; if it no longer holds,
        PlanChanged is raised before anything is written (never another plan run instead).
        Without it the fork is planned now."""
        from engine.fork import (
            ForkIncomplete,
            consistency_wal,
            fetch_plan,
            lay_out,
            next_steps,
            run_restore_tools,
            write_plan_file,
        )
        from engine.restore import supplement_consistency
        from engine.restore_tools import ToolOptions

        if plan is None:
            # No listing of the primary first: during an outage its retries would only add
            # to the RTO; the data loss is measured against the catalog's last view of it.
            plan = self.plan_fork(name, region, target, source_region=source_region,
                                  refresh_primary=False, timeline=timeline)
        else:
            plan = self.check_fork_plan(plan, name, region, target,
                                        source_region=source_region, timeline=timeline)
        planned = plan
        service = self.service(name)
        plan_json = plan_as_json(plan)
        write_plan_file(plan_json, into, "fetching")
        fetched = self.driver.run(fetch_plan(plan, service.key_prefix, into))
        # The seal (Barman: backup.info) says which WAL makes the backup consistent and
        # what it refers to.
        if not fetched.failures and (bounds := consistency_wal(plan, into)) is not None:
            known = {o.key for o in plan.objects}
            plan = supplement_consistency(self.catalog, plan, bounds)
            plan_json = plan_as_json(plan)
            more = self.driver.run(fetch_plan(plan, service.key_prefix, into,
                                              [o.key for o in plan.objects
                                               if o.key not in known]))
            fetched.downloaded += more.downloaded
            fetched.skipped += more.skipped
            fetched.bytes_downloaded += more.bytes_downloaded
            fetched.failures += more.failures
            fetched.finished = more.finished
        if fetched.failures:
            write_plan_file(plan_json, into, "incomplete")
            raise ForkIncomplete(fetched.failures)
        command = wal_fetch_command or ["btar", "wal-fetch", name, "--region", region]
        written = lay_out(plan, into, command)
        seconds = (fetched.finished - fetched.started).total_seconds() \
            if fetched.finished and fetched.started else 0.0
        write_plan_file(plan_json, into, "restoring")
        try:
            # barman-cloud's tools read the copy in place: they need the region's location
            restored = run_restore_tools(plan, into, replace(
                tools or ToolOptions(), location=self._locations.get(region),
                prefix=service.key_prefix))
        except BtarError:
            write_plan_file(plan_json, into, "restore failed")
            raise
        now = self.now()
        details: dict[str, Any] = {
            "region": region, "target": iso(plan.target) if plan.target else "latest",
            "effective_target": iso(plan.effective_target), "base": plan.base_id,
            "timeline": plan.timeline,
            "segments": len(plan.segments), "bytes": plan.bytes_total,
            "bytes_downloaded": fetched.bytes_downloaded, "seconds": seconds,
            "into": str(into)}
        if restored is not None:
            details["restore"] = {"tool": restored.tool, "user": restored.user,
                                  "steps": {k: round(v, 3) for k, v in restored.steps},
                                  "running": restored.running, "port": restored.port}
        self.catalog.audit(now, self.actor, "fork", name, details)
        self.catalog.event(now, "info", name, region,
                           f"fork to {iso(plan.effective_target)} "
                           f"{'restored' if restored else 'laid out'} in {into}")
        write_plan_file(plan_json, into, "ready")
        return ForkOutcome(plan, fetched.downloaded, fetched.skipped,
                           fetched.bytes_downloaded, seconds, written, restored,
                           planned=planned, into=into,
                           next_steps=tuple(next_steps(plan, into, written, restored)))

    def wal_fetch(self, name: str, region: str, segment: str, destination: Path) -> None:
        """Fetch one log segment (native ``STREAM/SEQ``, or a WAL file name for a layout of
        PostgreSQL WAL files) from the copy in ``region`` to ``destination``, verified and
        as PostgreSQL's restore_command must deliver it (decompressed)."""
        from engine.effects import FetchTask
        from engine.formats import get_layout
        from engine.formats.base import WalFiles

        service = self.service(name)
        layout = get_layout(service.layout)
        wal = layout if isinstance(layout, WalFiles) else None
        try:
            item_id = wal.wal_item_id(segment) if wal is not None and "/" not in segment \
                else "log/{}/{:010d}".format(*parse_segment_name(segment))
        except ValueError as error:
            raise BadInput(f"btar wal-fetch: {error}") from None
        row = self.catalog.item(name, region, item_id)
        if row is None or row.status not in (ItemStatus.AVAILABLE, ItemStatus.RETAINED):
            raise ObjectNotFound(region, segment, "no such log segment in this region")
        ref = self.catalog.item_as_model(row).marker
        fetched = destination.with_name(f".{destination.name}.btar-fetch") if wal \
            else destination
        task = FetchTask(region, f"{service.key_prefix}/{ref.key}", str(fetched),
                         ref.size, ref.sha256, ref.digest)
        [result] = self.driver.run(_fetch_one(task))
        if not result.ok:
            raise StorageError(region, segment, result.error)
        if wal is not None:
            try:
                raw = wal.plain_wal(ref.key, fetched.read_bytes())
            except ValueError as error:
                raise CorruptBackup(ref.key, str(error)) from None
            finally:
                fetched.unlink(missing_ok=True)
            temp = destination.with_name(f".{destination.name}.btar-part")
            temp.write_bytes(raw)
            temp.replace(destination)


@dataclass(frozen=True)
class ForkOutcome:
    plan: RestorePlan
    downloaded: int
    skipped: int
    bytes_downloaded: int
    seconds: float
    written: list[str]
    #: what the database's own restore tools did (None: only fetched and laid out)
    restore: ToolRun | None = None
    #: the plan as confirmed (or made) before the run; ``plan`` adds what a pgBackRest
    #: backup's seal asked for besides (None: the same as ``plan``)
    planned: RestorePlan | None = None
    #: where the fork was laid out
    into: Path | None = None
    #: what to do with the fork now (start the database, or where its data is)
    next_steps: tuple[str, ...] = ()

    @property
    def planned_objects(self) -> int:
        """How many objects the confirmed plan listed."""
        return len((self.planned or self.plan).objects)


def _fetch_one(task: FetchTask) -> Generator[Effect, Any, tuple[FetchResult, ...]]:
    from engine.effects import FetchBatch

    results: tuple[FetchResult, ...] = yield FetchBatch((task,))
    return results


def parse_segment_name(name: str) -> tuple[str, int]:
    """``STREAM/SEQ`` (native) or a 24-hex PostgreSQL WAL name (timeline, then segment)."""
    if "/" in name:
        stream, _, seq = name.partition("/")
        if stream and seq.isdigit():
            return stream, int(seq)
    elif len(name) == 24 and all(c in "0123456789ABCDEFabcdef" for c in name):
        return str(int(name[:8], 16)), int(name[8:], 16)
    raise BadInput(f"{name!r} is not a segment name (STREAM/SEQ or a WAL file name)")


def plan_as_json(plan: RestorePlan) -> dict[str, Any]:
    return {
        "service": plan.service, "region": plan.region, "role": str(plan.role),
        "target": iso(plan.target) if plan.target else "latest",
        "effective_target": iso(plan.effective_target),
        "window": {"start": iso(plan.window.start) if plan.window.start else None,
                   "end": iso(plan.window.end) if plan.window.end else None},
        "base_backup": plan.base_id, "base_end": iso(plan.base_end),
        "segments": {"count": len(plan.segments),
                     "first": plan.segments[0].item_id if plan.segments else None,
                     "last": plan.segments[-1].item_id if plan.segments else None},
        "histories": list(plan.histories),
        "timeline": plan.timeline, "timeline_asked": plan.timeline_asked,
        "objects": len(plan.objects), "bytes": plan.bytes_total,
        "expected_data_loss_seconds": plan.expected_data_loss_seconds,
        "planned_at": iso(plan.planned_at),
    }

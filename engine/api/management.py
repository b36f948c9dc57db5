"""Managing a service's additional region (enable, change, disable) and running replication."""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING, Any

from engine import rules
from engine.api.installation import Installation
from engine.api.values import (
    DESTINATION_ROLES,
    DisableOutcome,
)
from engine.errors import (
    RegionNotQualified,
    ReplicationNotEnabled,
    StorageError,
)
from engine.model import (
    REPLICABLE_TYPES,
    RegionRole,
    RegionState,
    Service,
)

if TYPE_CHECKING:
    # Imported where they run: `btar status` and `btar check` open the whole API and use
    # none of replication's machinery (the formats, the listing, the scheduler), which is
    # tens of milliseconds of imports, mostly dataclasses made at import time.
    from engine.effects import Effect
    from engine.replication import PassOutcome
    from engine.service_jobs import Hooks


class ManagementPart(Installation):
    """Enable, change and disable the additional region; replicate."""

    def enable(self, name: str, region: str) -> None:
        """Start replicating a service's backups to an additional region."""
        service = self.service(name)
        target = rules.check_enable(service, region, self.additional_region(name))
        self._require_location(target.id)
        now = self.now()
        self.catalog.set_location(name, target.id, RegionRole.SECONDARY, RegionState.ACTIVE, now)
        self.catalog.reactivate_region(name, target.id, now)
        self.catalog.audit(now, self.actor, "enable", name, {"region": target.id})
        self.catalog.event(now, "info", name, target.id, "additional backup region enabled")

    def location_problem(self, name: str, region: str) -> str:
        """Why a service's location in ``region`` cannot be used right now, or "": one
        listing of at most one key under its prefix, as a sync's idle look does. Replication
        pauses there and resumes by itself either way; this lets a front warn at once."""
        from engine.effects import ListPage

        prefix = f"{self.service(name).key_prefix}/"

        def look() -> Generator[Effect, Any, None]:
            yield ListPage(region, prefix, None, 1)

        try:
            self.driver.run(look())
        except StorageError as error:
            return str(error)
        return ""

    def change_region(self, name: str, region: str) -> None:
        """Move the additional region; the old one keeps replicating until the new one can
        restore (rule 8)."""
        service = self.service(name)
        current = self.additional_region(name)
        target = rules.check_change(service, region, current)
        self._require_location(target.id)
        assert current is not None  # check_change refused otherwise
        now = self.now()
        self.catalog.set_location(name, current, RegionRole.PREVIOUS, RegionState.ACTIVE, now)
        self.catalog.set_location(name, target.id, RegionRole.SECONDARY, RegionState.ACTIVE, now)
        self.catalog.reactivate_region(name, target.id, now)
        self.catalog.audit(now, self.actor, "change-region", name,
                           {"from": current, "to": target.id})
        self.catalog.event(now, "info", name, target.id,
                           f"additional region changed from {current}; {current} keeps "
                           "replicating until this region can restore")

    def disable(self, name: str, *, keep: bool, delete: bool, confirmed: bool) -> DisableOutcome:
        """Stop replication; keep the copies (retained) or delete them (rule 7)."""
        service = self.service(name)
        rules.check_disable(name, keep=keep, delete=delete, confirmed=confirmed)
        targets = self.catalog.locations(name, roles=DESTINATION_ROLES)
        if not targets:
            raise ReplicationNotEnabled(name)
        now = self.now()
        regions = [t.region for t in targets]
        if keep:
            for region in regions:
                self.catalog.set_location(name, region, RegionRole.RETAINED, RegionState.STOPPED,
                                          now, "replication disabled; copies kept")
                self.catalog.retain_region(name, region, now)
            self.catalog.audit(now, self.actor, "disable", name,
                               {"mode": "keep", "regions": regions})
            return DisableOutcome(name, regions, "keep", 0)
        from engine.formats import get_layout
        from engine.replication import discover_primary
        from engine.timelines import known_timelines

        # Refresh what the primary really holds before judging what else covers each point.
        self.driver.run(discover_primary(self.catalog, get_layout(service.layout), service,
                                         self.settings, full=True))
        deleted = left = 0
        for target in targets:
            region = target.region
            rules.check_not_primary(service, region)
            self._check_not_a_primary_location(region, service)
            covering = self._covering_regions(name, exclude=region)
            # Along the latest timeline, and along every branch the copies hold.
            for timeline in (None, *known_timelines(self.catalog, name, region)):
                others = [self.window(name, r, timeline) for r in covering]
                rules.check_deletion_safe(name, self.window(name, region, timeline), others,
                                          timeline)
            # From here on the copies in this region are no longer restorable and no sync
            # copies into it, so an interrupted deletion never leaves the catalog promising
            # objects that are gone; running disable --delete again finishes it.
            reason = "deleting the copies (disable --delete)"
            with self.catalog.transaction():
                self.catalog.withdraw_region(name, region, now, reason)
                self.catalog.set_location(name, region, target.role, RegionState.STOPPED, now,
                                          reason)
            done, foreign = self.driver.run(self._delete_region(service, region))
            deleted, left = deleted + done, left + foreign
            self.catalog.forget_region(name, region)
            self.catalog.remove_location(name, region)
            message = f"replication disabled; {done} objects deleted"
            if foreign:
                message += (f"; {foreign} objects under {service.key_prefix}/ that btar did not "
                            "copy were left in place")
            self.catalog.event(now, "warning", name, region, message)
        self.catalog.audit(now, self.actor, "disable", name,
                           {"mode": "delete", "regions": regions, "deleted_objects": deleted,
                            "left_objects": left})
        return DisableOutcome(name, regions, "delete", deleted, left)

    def _covering_regions(self, name: str, exclude: str) -> list[str]:
        service = self.service(name)
        regions = [service.region]
        regions += [loc.region for loc in self.catalog.locations(name)
                    if loc.region not in (exclude, service.region)]
        return regions

    def _check_not_a_primary_location(self, region: str, service: Service) -> None:
        """Never delete where any service keeps its primary backups."""
        for other in self._services.values():
            if other.region == region and other.key_prefix == service.key_prefix:
                raise RegionNotQualified(
                    service.name, region,
                    f"it holds the primary backups of {other.name}; btar never deletes there",
                    [])

    def _delete_region(self, service: Service,
                       region: str) -> Generator[Effect, Any, tuple[int, int]]:
        """Delete what btar copied into ``region``: the keys its catalog records there for
        this service, and nothing else (a foreign object under the same prefix stays).
        Completion markers go first, so that an interrupted deletion never leaves a marker
        without its payload. Returns (objects deleted, objects left in place)."""
        from engine.effects import DeleteBatch, Now
        from engine.listing import list_all

        prefix = f"{service.key_prefix}/"
        keys = [prefix + key for key in self.catalog.object_keys(service.name, region)]
        listing = yield from list_all(region, prefix, self.settings.list_page_size)
        present = {o.key for o in listing}
        left = len(present.difference(keys))
        deleted = 0
        for start in range(0, len(keys), 500):
            # Keys missing from the listing are deleted too: a listing may lag behind.
            chunk = tuple(keys[start:start + 500])
            errors: tuple[str, ...] = yield DeleteBatch(region, chunk)
            failures = [e for e in errors if e]
            if failures:
                raise StorageError(region, "", f"{len(failures)} deletions failed: {failures[0]}")
            deleted += sum(1 for key in chunk if key in present)
        yield Now()
        return deleted, left

    def replication(self, names: Iterable[str] | None = None, *, once: bool,
                    full_listing: bool = False,
                    hooks: Hooks | None = None) -> Generator[Effect, Any, list[PassOutcome]]:
        """The replication procedure of the named (default: every replicable) services, for
        a driver to run: ``once`` lists each service once and finishes its work, else it
        goes on until the driver is asked to stop. ``full_listing`` lists every primary in
        full first even when a full listing is not due."""
        from engine.formats import get_layout
        from engine.scheduler import replicate
        from engine.service_jobs import ServiceJob

        wanted = list(names or [])
        chosen = [self.service(n) for n in wanted] if wanted else self.services()
        jobs = []
        for service in chosen:
            if wanted:
                rules.check_replicable(service)
            elif service.type not in REPLICABLE_TYPES:
                continue
            jobs.append(ServiceJob(service, get_layout(service.layout),
                                   self.retention.get(service.name)))
        return replicate(self.catalog, jobs, self.settings, once=once,
                         full_listing=full_listing, hooks=hooks)

    def sync(self, names: Iterable[str] | None = None, *,
             full_listing: bool = False) -> list[PassOutcome]:
        """Replicate the named (default: every replicable) services once: list each primary,
        copy and publish what the destinations lack. One outcome per service."""
        return self.driver.run(self.replication(names, once=True, full_listing=full_listing))

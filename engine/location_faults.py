"""What the scheduler records when a location fails, and how a failing destination comes
back: paused while it cannot be reached (looked at once per listing), its copies failing one
by one while it answers with errors, its fault ended at a listing where it answered. The
status, the TUI's banner, `btar check` and the metrics read what this writes to the catalog
(its reachability table, the locations' state, events). Also: the bytes of a copy that did
not verify are removed from its destination, and the removal is an event."""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime
from typing import Any

from engine.catalog import Catalog
from engine.copy_queue import DestinationQueue, with_status
from engine.effects import DeleteBatch, Effect, ErrorKind, ListPage, Now
from engine.errors import StorageError, Unreachable
from engine.model import ItemStatus, RegionState
from engine.service_jobs import ServiceRun

#: how a reason names a region that cannot be used, per fault class
FAULT_WORDS = {"missing": "is missing", "denied": "refuses access",
               "unusable": "takes no writes"}
#: fault classes a listing cannot see the end of
WRITE_FAULTS = frozenset({"unusable"})
#: the fault class of a failed copy whose driver did not name one (a simulated fault)
FAULT_OF_KIND: dict[ErrorKind | None, str] = {ErrorKind.UNREACHABLE: "unreachable",
                                              ErrorKind.THROTTLED: "throttled"}


def fault_of(error: Exception) -> str:
    """The fault class status shows for an error of a location."""
    return error.fault if isinstance(error, StorageError) else "error"




class FaultBook:
    """The fault bookkeeping of the scheduler's locations, in the catalog."""

    def __init__(self, catalog: Catalog, *, fresh: float) -> None:
        self.catalog = catalog
        #: seconds a region's answer to one service stands for the others (see look_at)
        self.fresh = fresh
        #: region -> when it last answered a look or took a copy, for whichever service
        self.heard_at: dict[str, datetime] = {}
        #: regions a look is under way at, by a service that is not paused
        self.renewing: set[str] = set()

    def heard(self, region: str, now: datetime) -> None:
        """``region`` answered (a look, a copy that landed)."""
        self.heard_at[region] = now

    def look_at(self, queue: DestinationQueue, state: ServiceRun,
                now: datetime) -> Generator[Effect, Any, None]:
        """One small listing of a destination: a paused one resumes by itself once it answers
        again; one that no copy reached since the last listing is looked at, so that an
        outage is known before there is something to copy. A region that answered any
        service within ``fresh`` seconds needs no look for another one without a fault of its
        own: the services replicating there share one request per ``fresh`` seconds instead
        of making one each per idle listing (thousands of services, one destination). Only an
        answer vouches, never a look still under way (a `sync --once` must pause every
        service a missing destination stops), and a look that fails ends the sharing. The
        answer is renewed by one look once half its time is gone, so that it does not run
        out while a look is waiting for its turn (every service passing then would look)."""
        catalog, service, region = self.catalog, state.job.service, queue.region
        heard = self.heard_at.get(region)
        if not queue.paused and not queue.fault and heard is not None:
            age = (now - heard).total_seconds()
            if age < self.fresh and (age < self.fresh / 2 or region in self.renewing):
                queue.answered = True
                return
        looking = not queue.paused and region not in self.renewing
        if looking:
            self.renewing.add(region)
        try:
            try:
                yield ListPage(region, f"{service.key_prefix}/", None, 1)
            finally:  # answered, refused, or the cycle closed
                if looking:
                    self.renewing.discard(region)
        except StorageError as error:
            self.heard_at.pop(region, None)
            now = yield Now()
            if queue.paused and isinstance(error, Unreachable):
                # Still unusable: the pause says why as of now (the first reason may have
                # been a connection cut, the lasting one a hang).
                reason = f"{region} {FAULT_WORDS.get(error.fault, 'unreachable')}: {error}"
                state.outcome.paused[region] = reason
                catalog.note_fault(service.name, region, error.fault, error.message, now)
                catalog.set_location(service.name, region, queue.role, RegionState.PAUSED, now,
                                     reason)
            elif queue.paused:
                # It answers, if only to refuse this request (throttled, a server error):
                # copies resume and fail or pass one by one.
                self.resume(queue, now)
                self.copies_failed(queue, error.fault, error.message, now)
            elif isinstance(error, Unreachable):
                self.stop_for(queue, state, region, str(error), error.fault, error.message, now)
            else:
                self.copies_failed(queue, error.fault, error.message, now)
            return
        # A listing proves the region answers, not that it takes writes again (a full or
        # read-only disk lists): such a fault ends with the first copy that lands.
        queue.answered = queue.fault not in WRITE_FAULTS
        self.heard(region, now)
        if queue.paused:
            now = yield Now()
            self.resume(queue, now)

    def resume(self, queue: DestinationQueue, now: datetime) -> None:
        """A paused destination answers again: its unfinished items are read again."""
        service = queue.service.name
        self.catalog.set_location(service, queue.region, queue.role, RegionState.ACTIVE, now)
        self.catalog.event(now, "info", service, queue.region, "region reachable again; resuming")
        # What failed while it was paused (copies that were in flight) is history.
        queue.paused, queue.loaded, queue.failed = False, False, False

    def copies_failed(self, queue: DestinationQueue, fault: str, reason: str,
                       now: datetime) -> None:
        """A destination failed requests without being unreachable: recorded when the fault
        starts or changes class (its start is kept while it lasts); a new reason waits for
        the next listing (one write per listing however many copies fail)."""
        queue.failed = True
        if fault != queue.fault:
            self.catalog.note_fault(queue.service.name, queue.region, fault, reason, now)
            queue.fault, queue.new_reason = fault, ""
        else:
            queue.new_reason = reason

    def judge(self, queue: DestinationQueue, now: datetime) -> None:
        """At a listing: a destination whose copies all succeeded since the last one (or
        that has nothing left to copy) answers, which ends its fault. Judged per listing, not
        per copy, so that a fault some copies escape keeps its start (and costs one write)."""
        if not queue.paused and not queue.failed and (queue.answered or not queue.items):
            self.catalog.note_reachable(queue.service.name, queue.region, now)
            queue.fault = ""
        elif queue.fault and queue.new_reason:
            self.catalog.note_fault(queue.service.name, queue.region, queue.fault,
                                    queue.new_reason, now)
        queue.answered = queue.failed = False
        queue.new_reason = ""

    def stop_for(self, queue: DestinationQueue, state: ServiceRun, side: str, error: str,
                 fault: str, short: str, now: datetime) -> None:
        """A side did not answer: the primary (the service waits for its next listing) or the
        destination (paused, probed at each listing). ``short`` is what the fault shows."""
        service = queue.service
        reason = f"{side} {FAULT_WORDS.get(fault, 'unreachable')}: {error}"
        if side == service.region:
            if not state.primary_down:
                state.primary_down = True
                state.outcome.primary_error = reason
                self.catalog.note_fault(service.name, side, fault, short, now)
                self.catalog.event(now, "error", service.name, service.region, reason)
            return
        self.heard_at.pop(queue.region, None)
        if queue.paused:
            return  # copies that were in flight when it paused
        if queue.fault != fault:
            self.catalog.note_fault(service.name, queue.region, fault, short, now)
            queue.fault = fault
        self.catalog.set_location(service.name, queue.region, queue.role, RegionState.PAUSED,
                                  now, reason)
        for item_id in sorted(queue.items):
            self.catalog.set_item_status(service.name, queue.region, item_id,
                                         ItemStatus.PAUSED, now, reason)
        self.catalog.event(now, "error", service.name, queue.region,
                           f"replication paused: {reason}")
        state.outcome.paused[queue.region] = reason
        queue.paused, queue.loaded = True, False
        for item_id, work in list(queue.items.items()):
            if work.in_flight:
                work.row = with_status(work.row, ItemStatus.PAUSED)
            else:
                queue.remove(item_id)

    def remove_unverified(self, queue: DestinationQueue, keys: list[str],
                           now: datetime) -> Generator[Effect, Any, None]:
        """Bytes that did not verify never stay under a real key (a log segment is its own
        completion marker: the backup tool would take it for a good one)."""
        service = queue.service.name
        try:
            errors: tuple[str, ...] = yield DeleteBatch(queue.region, tuple(keys))
        except StorageError as error:
            errors = (str(error),) * len(keys)
        for key, problem in zip(keys, errors, strict=True):
            self.catalog.event(now, "warning" if problem else "info", service, queue.region,
                               f"could not remove the unverified copy of {key}: {problem}"
                               if problem else f"removed the unverified copy of {key}")

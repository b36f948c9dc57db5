"""The replication scheduler, sans I/O: every service's listings, copies and publications in
one procedure, so that nothing waits behind what it does not need.

- Copies are started one by one (``StartCopy``) and their completions heard one by one
  (``NextCompletions``): an item is published the moment all of its objects verified (the
  completion marker last), never at the end of a batch or a pass. A crash loses only the
  copies in flight.
- Two lanes. LOG holds timeline history and log segments (history first, then oldest first);
  BASE holds base backups. Bases take at most ``base_streams`` of the ``concurrency`` streams,
  so a log segment always finds a free one, however large the bases in flight.
- Within a lane the queues of (service, destination) take turns: a service's backlog, or a new
  region's catch-up, gets its share of the streams, never all of them.
- Each service is listed on its own pace (``busy_poll_interval`` after a listing that found
  work, doubling up to ``poll_interval``), while copies of every service are in flight. A
  listing cycle's requests are started beside everything else (``StartRequest``) and the
  cycle resumes when its answer comes: a slow or dead location holds up only the service
  that reads it.

Drivers: engine.runtime.LiveDriver and the simulator's SimInterpreter, the same effects.
"""

from __future__ import annotations

import bisect
import heapq
import traceback
from collections.abc import Generator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.catalog import Catalog, CopyRecord, LocationRow, ObjectRow
from engine.copy_queue import LANES, DestinationQueue, ItemCopies, Lane, lane_of, with_status
from engine.effects import (
    Completions,
    CopyResult,
    CopyTask,
    DeleteBatch,
    Effect,
    ErrorKind,
    ListPage,
    NextCompletions,
    Now,
    ReadObject,
    Side,
    StartCopy,
    StartRequest,
)
from engine.errors import CorruptBackup, StorageError
from engine.listing import full_listing_due
from engine.location_faults import FAULT_OF_KIND, FaultBook, fault_of
from engine.mirror import Mirror
from engine.model import UNFINISHED, ItemKind, ItemStatus, RegionRole, RegionState
from engine.replication import (
    PassOutcome,
    ReplicationSettings,
    discover_primary,
    established,
    retire_previous,
    verify,
)
from engine.retention import apply_retention
from engine.service_jobs import Hooks, ServiceJob, ServiceRun, next_wait

#: items whose objects are read from the catalog in one query when the scheduler reaches them
REFS_AHEAD = 256
#: when a service never listed is due
AT_ONCE = datetime.min.replace(tzinfo=UTC)


class Scheduler:
    """The state of one replication run; ``run`` is its procedure."""

    def __init__(self, catalog: Catalog, jobs: Sequence[ServiceJob],
                 settings: ReplicationSettings, *, once: bool, full_listing: bool = False,
                 hooks: Hooks | None = None) -> None:
        self.catalog = catalog
        # A run that goes on shares its destinations' answers for a poll interval; a single
        # pass (`sync --once`) judges each service by its own look, and so makes the same
        # requests whatever the timing of the answers.
        self.faults = FaultBook(catalog, fresh=0.0 if once else settings.poll_interval)
        self.mirror = Mirror(catalog, page_size=settings.list_page_size)
        self.settings = settings
        self.once = once
        self.full_listing = full_listing
        self.hooks = hooks or Hooks()
        self.services = {job.service.name: ServiceRun(job, PassOutcome(job.service.name))
                         for job in jobs}
        self.queues: dict[tuple[str, str], DestinationQueue] = {}
        #: round-robin order of the queues, and where each lane's next turn starts
        self.order: list[tuple[str, str]] = []
        #: service -> the regions it has queues for
        self.regions_of: dict[str, set[str]] = {}
        self.turn = dict.fromkeys(LANES, 0)
        #: queue -> its index in ``order`` (None: to be counted again, ``order`` changed)
        self.positions: dict[tuple[str, str], int] | None = None
        #: per lane, every queue whose lane may hold items (a superset: _next drops the
        #: empty ones), sorted as ``order``. A wake looks at these, not at every queue of the
        #: fleet, from where the lane's turn is: no sort per copy started.
        self.with_work: dict[Lane, list[tuple[str, str]]] = {lane: [] for lane in LANES}
        #: queues a throttling pause was ever set on (a superset of those held now)
        self.held: set[tuple[str, str]] = set()
        self.in_flight: dict[Lane, int] = dict.fromkeys(LANES, 0)
        #: (destination, full key) of each copy in flight -> its queue and lane
        self.flights: dict[tuple[str, str], tuple[tuple[str, str], Lane]] = {}
        self.stopping = False
        #: every cycle's outcome in once mode, in service order
        self.outcomes: dict[str, PassOutcome] = {}
        #: the listing cycles under way, and which waits for which request
        self.listings: dict[str, Generator[Effect, Any, None]] = {}
        #: (when listed next, service) of every service whose cycle is not under way: a cycle
        #: ends before its service is pushed again, so each service has one entry or none
        self.due: list[tuple[datetime, str]] = [(AT_ONCE, name) for name in self.services]
        heapq.heapify(self.due)
        self.parked: dict[int, str] = {}
        self.tickets = 0

    # -- the procedure ---------------------------------------------------------------------------

    def run(self) -> Generator[Effect, Any, list[PassOutcome]]:
        """List, copy, verify and publish until done (``once``: every service listed once and
        its work finished) or until the driver asks to stop (after the copies in flight)."""
        while True:
            now: datetime = yield Now()
            if not self.stopping:
                for name in self._due_now(now):
                    state = self.services[name]
                    if self.once and state.cycles:
                        continue
                    self.listings[name] = self._guarded_cycle(state)
                    yield from self._advance(name, None, None)
                now = yield Now()
                copying: list[tuple[DestinationQueue, ItemCopies]] = []
                while not self.stopping:
                    picked = self._next(now)
                    if picked is None:
                        break
                    queue, work, ref = picked
                    if work.row.kind == ItemKind.BASE and work.row.status != ItemStatus.COPYING:
                        # A base takes long: say so now. A log segment is usually one object,
                        # published when it lands (or marked then, see _apply_queue).
                        work.row = with_status(work.row, ItemStatus.COPYING)
                        copying.append((queue, work))
                    task = self._start(queue, work, ref)
                    started: bool = yield StartCopy(task)
                    if not started:
                        self._unstart(queue, work, task)
                        self._stop()
                self._mark_copying(copying, now)
                yield from self.mirror.start()
            total = sum(self.in_flight.values()) + len(self.parked) + self.mirror.in_flight
            if total == 0 and (self.stopping or (self.once and not self._waiting(now))):
                break
            timeout = self._timeout(now) if not self.stopping else None
            if total == 0 and timeout is None:
                break
            wake: Completions = yield NextCompletions(timeout)
            if wake.stop_requested:
                self._stop()
            elif timeout is not None and not wake.results:
                # The pauses this wait covered are over, whatever the clock says now (a
                # driver's clock may stand still while it carries out a management action).
                self._lift_holds(now + timedelta(seconds=timeout))
            if wake.results:
                yield from self._apply(wake.results)
            for done in wake.requests:
                name = self.parked.pop(done.ticket)
                if name in self.listings:
                    yield from self._advance(name, done.result, done.error)
        for name in sorted(self.services):
            state = self.services[name]
            if self.once and state.cycles and not state.primary_down \
                    and not self.stopping:
                yield from self._maintain(state)
            self._close_cycle(state)
        yield from self.mirror.drain()  # a driver that is stopping starts none of it
        return [self.outcomes[name] for name in sorted(self.outcomes)]

    def _stop(self) -> None:
        """Start nothing more; the listing cycles end where they wait (between two requests,
        so nothing is half-written) and the copies in flight are collected."""
        self.stopping = True
        for cycle in self.listings.values():
            cycle.close()
        self.listings.clear()

    # -- listing cycles --------------------------------------------------------------------------

    def _guarded_cycle(self, state: ServiceRun) -> Generator[Effect, Any, None]:
        try:
            yield from self._cycle(state)
        except Exception as error:  # a bug must not stop the other services
            yield from self._unexpected(state, error)

    def _advance(self, name: str, value: Any,
                 error: StorageError | None) -> Generator[Effect, Any, None]:
        """Run a service's listing cycle until it waits for a request (started beside the
        copies and the other cycles, so that a slow or dead location holds up only the
        service that reads it) or ends."""
        cycle = self.listings[name]
        while True:
            try:
                effect = cycle.throw(error) if error is not None else cycle.send(value)
            except StopIteration:
                del self.listings[name]
                state = self.services[name]
                heapq.heappush(self.due, (state.next_listing or AT_ONCE, name))
                return
            value, error = None, None
            if isinstance(effect, ListPage | ReadObject | DeleteBatch):
                self.tickets += 1
                self.parked[self.tickets] = name
                yield StartRequest(self.tickets, effect)
                return
            value = yield effect  # the time: answered at once

    def _close_cycle(self, state: ServiceRun) -> None:
        if not state.cycles:
            return
        outcome = state.outcome
        self.outcomes[outcome.service] = outcome
        if self.hooks.on_cycle is not None:
            self.hooks.on_cycle(outcome)

    def _cycle(self, state: ServiceRun) -> Generator[Effect, Any, None]:
        """List one service's primary, queue what its destinations lack, retire and apply
        retention; then set when it is listed next."""
        catalog, service = self.catalog, state.job.service
        busy = any(q.busy for q in self._queues_of(service.name)) or bool(
            state.outcome.discovered)
        if state.cycles and not self.once:
            self._close_cycle(state)
            state.outcome = PassOutcome(service.name)
        state.cycles += 1
        for queue in self._queues_of(service.name):
            queue.busy = False
        now: datetime = yield Now()
        since = None if state.worked_at is None else (now - state.worked_at).total_seconds()
        state.wait = next_wait(state.wait, busy, busy_interval=self.settings.busy_poll_interval,
                               interval=self.settings.poll_interval, since_work=since)
        if busy:
            state.worked_at = now
        state.next_listing = now + timedelta(seconds=state.wait)
        destinations = self._sync_destinations(state)
        if not destinations:
            return
        full = (self.full_listing and state.cycles == 1) or full_listing_due(
            catalog, state.job.layout, service, now, self.settings.full_listing_interval)
        try:
            state.outcome.discovered += yield from discover_primary(
                catalog, state.job.layout, service, self.settings, full=full,
                on_mirrored=self.mirror.saw, memo=state.listing_memo)
        except (StorageError, CorruptBackup) as error:
            now = yield Now()
            state.primary_down = True
            state.outcome.primary_error = str(error)
            catalog.note_fault(service.name, service.region, fault_of(error),
                               error.message if isinstance(error, StorageError) else str(error),
                               now)
            catalog.event(now, "error", service.name, service.region,
                          f"cannot list the primary: {error}")
            return
        state.primary_down = False
        now = yield Now()
        catalog.note_reachable(service.name, service.region, now)
        state.retention_due = state.retention_due or full
        for queue in destinations:
            yield from self._refill(queue, state)
        if not self.once:
            yield from self._maintain(state)

    def _maintain(self, state: ServiceRun) -> Generator[Effect, Any, None]:
        """Retire the previous region once the new one can restore (rule 8), and apply the
        retention policy: at each listing cycle, or at the end of a once run (after its
        copies, as an operator expects of `btar sync --once`)."""
        catalog, service = self.catalog, state.job.service
        self._sync_destinations(state, (yield from retire_previous(catalog, service)))
        yield from self.mirror.prepare(state.job.layout, service, self._queues_of(service.name))
        retention = state.job.retention
        if retention is not None and state.retention_due:
            # Retention must never delete the only copy of a point in time, so it judges only
            # after a full listing: an incremental one cannot see what left the primary.
            state.retention_due = False
            for queue in self._queues_of(service.name):
                if queue.role == RegionRole.SECONDARY and not queue.paused:
                    state.outcome.retired += yield from apply_retention(
                        catalog, service, queue.region, retention)

    def _unexpected(self, state: ServiceRun,
                    error: Exception) -> Generator[Effect, Any, None]:
        """Record an unexpected failure of a service's cycle; the service is listed again at
        its next turn, the others go on."""
        now: datetime = yield Now()
        service = state.job.service
        line = f"unexpected {type(error).__name__} in the listing cycle: {error}"
        state.outcome.unexpected = line
        state.outcome.unexpected_detail = "".join(traceback.format_exception(error))
        self.catalog.event(now, "error", service.name, service.region, line)
        # Not again at once: a bug that fails every time must not spin.
        state.next_listing = now + timedelta(seconds=self.settings.poll_interval)

    def _queues_of(self, service: str) -> list[DestinationQueue]:
        return [self.queues[(service, region)]
                for region in sorted(self.regions_of.get(service, ()))]

    def _sync_destinations(self, state: ServiceRun,
                           read: list[LocationRow] | None = None) -> list[DestinationQueue]:
        """Match the queues to the catalog's destinations of a service (management actions
        change them while a run goes on); ``read``: those rows, just read (retire_previous)."""
        service = state.job.service
        # A stopped destination is one whose copies are being deleted (disable --delete).
        rows = [loc for loc in (read if read is not None else self.catalog.locations(
            service.name, roles=[RegionRole.SECONDARY, RegionRole.PREVIOUS]))
            if loc.state != RegionState.STOPPED]
        wanted = {loc.region: loc for loc in rows}
        for queue in self._queues_of(service.name):
            if queue.region not in wanted:
                self._drop(queue)
        for region, loc in sorted(wanted.items()):
            known = self.queues.get((service.name, region))
            if known is None or known.dropped:
                dropped = known
                known = DestinationQueue(state.job.service, region, loc.role)
                known.paused = loc.state == RegionState.PAUSED
                seen = self.catalog.reachability(service.name).get(region)
                known.fault = seen.fault if seen is not None else ""
                # Copies still in flight for the dropped queue come back to this one.
                known.in_flight = dropped.in_flight if dropped is not None else 0
                if dropped is None:
                    bisect.insort(self.order, known.name)
                    self.positions = None
                self.queues[known.name] = known
                self.regions_of.setdefault(service.name, set()).add(region)
            known.role = loc.role
        return [q for q in self._queues_of(service.name) if not q.dropped]

    def _drop(self, queue: DestinationQueue) -> None:
        queue.dropped = True
        queue.clear()
        if queue.in_flight == 0:
            del self.queues[queue.name]
            self.order.remove(queue.name)
            self.positions = None
            self.regions_of[queue.service.name].discard(queue.region)

    def _refill(self, queue: DestinationQueue,
                state: ServiceRun) -> Generator[Effect, Any, None]:
        """Queue what the destination lacks: on the first look (or after a pause) every
        unfinished item, later only what the listing added; items given up are tried again."""
        catalog, service, region = self.catalog, state.job.service, queue.region
        now: datetime = yield Now()
        if queue.paused or not (queue.answered or queue.failed):
            yield from self.faults.look_at(queue, state, now)
            now = yield Now()
        first = not queue.loaded
        with catalog.transaction():
            self.faults.judge(queue, now)  # its reachability write shares this commit
            # Known to be missing there even while the region is paused (its backlog). Past
            # the first look, only the source rows after the mark (what was listed since, and
            # what a full listing found again: see recheck_copies).
            since = 0 if first else catalog.copy_mark(service.name, region)
            added = catalog.add_missing(service.name, service.region, region, now,
                                        since_rowid=since)
            catalog.set_copy_mark(service.name, region)
            location = catalog.location(service.name, region) if queue.paused else None
            if location is not None:
                for row in added:
                    catalog.set_item_status(service.name, region, row.item_id,
                                            ItemStatus.PAUSED, now, location.reason)
        if queue.paused:
            return
        queue.attempts.clear()
        if first:
            queue.add(catalog.items(service.name, region, statuses=UNFINISHED))
            queue.loaded = True
            self._note_work(queue)
            return
        queue.add(added)
        failed = sorted((w.row for w in queue.items.values()
                         if w.row.status == ItemStatus.FAILED),
                        key=lambda r: (r.end_time, r.item_id), reverse=True)
        for row in failed:  # given up before: one more try per listing, oldest first
            work = queue.items[row.item_id]
            work.row = with_status(row, ItemStatus.PENDING)
            queue.put_first(work)
        self._note_work(queue)

    # -- choosing and starting copies ------------------------------------------------------------

    def _note_work(self, queue: DestinationQueue) -> None:
        """Items were queued (the only way into a lane): the queue is a candidate again."""
        for lane in LANES:
            if queue.lanes[lane]:
                _add_sorted(self.with_work[lane], queue.name)

    def _next(self, now: datetime) -> tuple[DestinationQueue, ItemCopies, ObjectRow] | None:
        """The next copy to start: a log lane's turn first; a base only while bases hold
        fewer than their share of the streams. Within a lane the queues take turns in
        ``order``, from where the last turn ended."""
        if sum(self.in_flight.values()) >= self.settings.concurrency:
            return None
        for lane in LANES:
            if lane == Lane.BASE and self.in_flight[Lane.BASE] >= self.settings.base_stream_limit:
                continue
            ranked = self.with_work[lane]
            if not self.order:
                ranked.clear()  # every queue was dropped
            if not ranked:
                continue
            if self.positions is None:
                self.positions = {name: index for index, name in enumerate(self.order)}
            positions = self.positions
            # The queues in turn from where the last turn ended (an index into ``order``,
            # which is sorted as ``ranked``), round the end and back.
            split = bisect.bisect_left(ranked, self.order[self.turn[lane] % len(self.order)])
            for name in ranked[split:] + ranked[:split]:
                queue = self.queues.get(name)
                if queue is None or not queue.lanes[lane]:
                    _discard_sorted(ranked, name)
                    continue
                if not queue.ready(now) or self.services[queue.service.name].primary_down:
                    continue
                found = self._take(queue, lane, now)
                if found is not None:
                    self.turn[lane] = (positions[name] + 1) % len(self.order)
                    return queue, found[0], found[1]
        return None

    def _take(self, queue: DestinationQueue, lane: Lane,
              now: datetime) -> tuple[ItemCopies, ObjectRow] | None:
        """The oldest object of this lane that can start: payload first, the completion
        marker once every payload object verified."""
        while (found := queue.head(lane, lambda work: self._load(queue, lane, work))) \
                is not None:
            work, key = found
            tries = queue.attempts.get(key, 0)
            if tries < self.settings.max_attempts:
                assert work.refs is not None
                return work, work.refs[key]
            self._give_up(queue, work.row.item_id, f"{key} failed {tries} times", now)
        return None

    def _load(self, queue: DestinationQueue, lane: Lane, work: ItemCopies) -> None:
        """Read an item's objects, and those of the items after it in its lane (they are
        next: one query for many)."""
        ids = [work.row.item_id]
        for item_id in queue.lanes[lane]:
            if len(ids) >= REFS_AHEAD:
                break
            if queue.items[item_id].refs is None and item_id != ids[0]:
                ids.append(item_id)
        found = self.catalog.items_refs(queue.service.name, queue.region, ids)
        for item_id in ids:
            refs = found.get(item_id, [])
            queue.items[item_id].load(refs)
            queue.owner.update((ref.key, item_id) for ref in refs)

    def _give_up(self, queue: DestinationQueue, item_id: str, reason: str, now: datetime) -> None:
        """An object failed max_attempts times: the item is failed until the next listing."""
        work = queue.items[item_id]
        work.row = with_status(work.row, ItemStatus.FAILED)
        queue.take_out(work)
        queue.busy = True
        service = queue.service.name
        self.catalog.set_item_status(service, queue.region, item_id, ItemStatus.FAILED, now,
                                     reason)
        self.catalog.event(now, "error", service, queue.region,
                           f"{item_id} not published: {reason}")
        self.services[service].outcome.failed.append(item_id)

    def _mark_copying(self, started: list[tuple[DestinationQueue, ItemCopies]],
                      now: datetime) -> None:
        """Items whose first copies just started, shown as copying (one transaction)."""
        if not started:
            return
        by_queue: dict[tuple[str, str], list[str]] = {}
        for queue, work in started:
            by_queue.setdefault(queue.name, []).append(work.row.item_id)
        with self.catalog.transaction():
            for (service, region), item_ids in sorted(by_queue.items()):
                self.catalog.mark_copying(service, region, item_ids, now)

    def _start(self, queue: DestinationQueue, work: ItemCopies, ref: ObjectRow) -> CopyTask:
        service = queue.service
        work.start(ref.key)
        queue.in_flight += 1
        lane = lane_of(work.row.kind)
        self.in_flight[lane] += 1
        task = CopyTask(service.region, queue.region, f"{service.key_prefix}/{ref.key}",
                        ref.size, ref.sha256, ref.digest)
        self.flights[(task.destination, task.key)] = queue.name, lane
        return task

    def _unstart(self, queue: DestinationQueue, work: ItemCopies, task: CopyTask) -> None:
        """The driver refused to start a copy (it is stopping)."""
        queue.unstart(work, task.key[len(queue.service.key_prefix) + 1:])
        queue.in_flight -= 1
        _, lane = self.flights.pop((task.destination, task.key))
        self.in_flight[lane] -= 1

    def _waiting(self, now: datetime) -> bool:
        """Once mode: is there work that can start now, or after a throttling pause?"""
        return any(queue.items and not queue.paused and not queue.dropped
                   and not self.services[queue.service.name].primary_down
                   and queue.hold_until is not None and queue.hold_until > now
                   for queue in self.queues.values())

    def _holds(self) -> list[DestinationQueue]:
        """The queues under a throttling pause now."""
        held = []
        for name in list(self.held):
            queue = self.queues.get(name)
            if queue is None or queue.hold_until is None:
                self.held.discard(name)
            else:
                held.append(queue)
        return held

    def _lift_holds(self, until: datetime) -> None:
        for queue in self._holds():
            if queue.hold_until is not None and queue.hold_until <= until:
                queue.hold_until = None

    def _due_now(self, now: datetime) -> list[str]:
        """The services whose next listing is due, in name order (taken off ``due``)."""
        due = self.due
        names = []
        while due and due[0][0] <= now:
            names.append(heapq.heappop(due)[1])
        return sorted(names)

    def _timeout(self, now: datetime) -> float | None:
        """Seconds until something is due without a completion: a listing, or the end of a
        throttling pause (None: only a completion can bring work)."""
        moments = [q.hold_until for q in self._holds()
                   if q.hold_until is not None and q.hold_until > now and q.items]
        if not self.once and self.due:
            # The earliest waiting service (a service never listed is due now). One whose
            # cycle is under way is due only once its cycle ends, which a completion brings:
            # waking for it earlier finds nothing.
            moments.append(max(self.due[0][0], now))
        if not moments:
            return None if self.once else self.settings.poll_interval
        return max(0.0, (min(moments) - now).total_seconds())

    # -- completions ----------------------------------------------------------------------------

    def _apply(self, results: tuple[CopyResult, ...]) -> Generator[Effect, Any, None]:
        """Record finished copies and publish every item whose objects all verified."""
        results = tuple((yield from self.mirror.settle(results)))  # engine.mirror's writes
        now: datetime = yield Now()
        groups: dict[tuple[str, str], list[CopyResult]] = {}
        for result in results:
            name, lane = self.flights.pop((result.task.destination, result.task.key))
            self.in_flight[lane] -= 1
            groups.setdefault(name, []).append(result)
        for name in sorted(groups):
            queue = self.queues.get(name)
            if queue is not None:
                yield from self._apply_queue(queue, groups[name], now)

    def _apply_queue(self, queue: DestinationQueue, results: list[CopyResult],
                     now: datetime) -> Generator[Effect, Any, None]:
        catalog, service, region = self.catalog, queue.service, queue.region
        outcome = self.services[service.name].outcome
        queue.in_flight -= len(results)
        location = catalog.location(service.name, region)
        if queue.dropped or location is None or location.state == RegionState.STOPPED \
                or location.role not in (RegionRole.SECONDARY, RegionRole.PREVIOUS):
            # No longer a destination: what landed there is not recorded as a copy.
            self._drop(queue)
            return
        prefix = f"{service.key_prefix}/"
        #: a side that did not answer: (its region, the error, its fault class, the reason
        #: the fault shows)
        down: tuple[str, str, str, str] | None = None
        #: the last fault of the destination among these results (those of the source are
        #: seen by its listing)
        fault: tuple[str, str] | None = None
        throttled = False
        unverified: list[str] = []
        records: list[CopyRecord] = []
        touched: dict[str, ItemCopies] = {}
        for result in results:
            key = result.task.key[len(prefix):]
            work = queue.items.get(queue.owner.get(key, ""))
            if work is None:
                continue
            queue.attempts[key] = queue.attempts.get(key, 0) + 1
            ok, how = verify(result, result.task.sha256)
            queue.finish(work, key, ok)
            error = "" if ok else (result.error or how)
            records.append(CopyRecord(key, ok, result.method, how if ok else "", error,
                                      *established(result)))
            touched[work.row.item_id] = work
            if ok:
                outcome.copied_objects += 1
                outcome.copied_bytes += result.task.size
                continue
            if result.ok:
                unverified.append(result.task.key)
            elif result.failed_side == Side.DESTINATION and result.error_kind != ErrorKind.MISMATCH:
                fault = (result.fault or FAULT_OF_KIND.get(result.error_kind, "error"),
                         result.reason or error)
            throttled = throttled or result.error_kind == ErrorKind.THROTTLED
            catalog.event(now, "warning", service.name, region, f"copy of {key} failed: {error}")
            if result.error_kind == ErrorKind.UNREACHABLE:
                down = (service.region if result.failed_side == Side.SOURCE else region,
                        result.error, result.fault or "unreachable", result.reason or result.error)
            elif result.error_kind == ErrorKind.MISSING and result.failed_side == Side.SOURCE:
                queue.attempts[key] = self.settings.max_attempts  # retrying cannot help
        self._note_work(queue)  # a failed copy, or a marker now due, unparked its item
        published = [(item_id, (now - work.row.completed_at).total_seconds())
                     for item_id, work in sorted(touched.items()) if work.complete]
        # (A failed item stays failed: it waits for the next listing, see _refill.)
        copying = [item_id for item_id, work in sorted(touched.items())
                   if not work.complete
                   and work.row.status not in (ItemStatus.COPYING, ItemStatus.FAILED)]
        with catalog.transaction():
            catalog.record_copies(service.name, region, records, now)
            catalog.learn_sha256(service.name, [
                (r.task.key[len(prefix):], r.source_sha256) for r in results
                if r.source_sha256 is not None and r.task.sha256 is None])
            catalog.publish_items(service.name, region, published, now)
            if copying:
                catalog.mark_copying(service.name, region, copying, now)
        for item_id in copying:
            work = queue.items[item_id]
            work.row = with_status(work.row, ItemStatus.COPYING)
        for item_id, lag in published:
            queue.remove(item_id)
            outcome.published.append(item_id)
            if self.hooks.on_publish is not None:
                self.hooks.on_publish(service.name, region, item_id, now, lag)
        if fault is not None:
            self.faults.copies_failed(queue, *fault, now)
        if any(r.ok for r in records):
            queue.answered = True
            self.faults.heard(region, now)
        queue.busy = queue.busy or bool(published)
        queue.throttled = queue.throttled + 1 if throttled else 0
        if throttled:
            queue.hold_until = now + timedelta(seconds=self._backoff(queue.throttled))
            self.held.add(queue.name)
        if unverified:
            yield from self.faults.remove_unverified(queue, unverified, now)
        if down is not None:
            self.faults.stop_for(queue, self.services[queue.service.name], *down, now)

    def _backoff(self, throttled: int) -> float:
        """Seconds to hold a destination the provider asked to slow down."""
        return min(self.settings.throttle_backoff_cap,
                   self.settings.throttle_backoff * 2.0 ** (throttled - 1))


def replicate(catalog: Catalog, jobs: Sequence[ServiceJob], settings: ReplicationSettings, *,
              once: bool, full_listing: bool = False,
              hooks: Hooks | None = None) -> Generator[Effect, Any, list[PassOutcome]]:
    """Replicate ``jobs`` to their destinations: once (each service listed once, its work
    finished) or until the driver asks to stop. Returns each service's last outcome."""
    scheduler = Scheduler(catalog, jobs, settings, once=once, full_listing=full_listing,
                          hooks=hooks)
    return (yield from scheduler.run())


def _add_sorted(ranked: list[tuple[str, str]], name: tuple[str, str]) -> None:
    """Add ``name`` to a sorted list of distinct names, unless it is there."""
    at = bisect.bisect_left(ranked, name)
    if at == len(ranked) or ranked[at] != name:
        ranked.insert(at, name)


def _discard_sorted(ranked: list[tuple[str, str]], name: tuple[str, str]) -> None:
    """Take ``name`` out of a sorted list of distinct names, if it is there."""
    at = bisect.bisect_left(ranked, name)
    if at < len(ranked) and ranked[at] == name:
        del ranked[at]

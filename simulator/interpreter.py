"""The SimPy twin of engine.runtime.LiveDriver: it carries out the effects engine procedures
yield, as SimPy events on the virtual clock.

``SimInterpreter.drive(procedure)`` is used inside SimPy processes (``yield from``): a list or
read waits the region's request latency; a started copy becomes a process that shares the
link's slots and takes latency + size / bandwidth, and its result comes back with the next
``NextCompletions``; an outage makes copies in flight come back failed as unreachable.
``SimDriver`` is the instant variant the application API (engine.api.Btar) is given for
management actions: same storage, zero virtual time.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, assert_never

import simpy

from engine.effects import (
    Completions,
    CopyResult,
    CopyTask,
    DeleteBatch,
    Effect,
    ErrorKind,
    FetchBatch,
    FetchResult,
    ListPage,
    NextCompletions,
    Now,
    ReadObject,
    RequestDone,
    Side,
    StartCopy,
    StartRequest,
    drive,
)
from engine.errors import StorageError
from engine.storage.base import ListPage as ListPageResult
from engine.transfer import execute_copy
from simulator.world import Crash, Link, Outage

if TYPE_CHECKING:
    from simulator.world import World

T = TypeVar("T")

NO_FETCH = "fetching is not simulated: a fork is planned by the engine and timed by the world"


def _failed(task: CopyTask, kind: ErrorKind, side: Side, message: str) -> CopyResult:
    return CopyResult(task=task, ok=False, error=message, error_kind=kind, failed_side=side)


def _completions(done: list[CopyResult | RequestDone], stop_requested: bool) -> Completions:
    return Completions(tuple(r for r in done if isinstance(r, CopyResult)), stop_requested,
                       requests=tuple(r for r in done if isinstance(r, RequestDone)))


class _InFlight:
    """The copies and requests one driven procedure has in flight, and those finished but
    not yet told."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.running: list[simpy.Process] = []
        self.finished: list[CopyResult | RequestDone] = []
        self._waiter: simpy.Event | None = None

    def start(self, process: simpy.Process) -> None:
        self.running.append(process)
        process.callbacks.append(self._done)

    def _done(self, event: simpy.Event) -> None:
        self.running.remove(event)  # type: ignore[arg-type]
        if event.ok and event.value is not None:
            self.finished.append(event.value)
        if self._waiter is not None and not self._waiter.triggered:
            self._waiter.succeed()

    def next(self, timeout: float | None) -> Generator[
            simpy.Event, Any, list[CopyResult | RequestDone]]:
        """What finished: at once if some are waiting, else after the first one (or the
        timeout; with nothing in flight and no timeout, at once)."""
        if not self.finished and (self.running or timeout is not None):
            self._waiter = self.env.event()
            events = [self._waiter]
            if timeout is not None:
                events.append(self.env.timeout(max(0.0, timeout)))
            yield self.env.any_of(events)
            self._waiter = None
        done, self.finished = self.finished, []
        return done


#: the effects that take no virtual time (``SimInterpreter.at_once``)
_AT_ONCE = (Now, StartCopy, StartRequest)


class SimInterpreter:
    """Runs engine procedures inside SimPy processes."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.env = world.env
        self.journal = world.journal
        self._copies = 0
        #: start no more copies; the procedure collects those in flight and ends
        self.stop_requested = False

    def drive(self, procedure: Generator[Effect, Any, T]) -> Generator[simpy.Event, Any, T]:
        """Drive ``procedure`` to its end; storage errors are thrown back into it, exactly as
        LiveDriver.run does. An interrupt (a crash) drops the procedure mid-way, and the
        copies it had in flight die with it."""
        copies = _InFlight(self.env)
        result: Any = None
        error: StorageError | None = None
        at_once, now = self.at_once, self.world.now
        try:
            while True:
                try:
                    effect = procedure.throw(error) if error is not None \
                        else procedure.send(result)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]
                result, error = None, None
                if isinstance(effect, Now):  # a pass asks the time some four times
                    result = now()
                    continue
                if isinstance(effect, _AT_ONCE):
                    # most effects take no virtual time: no generator for them
                    result = at_once(effect, copies)
                    continue
                try:
                    result = yield from self.perform(effect, copies)
                except StorageError as failure:
                    error = failure
        except simpy.Interrupt:
            for process in copies.running:
                if process.is_alive:
                    process.interrupt(Crash())
            raise
        finally:
            procedure.close()

    def at_once(self, effect: Now | StartCopy | StartRequest, copies: _InFlight) -> Any:
        """An effect that takes no virtual time (it may start processes); its result."""
        match effect:
            case Now():
                return self.world.now()
            case StartCopy():
                if self.stop_requested:
                    return False
                self._copies += 1
                copies.start(self.env.process(self._copy(effect.task, self._copies)))
                return True
            case StartRequest():
                copies.start(self.env.process(self._request(effect)))
                return None
            case _:
                assert_never(effect)

    def perform(self, effect: Effect, copies: _InFlight) -> Generator[simpy.Event, Any, Any]:
        """One effect as SimPy events; returns its result or raises StorageError."""
        world = self.world
        match effect:
            case Now() | StartCopy() | StartRequest():
                return self.at_once(effect, copies)
            case ListPage() | ReadObject():
                yield self.env.timeout(world.request_latency(effect.region))
                return perform_request(world, effect)
            case NextCompletions():
                done = yield from copies.next(effect.timeout)
                return _completions(done, self.stop_requested)
            case DeleteBatch():
                yield self.env.timeout(world.request_latency(effect.region))
                return perform_delete(world, effect)
            case FetchBatch():
                return tuple(FetchResult(t, ok=False, error=NO_FETCH) for t in effect.tasks)
            case _:
                assert_never(effect)

    def _request(self, effect: StartRequest) -> Generator[simpy.Event, Any, RequestDone | None]:
        """A list, read or deletion beside the procedure: the region's request latency, then
        the request (a crash drops it)."""
        request = effect.request
        try:
            yield self.env.timeout(self.world.request_latency(request.region))
        except simpy.Interrupt:
            return None
        try:
            if isinstance(request, DeleteBatch):
                return RequestDone(effect.ticket, perform_delete(self.world, request))
            return RequestDone(effect.ticket, perform_request(self.world, request))
        except StorageError as error:
            return RequestDone(effect.ticket, error=error)

    # -- copies --------------------------------------------------------------------------------

    def _copy(self, task: CopyTask,
              number: int) -> Generator[simpy.Event, Any, CopyResult | None]:
        world = self.world
        link = world.link(task.source, task.destination)
        size = world.declared.get(task.key, task.size)
        self.journal.add("copy", "invoke", id=number, source=task.source,
                         destination=task.destination, key=task.key, bytes=size)
        if link is None:
            result = _failed(task, ErrorKind.UNREACHABLE, Side.DESTINATION,
                             f"no network between {task.source} and {task.destination}")
            return self._completed(number, task, result)
        with link.slots.request() as slot:
            try:
                yield slot
            except simpy.Interrupt:
                self.journal.add("copy", "cancel", id=number, key=task.key)
                return None
            flight = world.fly(link.ends, link.regions)
            try:
                result = yield from self._transfer(task, link, size)
            except simpy.Interrupt as interrupt:
                if not isinstance(interrupt.cause, Outage):
                    self.journal.add("copy", "cancel", id=number, key=task.key)
                    return None
                cause = interrupt.cause
                side = Side.SOURCE if cause.region == task.source else Side.DESTINATION
                what = cause.region or " <-> ".join(cause.link)
                result = _failed(task, ErrorKind.UNREACHABLE, side,
                                 f"{what} went away while copying (injected outage)")
            finally:
                world.land(flight)
        return self._completed(number, task, result)

    def _transfer(self, task: CopyTask, link: Link,
                  size: int) -> Generator[simpy.Event, Any, CopyResult]:
        """Fail fast when something is down or refuses, else take the transfer time and copy
        for real between the memory storages (execute_copy establishes the destination hash)."""
        world = self.world
        source, destination = world.store(task.source), world.store(task.destination)
        if not link.up:
            yield self.env.timeout(link.latency)
            return _failed(task, ErrorKind.UNREACHABLE, Side.DESTINATION,
                           f"link {' <-> '.join(link.regions)} is down (injected)")
        if source.unreachable or destination.unreachable:
            yield self.env.timeout(link.latency)
            return execute_copy(source, destination, task)  # the wrapper says who is down
        # (no region was ever throttled: no draw to make)
        for region in (task.source, task.destination) if world.throttles else ():
            try:
                world.check_throttle(region, task.key)
            except StorageError as error:
                yield self.env.timeout(link.latency)
                return _failed(task, ErrorKind.THROTTLED,
                               Side.SOURCE if region == task.source else Side.DESTINATION,
                               str(error))
        seconds = link.latency + size / link.bandwidth
        if link.failure_rate > 0:
            draw = world.rng(f"link:{link.regions[0]}:{link.regions[1]}")
            if draw.random() < link.failure_rate:
                yield self.env.timeout(link.latency + draw.random() * (seconds - link.latency))
                return _failed(task, ErrorKind.OTHER, Side.DESTINATION,
                               "connection reset by peer (injected link failure)")
        yield self.env.timeout(seconds)
        return execute_copy(source, destination, task)

    def _completed(self, number: int, task: CopyTask, result: CopyResult) -> CopyResult:
        world = self.world
        if result.ok:
            # Ground truth for the checker: what the bytes really hash to on both sides.
            self.journal.add("copy", "ok", id=number, key=task.key,
                             destination=task.destination, expected=task.sha256,
                             method=result.method, reported_sha256=result.sha256,
                             stored_sha256=world.physical_sha256(task.destination, task.key),
                             source_sha256=world.physical_sha256(task.source, task.key))
        else:
            self.journal.add("copy", "fail", error_kind=result.error_kind,
                             side=result.failed_side, error=result.error, id=number,
                             key=task.key, destination=task.destination, expected=task.sha256)
        return result


def perform_request(world: World, effect: ListPage | ReadObject, *,
                    throttled: bool = True) -> Any:
    """A list or read against a region, through its fault wrapper, journaled."""
    if isinstance(effect, ListPage):
        op, fields = "list", {"region": effect.region, "prefix": effect.prefix,
                              "start_after": effect.start_after}
    else:
        op, fields = "read", {"region": effect.region, "key": effect.key}
    world.journal.add(op, "invoke", **fields)
    try:
        if throttled and world.throttles.get(effect.region):  # the key is text only then
            world.check_throttle(effect.region, str(fields.get("key") or fields["prefix"]))
        store = world.store(effect.region)
        if isinstance(effect, ListPage):
            page: ListPageResult = store.list_page(effect.prefix, effect.start_after,
                                                   effect.limit)
            world.journal.add(op, "ok", objects=len(page.objects), **fields)
            return page
        data = store.read_bytes(effect.key)
        world.journal.add(op, "ok", bytes=len(data), **fields)
        return data
    except StorageError as error:
        world.journal.add(op, "fail", error=str(error), **fields)
        raise


def perform_delete(world: World, batch: DeleteBatch) -> tuple[str, ...]:
    """Delete a batch of keys in a region, journaled; an error message per key."""
    world.journal.add("delete", "invoke", region=batch.region, keys=len(batch.keys))
    store = world.store(batch.region)
    errors: list[str] = []
    for key in batch.keys:
        try:
            store.delete(key)
            errors.append("")
        except StorageError as error:
            errors.append(str(error))
    world.journal.add("delete", "ok", region=batch.region, keys=len(batch.keys),
                      failed=sum(1 for e in errors if e))
    return tuple(errors)


class SimDriver:
    """The driver engine.api.Btar is given: virtual now, and procedures carried out at once
    (zero virtual time) against the same storages. Management actions (enable, disable with
    delete) and fork planning go through it."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._finished: list[CopyResult | RequestDone] = []

    def now(self) -> datetime:
        return self.world.now()

    def run(self, procedure: Generator[Effect, Any, T]) -> T:
        """Drive ``procedure`` until it returns; storage errors are thrown back into it."""
        return drive(procedure, self._perform)

    def _perform(self, effect: Effect) -> Any:
        world = self.world
        match effect:
            case Now():
                return world.now()
            case ListPage() | ReadObject():
                # Management actions are not throttled: an operator retries them by hand.
                return perform_request(world, effect, throttled=False)
            case StartCopy():
                self._finished.append(execute_copy(world.store(effect.task.source),
                                                   world.store(effect.task.destination),
                                                   effect.task))
                return True
            case StartRequest():
                try:
                    outcome = RequestDone(effect.ticket, self._perform(effect.request))
                except StorageError as error:
                    outcome = RequestDone(effect.ticket, error=error)
                self._finished.append(outcome)
                return None
            case NextCompletions():
                done, self._finished = self._finished, []
                return _completions(done, False)
            case DeleteBatch():
                return perform_delete(world, effect)
            case FetchBatch():
                return tuple(FetchResult(t, ok=False, error=NO_FETCH) for t in effect.tasks)
            case _:
                assert_never(effect)

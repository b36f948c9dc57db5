"""The real driver: carries out the engine's effects with the wall clock, a bounded thread
pool and real storage backends. Its clock is engine.clock's (named here too, as before)."""

from __future__ import annotations

import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar, assert_never

from engine.clock import Clock, WallClock
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
from engine.errors import BtarError, StorageError, Unreachable
from engine.storage.base import Storage
from engine.transfer import error_kind, execute_copy, execute_fetch

T = TypeVar("T")
_log = logging.getLogger("btar.runtime")

#: Test hook for tests/reliability/test_kill.py, not a feature: with BTAR_TEST_KILL_AT="N" the
#: process SIGKILLs itself right before a LiveDriver carries out its Nth effect; with "N+" right
#: after it (before the procedure sees the result); "Kind:N" and "Kind:N+" count only effects
#: of that kind (StartCopy, NextCompletions, ...), which stays meaningful while requests and
#: copies finish in varying order. Read once per driver; unset, it costs nothing.
KILL_AT_ENV = "BTAR_TEST_KILL_AT"


class StopRequested(BtarError):
    """A stop was asked for; the procedure ended between two batches."""

    exit_code = 0

    def __init__(self) -> None:
        super().__init__("stopped between two batches; run again to continue")


@dataclass(frozen=True)
class CopyProgress:
    """Reported after each finished copy: copies (and bytes) finished and started so far in
    this run, and the last one to finish."""

    done: int
    total: int
    bytes_done: int
    bytes_total: int
    last: CopyResult | None


#: seconds between two looks at a stop request while copies are in flight
STOP_CHECK = 0.2
#: after a wake's first completion, how long to wait for more while others are in flight. A
#: wake's catalog writes are one transaction per destination, and each SQLite call of the
#: decision thread hands the GIL to the copy threads and waits to get it back: fewer, larger
#: batches cost less (2,000 small local copies: 0.80 -> 0.67 s of CPU; 2,000 server-side S3
#: copies: 1.79 -> 1.69 s), for at most this much more lag.
GATHER = 0.005
#: lists, reads and deletions carried out at once (beside the copies). An idle pass is three
#: short requests: 1,000 services listed every 10 s make 300 a second, and a listing takes S3
#: 20-50 ms, so 4 threads (at most 80-200 a second) held the passes back; 16 make 320-800.
REQUEST_THREADS = 16


class LiveDriver:
    """Runs procedures (generators of effects) to completion against real storage: copies
    run on a bounded thread pool beside the procedure, which hears of each one as it ends."""

    def __init__(self, storage_for: Callable[[str], Storage], *, concurrency: int = 8,
                 clock: Clock | None = None,
                 on_copy: Callable[[CopyProgress], None] | None = None,
                 on_fetch: Callable[[int, int, FetchResult], None] | None = None) -> None:
        self._storage_for = storage_for
        self.on_fetch = on_fetch
        #: set (e.g. from a SIGTERM handler) to start no more copies or fetches; the copies
        #: in flight finish and are recorded
        self.stop_requested = threading.Event()
        self._concurrency = concurrency
        self.clock: Clock = clock or WallClock()
        self.on_copy = on_copy
        self._kill_at = os.environ.get(KILL_AT_ENV, "")
        self._effects = 0
        self._effects_of: dict[str, int] = {}
        self._pool: ThreadPoolExecutor | None = None
        #: lists, reads and deletions run on a pool of their own: never behind copies
        self._requests: ThreadPoolExecutor | None = None
        self._finished: queue.SimpleQueue[CopyResult | RequestDone] = queue.SimpleQueue()
        self._in_flight = 0
        #: what a request thread died of that is no storage error: it ends the run
        self._crashed: BaseException | None = None
        self._progress = CopyProgress(0, 0, 0, 0, None)

    def now(self) -> datetime:
        return self.clock.now()

    def run(self, procedure: Generator[Effect, Any, T]) -> T:
        """Drive ``procedure`` until it returns; storage errors are thrown back into it.
        Copies it started and did not collect are waited for (writes are atomic) but not
        reported: the next run finds and verifies them again."""
        try:
            return drive(procedure, self._perform_unless_stopped)
        finally:
            for pool in (self._pool, self._requests):
                if pool is not None:
                    pool.shutdown(wait=True, cancel_futures=True)
            self._pool = self._requests = None
            self._finished = queue.SimpleQueue()
            self._in_flight = 0
            self._crashed = None
            self._progress = CopyProgress(0, 0, 0, 0, None)

    def _perform_unless_stopped(self, effect: Effect) -> Any:
        if self.stop_requested.is_set() and isinstance(effect, FetchBatch):
            # Stop between batches: what earlier batches did is recorded, nothing is
            # half-done, and the next run picks up from there.
            raise StopRequested
        if not self._kill_at:
            return self._perform(effect)
        self._effects += 1
        kind = type(effect).__name__
        self._effects_of[kind] = self._effects_of.get(kind, 0) + 1
        self._test_kill(effect, after=False)
        try:
            return self._perform(effect)
        finally:
            self._test_kill(effect, after=True)

    def _test_kill(self, effect: Effect, *, after: bool) -> None:
        """The BTAR_TEST_KILL_AT hook (see KILL_AT_ENV): die as a crash would, no cleanup."""
        kind, sign = type(effect).__name__, "+" if after else ""
        if self._kill_at in (f"{self._effects}{sign}",
                             f"{kind}:{self._effects_of.get(kind, 0)}{sign}"):
            sys.stderr.write(f"btar test hook: SIGKILL {'after' if after else 'before'} effect "
                             f"{self._effects} ({type(effect).__name__})\n")
            sys.stderr.flush()
            os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))

    def _perform(self, effect: Effect) -> Any:
        try:
            return self._carry_out(effect)
        except BtarError:
            raise
        except Exception as error:
            if not isinstance(effect, ListPage | ReadObject | DeleteBatch):
                raise
            # A backend's unexpected failure is a fault of that region, not of the run.
            _log.debug("unexpected error from %s", effect.region, exc_info=True)
            raise StorageError(f"region {effect.region}", "",
                               f"unexpected {type(error).__name__}: {error}") from None

    def _carry_out(self, effect: Effect) -> Any:
        match effect:
            case Now():
                return self.clock.now()
            case ListPage():
                return self._storage_for(effect.region).list_page(
                    effect.prefix, effect.start_after, effect.limit)
            case ReadObject():
                return self._storage_for(effect.region).read_bytes(effect.key)
            case StartCopy():
                return self._start_copy(effect)
            case StartRequest():
                return self._start_request(effect)
            case NextCompletions():
                return self._next_completions(effect)
            case FetchBatch():
                return self._fetch_batch(effect)
            case DeleteBatch():
                return self._delete_batch(effect)
            case _:
                assert_never(effect)

    def _sleep(self, seconds: float) -> None:
        """The clock's sleep; the wall clock's wakes early when a stop is asked."""
        if isinstance(self.clock, WallClock):
            self.stop_requested.wait(max(0.0, seconds))
        else:
            self.clock.sleep(seconds)

    def _start_copy(self, effect: StartCopy) -> bool:
        if self.stop_requested.is_set():
            return False
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self._concurrency,
                                            thread_name_prefix="btar-copy")
        task = effect.task
        finished = self._finished
        try:
            source = self._storage_for(task.source)
        except StorageError as error:
            return self._refused(task, error, Side.SOURCE)
        try:
            destination = self._storage_for(task.destination)
        except StorageError as error:
            return self._refused(task, error, Side.DESTINATION)

        def copy() -> None:
            try:
                result = execute_copy(source, destination, task)
            except Exception as error:  # a backend's bug must come back as a failed copy
                result = CopyResult(task, ok=False, error=f"{type(error).__name__}: {error}",
                                    error_kind=ErrorKind.OTHER, failed_side=Side.DESTINATION)
            finished.put(result)

        self._pool.submit(copy)
        self._in_flight += 1
        progress = self._progress
        self._progress = replace(progress, total=progress.total + 1,
                                 bytes_total=progress.bytes_total + task.size)
        return True

    def _start_request(self, effect: StartRequest) -> None:
        if self._requests is None:
            self._requests = ThreadPoolExecutor(max_workers=REQUEST_THREADS,
                                                thread_name_prefix="btar-request")
        finished = self._finished

        def request() -> None:
            try:
                done = RequestDone(effect.ticket, self._perform(effect.request))
            except StorageError as error:
                done = RequestDone(effect.ticket, error=error)
            except BaseException as error:
                # Not a fault of the location (a crash, an interrupt): the run ends with it
                # at the next look, before the procedure sees this request's outcome.
                self._crashed = error
                done = RequestDone(effect.ticket)
            finished.put(done)

        self._requests.submit(request)
        self._in_flight += 1

    def _refused(self, task: CopyTask, error: StorageError, side: Side) -> bool:
        """A copy whose location cannot even be opened: it comes back failed at once."""
        self._finished.put(CopyResult(task, ok=False, error=str(error),
                                      error_kind=error_kind(error), failed_side=side,
                                      fault=error.fault, reason=error.message))
        self._in_flight += 1
        return True

    def _next_completions(self, effect: NextCompletions) -> Completions:
        """Wait for the first copy or request to finish (or the timeout, or a stop), then
        for more while others are in flight (up to GATHER), and take every one finished."""
        finished: list[CopyResult | RequestDone] = []
        if self._in_flight == 0:
            if effect.timeout is not None:
                self._sleep(effect.timeout)
            return Completions((), self.stop_requested.is_set())
        deadline = None if effect.timeout is None else time.monotonic() + effect.timeout
        while not finished:
            wait_for = STOP_CHECK if deadline is None \
                else min(STOP_CHECK, deadline - time.monotonic())
            if wait_for <= 0:
                break
            try:
                finished.append(self._finished.get(timeout=wait_for))
            except queue.Empty:
                if self.stop_requested.is_set():
                    break
        if finished and len(finished) < self._in_flight:
            gather_until = time.monotonic() + GATHER
            while len(finished) < self._in_flight:
                left = gather_until - time.monotonic()
                if left <= 0:
                    break
                try:
                    finished.append(self._finished.get(timeout=left))
                except queue.Empty:
                    break
        while True:
            try:
                finished.append(self._finished.get_nowait())
            except queue.Empty:
                break
        self._in_flight -= len(finished)
        if self._crashed is not None:
            raise self._crashed
        results = [r for r in finished if isinstance(r, CopyResult)]
        for result in results:
            progress = self._progress
            self._progress = replace(progress, done=progress.done + 1, last=result,
                                     bytes_done=progress.bytes_done + result.task.size)
            if self.on_copy is not None:
                self.on_copy(self._progress)
        return Completions(tuple(results), self.stop_requested.is_set(),
                           tuple(r for r in finished if isinstance(r, RequestDone)))

    def _fetch_batch(self, batch: FetchBatch) -> tuple[FetchResult, ...]:
        workers = max(1, min(self._concurrency, len(batch.tasks)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="btar-fetch") as pool:
            futures = [pool.submit(execute_fetch, self._storage_for(t.region), t)
                       for t in batch.tasks]
            results = []
            for index, future in enumerate(futures):
                results.append(future.result())
                if self.on_fetch is not None:
                    self.on_fetch(index + 1, len(futures), results[-1])
        return tuple(results)

    def _delete_batch(self, batch: DeleteBatch) -> tuple[str, ...]:
        storage = self._storage_for(batch.region)
        errors: list[str] = []
        for key in batch.keys:
            try:
                storage.delete(key)
                errors.append("")
            except StorageError as error:
                errors.append(str(error))
        return tuple(errors)


class StorageRegistry:
    """Opens each region's storage once, on first use."""

    def __init__(self, opener: Callable[[str], Storage]) -> None:
        self._opener = opener
        self._open: dict[str, Storage] = {}
        #: request threads and the driver's own open regions at the same time
        self._lock = threading.Lock()

    def __call__(self, region: str) -> Storage:
        """The region's storage; a location that cannot be opened (its folder is a file,
        a volume is not mounted) is Unreachable, and opening is tried again next time."""
        with self._lock:
            if region not in self._open:
                try:
                    self._open[region] = self._opener(region)
                except BtarError:
                    raise
                except Exception as error:
                    raise Unreachable(f"region {region}", "", "cannot open its location: "
                                      f"{type(error).__name__}: {error}") from None
            return self._open[region]

    def close(self) -> None:
        with self._lock:
            for storage in self._open.values():
                storage.close()
            self._open.clear()

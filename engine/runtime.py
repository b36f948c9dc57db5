"""The real driver: carries out the engine's effects with the wall clock, a bounded thread
pool and real storage backends."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Generator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from engine.effects import (
    CopyBatch,
    CopyResult,
    DeleteBatch,
    Effect,
    FetchBatch,
    FetchResult,
    ListPage,
    Now,
    ReadObject,
    Sleep,
    drive,
)
from engine.errors import BtarError, StorageError
from engine.storage.base import Storage
from engine.transfer import execute_copy, execute_fetch

T = TypeVar("T")

#: Test hook for tests/reliability/test_kill.py, not a feature: with BTAR_TEST_KILL_AT="N" the
#: process SIGKILLs itself right before a LiveDriver carries out its Nth effect; with "N+" right
#: after it (before the procedure sees the result). Read once per driver; unset, it costs nothing.
KILL_AT_ENV = "BTAR_TEST_KILL_AT"


class StopRequested(BtarError):
    """A stop was asked for; the procedure ended between two batches."""

    exit_code = 0

    def __init__(self) -> None:
        super().__init__("stopped between two copy batches; run again to continue")


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class WallClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class CopyProgress:
    """Reported after each finished copy of a batch."""

    done: int
    total: int
    bytes_done: int
    bytes_total: int
    last: CopyResult


class LiveDriver:
    """Runs procedures (generators of effects) to completion against real storage."""

    def __init__(self, storage_for: Callable[[str], Storage], *, concurrency: int = 8,
                 clock: Clock | None = None,
                 on_copy: Callable[[CopyProgress], None] | None = None,
                 on_fetch: Callable[[int, int, FetchResult], None] | None = None) -> None:
        self._storage_for = storage_for
        self.on_fetch = on_fetch
        #: set (e.g. from a SIGTERM handler) to stop before the next copy or fetch batch
        self.stop_requested = threading.Event()
        self._concurrency = concurrency
        self.clock: Clock = clock or WallClock()
        self.on_copy = on_copy
        self._kill_at = os.environ.get(KILL_AT_ENV, "")
        self._effects = 0

    def now(self) -> datetime:
        return self.clock.now()

    def run(self, procedure: Generator[Effect, Any, T]) -> T:
        """Drive ``procedure`` until it returns; storage errors are thrown back into it."""
        return drive(procedure, self._perform_unless_stopped)

    def _perform_unless_stopped(self, effect: Effect) -> Any:
        if self.stop_requested.is_set() and isinstance(effect, CopyBatch | FetchBatch):
            # Stop between batches: what earlier batches did is recorded, nothing is
            # half-done, and the next run picks up from there.
            raise StopRequested
        if not self._kill_at:
            return self._perform(effect)
        self._effects += 1
        self._test_kill(effect, after=False)
        try:
            return self._perform(effect)
        finally:
            self._test_kill(effect, after=True)

    def _test_kill(self, effect: Effect, *, after: bool) -> None:
        """The BTAR_TEST_KILL_AT hook (see KILL_AT_ENV): die as a crash would, no cleanup."""
        if self._kill_at == f"{self._effects}{'+' if after else ''}":
            sys.stderr.write(f"btar test hook: SIGKILL {'after' if after else 'before'} effect "
                             f"{self._effects} ({type(effect).__name__})\n")
            sys.stderr.flush()
            os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))

    def _perform(self, effect: Effect) -> Any:
        if isinstance(effect, Now):
            return self.clock.now()
        if isinstance(effect, Sleep):
            self.clock.sleep(effect.seconds)
            return None
        if isinstance(effect, ListPage):
            return self._storage_for(effect.region).list_page(
                effect.prefix, effect.start_after, effect.limit)
        if isinstance(effect, ReadObject):
            return self._storage_for(effect.region).read_bytes(effect.key)
        if isinstance(effect, CopyBatch):
            return self._copy_batch(effect)
        if isinstance(effect, FetchBatch):
            return self._fetch_batch(effect)
        if isinstance(effect, DeleteBatch):
            return self._delete_batch(effect)
        raise TypeError(f"unknown effect {effect!r}")

    def _copy_batch(self, batch: CopyBatch) -> tuple[CopyResult, ...]:
        results: list[CopyResult | None] = [None] * len(batch.tasks)
        bytes_total = sum(t.size for t in batch.tasks)
        bytes_done = done = 0
        workers = max(1, min(self._concurrency, len(batch.tasks)))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="btar-copy")
        destinations = {t.destination: self._storage_for(t.destination) for t in batch.tasks}
        try:
            with contextlib.ExitStack() as durable:
                # Each destination makes the batch's objects durable together when it ends.
                for storage in destinations.values():
                    durable.enter_context(storage.batch())
                pending: dict[Future[CopyResult], int] = {
                    pool.submit(execute_copy, self._storage_for(task.source),
                                destinations[task.destination], task): index
                    for index, task in enumerate(batch.tasks)
                }
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        index = pending.pop(future)
                        outcome = future.result()
                        results[index] = outcome
                        done += 1
                        bytes_done += outcome.task.size
                        if self.on_copy is not None:
                            self.on_copy(CopyProgress(done, len(batch.tasks), bytes_done,
                                                      bytes_total, outcome))
        except StorageError as error:
            # The end of the batch could not make the copies durable: none of them counts.
            results = [CopyResult(r.task, ok=False, error=str(error), error_kind="other",
                                  failed_side="destination") if r is not None and r.ok else r
                       for r in results]
        finally:
            # On Ctrl-C, drop queued copies; those in flight finish (writes are atomic).
            pool.shutdown(wait=True, cancel_futures=True)
        return tuple(r for r in results if r is not None)

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

    def __call__(self, region: str) -> Storage:
        if region not in self._open:
            self._open[region] = self._opener(region)
        return self._open[region]

    def close(self) -> None:
        for storage in self._open.values():
            storage.close()
        self._open.clear()

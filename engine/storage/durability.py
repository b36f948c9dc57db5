"""Group flushes: many threads that each need a flush of the same thing share one.

A copy to a local folder is durable once its bytes and then its name are flushed. Flushing
the folder once per file makes the disk's flush latency the limit on copies per second;
instead each thread that renamed a file into a folder waits for a flush of that folder which
began after its rename: while one flush runs, the threads arriving meanwhile wait together
for the next one, so the flushes per second stay near the disk's limit however many copies
are in flight, and no copy waits for more than two.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path


class GroupFlush:
    """``wait()`` returns once a call of ``flush`` that started after ``wait`` was called has
    finished (or raises what that call raised)."""

    def __init__(self, flush: Callable[[], None]) -> None:
        self._flush = flush
        self._changed = threading.Condition(threading.Lock())
        #: flushes started and finished so far; one runs when they differ
        self._started = 0
        self._finished = 0
        #: callers waiting, by the number of the flush each waits for
        self._waiters: dict[int, int] = {}
        #: the error of a failed flush, by its number, while a caller still waits for it
        self._errors: dict[int, BaseException] = {}

    def wait(self) -> None:
        with self._changed:
            # A flush running now may have begun before the caller's change: the next one
            # is the first that surely covers it. Flushes run one at a time and in order,
            # so the caller's is exactly the one numbered ``mine``.
            mine = self._started + 1
            self._waiters[mine] = self._waiters.get(mine, 0) + 1
            try:
                while self._finished < mine:
                    if self._started == self._finished:
                        self._lead()
                    else:
                        self._changed.wait()
                failed = self._errors.get(mine)
            finally:
                left = self._waiters.pop(mine) - 1
                if left:
                    self._waiters[mine] = left
                else:
                    self._errors.pop(mine, None)
        if failed is not None:
            raise failed

    def _lead(self) -> None:
        """Run the next flush (called, and returning, with the lock held; the flush itself
        runs without it, so that the callers arriving meanwhile can queue for the next)."""
        self._started += 1
        number = self._started
        error: BaseException | None = None
        self._changed.release()
        try:
            self._flush()
        except BaseException as failure:  # every caller waiting for this flush gets it
            error = failure
        finally:
            self._changed.acquire()
            self._finished = number
            if error is not None and number in self._waiters:
                self._errors[number] = error
            self._changed.notify_all()


def fsync_path(path: Path) -> None:
    """fsync a file or folder by its path."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FolderFlushes:
    """One GroupFlush per folder: ``wait(folder)`` makes the names created in ``folder``
    before the call durable."""

    def __init__(self, flush: Callable[[Path], None] = fsync_path) -> None:
        self._flush = flush
        self._lock = threading.Lock()
        self._groups: dict[Path, GroupFlush] = {}

    def wait(self, folder: Path) -> None:
        with self._lock:
            group = self._groups.get(folder)
            if group is None:
                if len(self._groups) >= 256:  # a long run touches many folders in turn
                    self._groups.clear()
                group = self._groups[folder] = GroupFlush(lambda: self._flush(folder))
        group.wait()


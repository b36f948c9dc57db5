"""Group flushes: many threads that each need a flush of the same thing share one.

A copy to a local folder is durable once its bytes and then its name are flushed. Flushing
the folder once per file makes the disk's flush latency the limit on copies per second;
instead each thread that renamed a file into a folder waits for a flush of that folder which
began after its rename: while one flush runs, the threads arriving meanwhile wait together
for the next one, so the flushes per second stay near the disk's limit however many copies
are in flight, and no copy waits for more than two.

The local copy helper (engine.storage.copy_helper) commits the copies it landed in rounds
instead (commit_together): the bytes of many files made durable by one write-back of their
file system, then renamed, then their folders flushed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast


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


# -- group commit of many landed copies (the local copy helper, engine.storage.copy_helper) -----

#: Copies in one commit from which one syncfs per file system replaces an fsync per file. A
#: lone copy is flushed by its own fsync, which writes back nothing else the file system
#: holds. From two on, the write-back of everything wins: 64 KiB files on ext4 (no journal),
#: 2.4 ms a commit round for one file either way, 6.6 ms with three fsyncs against 3.0 ms
#: with syncfs, 7.1 ms for sixteen files with syncfs.
SYNCFS_FROM = 2


def _syncfs_function() -> Callable[[int], int] | None:
    """libc's syncfs, where it reports write-back errors (Linux 5.8 on; before, it returned 0
    whatever failed, and only an fsync per file can be trusted). ctypes releases the GIL."""
    if sys.platform != "linux":
        return None
    try:
        release = tuple(int(part) for part in os.uname().release.split(".")[:2])
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (ValueError, OSError, AttributeError):
        return None
    if release < (5, 8):
        return None
    function.argtypes = (ctypes.c_int,)
    function.restype = ctypes.c_int
    return cast(Callable[[int], int], function)


_SYNCFS = _syncfs_function()


@dataclass
class Landed:
    """A checked copy in its temporary file, still open: waiting to be made durable and
    renamed into place. ``error`` is set once something stops it."""

    ident: int
    fd: int
    temp: str
    final: str
    device: int
    error: OSError | None = None


def _fsync_each(batch: list[Landed]) -> None:
    """Make the bytes and the inode of every file in ``batch`` durable, one by one."""
    for landed in batch:
        try:
            os.fsync(landed.fd)
        except OSError as error:
            landed.error = error


def _sync_file_systems(batch: list[Landed]) -> None:
    """Write back everything the file systems of ``batch`` hold (its files' bytes and inodes,
    and the names renamed there before the call) and have the disks flush it."""
    one_per_device = {landed.device: landed.fd for landed in batch}
    assert _SYNCFS is not None
    for fd in one_per_device.values():
        if _SYNCFS(fd) != 0:
            number = ctypes.get_errno()
            raise OSError(number, os.strerror(number))
    # syncfs asks the disk to flush its cache before it waits for the last metadata writes
    # (fs/sync.c): an fsync after it is a flush that surely follows them all.
    for fd in one_per_device.values():
        os.fsync(fd)


def _close(landed: Landed) -> None:
    with contextlib.suppress(OSError):
        os.close(landed.fd)


def _fail(landed: Landed, error: OSError, visible: str) -> None:
    """Nothing of a copy that failed stays visible (not even a whole copy whose name may not
    survive a crash: its caller is told it failed, and a later copy writes it again)."""
    landed.error = error
    with contextlib.suppress(OSError):
        os.unlink(visible)


def commit_together(batch: list[Landed]) -> None:
    """Make every landed copy of ``batch`` durable, rename each into place and make the
    renames durable, so that after a crash each final name is absent or whole. The bytes: a
    lone copy's by its own fsync, more by one write-back of their file system; the names: an
    fsync per folder. The temporary files are closed; a copy that fails on the way gets its
    ``error`` and leaves nothing visible, under its final name or its temporary one."""
    if _SYNCFS is None or len(batch) < SYNCFS_FROM:
        _fsync_each(batch)
    else:
        try:
            _sync_file_systems(batch)
        except OSError as error:
            for landed in batch:
                landed.error = error
    renamed: dict[str, list[Landed]] = {}
    for landed in batch:
        _close(landed)
        if landed.error is not None:
            _fail(landed, landed.error, landed.temp)
            continue
        try:
            os.replace(landed.temp, landed.final)
        except OSError as error:
            _fail(landed, error, landed.temp)
        else:
            renamed.setdefault(os.path.dirname(landed.final), []).append(landed)
    for folder, landed_there in sorted(renamed.items()):
        try:
            fsync_path(Path(folder))
        except OSError as error:
            for landed in landed_there:
                _fail(landed, error, landed.final)

"""Copying one open file into another in the kernel, then hashing what landed.

A copy between two local locations need not pass its bytes through Python: the kernel copies
them (``copy_file_range``: on one file system, a copy inside the kernel or a shared extent;
else a read and a write per piece), and each piece of the copy is then read back from the
page cache and hashed, so what is verified is the destination's own bytes. Every step
releases the GIL, so copies on several threads use several cores.

Piece by piece rather than the whole copy and then the whole read-back, for two reasons: a
piece is read back while it is still in the CPU's cache, and a large file's pieces are
handed to the disk (``sync_file_range``, which only starts the writing) as soon as they are
copied, so the disk writes while the CPU hashes, and the fsync that makes the copy durable
finds little left to wait for.

System calls are counted too, since a catch-up of small files makes thousands of copies: a
file of one piece takes one call to copy and one to read back (the size is known, so no call
is spent finding the end), into one buffer per copy.

Small copies in numbers are made by the copy helper, a process of its own
(engine.storage.copy_helper), with this same copy.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import sys
import threading
from collections.abc import Callable
from typing import cast

#: Bytes per system call: as the streamed path (engine.storage.local.WRITE_CHUNK).
PIECE = 4 * 1024 * 1024
#: From this size on, a copy's pieces are handed to the disk as they are copied. Smaller
#: files are flushed whole by their fsync, where one more system call per file would cost
#: more than the overlap it buys.
START_WRITING_FROM = 2 * PIECE
#: the cores this process may run on
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
    else os.cpu_count() or 2
#: Large copies made at once, whatever the number of copies in flight: as many as there are
#: cores (at least 2). More only take turns on the same cores, and the file system then
#: allocates and writes back many files at once, which costs it more: 16 copies of 64 MiB on
#: 2 cores took 1.4 CPU seconds and 0.70-0.85 s two at a time, 1.7-1.9 s and 0.9-1.0 s all
#: at once, and as much with a limit per piece instead of per file. Small copies never wait.
_LARGE_COPIES = threading.BoundedSemaphore(max(2, CORES))
#: errno of a copy_file_range the kernel or file system cannot do: read and write instead
_UNSUPPORTED = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP}
#: sync_file_range(2)'s flag that starts writing back the dirty pages of a range, no waiting
_SYNC_FILE_RANGE_WRITE = 2


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's sync_file_range where there is one (Linux); ctypes releases the GIL for it."""
    if sys.platform != "linux":
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return cast(Callable[[int, int, int, int], int], function)


_START_WRITING = _sync_file_range()


def copy_then_hash(source: int, destination: int, size: int | None = None
                   ) -> tuple[str, int]:
    """Copy file descriptor ``source`` from its offset to its end into ``destination`` (open
    for reading and writing, empty, at offset 0); the SHA-256 of the destination's bytes,
    read back, and how many there are. ``size`` is the source's size where the caller knows
    it: the copy then stops there (what was recorded at that size is what is verified), and
    no call is spent finding the end."""
    digest = hashlib.sha256()
    large = size is None or size >= START_WRITING_FROM
    with _LARGE_COPIES if large else contextlib.nullcontext():
        # Allocated once a copy may start: the copies waiting hold no memory.
        view = memoryview(bytearray(PIECE if size is None else max(1, min(size, PIECE))))
        copied = _copy_and_hash(source, destination, size, view, digest,
                                _START_WRITING if large else None)
    return digest.hexdigest(), copied


def _copy_and_hash(source: int, destination: int, size: int | None, view: memoryview,
                   digest: hashlib._Hash,
                   start_writing: Callable[[int, int, int, int], int] | None) -> int:
    """The loop of copy_then_hash: piece by piece, copy, hand to the disk, hash back; the
    bytes copied."""
    kernel = True
    copied = 0
    while size is None or copied < size:
        want = len(view) if size is None else min(len(view), size - copied)
        if kernel:
            try:
                count = os.copy_file_range(source, destination, want)
            except OSError as error:
                if error.errno not in _UNSUPPORTED:
                    raise
                # Unsupported: the offsets are where the kernel left them (nothing of this
                # piece was copied), so carry on from there with reads and writes.
                kernel = False
                continue
        else:
            count = _read_write(source, destination, view[:want])
        if count == 0:
            break
        if start_writing is not None:
            start_writing(destination, copied, count, _SYNC_FILE_RANGE_WRITE)  # a hint only
        _hash_back(destination, view, copied, count, digest)
        copied += count
    return copied


def _read_write(source: int, destination: int, piece: memoryview) -> int:
    """One piece by read and write; the bytes written (0 at the source's end)."""
    count = os.readv(source, [piece])
    written = 0
    while written < count:
        written += os.write(destination, piece[written:count])
    return count


def _hash_back(handle: int, view: memoryview, offset: int, length: int,
               digest: hashlib._Hash) -> None:
    """Read ``length`` bytes of ``handle`` at ``offset`` back into ``view`` and hash them
    (hashlib releases the GIL for pieces this size)."""
    done = 0
    while done < length:
        count = os.preadv(handle, [view[:length - done]], offset + done)
        if count == 0:
            raise OSError(errno.EIO, "the copy is shorter than what was written to it")
        digest.update(view[:count])
        done += count


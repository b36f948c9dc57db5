"""Copying one open file into another in the kernel, then hashing what landed.

A copy between two local locations need not pass its bytes through Python: the kernel copies
them (``copy_file_range``: on one file system, a copy inside the kernel or a shared extent;
else a read and a write per piece), and the copy is then read back from the page cache and
hashed, so what is verified is the destination's own bytes. Both steps release the GIL, so
copies on several threads use several cores.
"""

from __future__ import annotations

import errno
import hashlib
import os

#: Bytes per system call: as the streamed path (engine.storage.local.WRITE_CHUNK).
PIECE = 4 * 1024 * 1024
#: errno of a copy_file_range the kernel or file system cannot do: read and write instead
_UNSUPPORTED = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP}


def copy_then_hash(source: int, destination: int) -> str:
    """Copy file descriptor ``source`` from its offset to its end into ``destination`` (open
    for reading and writing, at offset 0), and return the SHA-256 of the destination's
    bytes, read back."""
    _copy(source, destination)
    digest = hashlib.sha256()
    offset = 0
    while piece := os.pread(destination, PIECE, offset):
        digest.update(piece)
        offset += len(piece)
    return digest.hexdigest()


def _copy(source: int, destination: int) -> None:
    try:
        while os.copy_file_range(source, destination, PIECE):
            pass
        return
    except OSError as error:
        if error.errno not in _UNSUPPORTED:
            raise
    # Unsupported: the offsets are where the kernel left them, so carry on from there.
    while piece := os.read(source, PIECE):
        view = memoryview(piece)
        while view:
            view = view[os.write(destination, view):]

"""Local filesystem backend: the embedded default, one folder per region."""

from __future__ import annotations

import bisect
import contextlib
import ctypes
import errno
import hashlib
import io
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from engine.errors import (
    AccessDenied,
    LocationMissing,
    LocationUnusable,
    ObjectNotFound,
    StorageError,
    Unreachable,
)
from engine.model import Digest, ObjectInfo, ObjectMeta
from engine.storage.base import (
    TEMP_MARKER,
    CopyReport,
    ListPage,
    Storage,
    check_sha256,
    validate_key,
    validate_prefix,
)
from engine.storage.file_copy import copy_then_hash

#: Bytes per read and write when storing a file. Measured on ext4 (16 files of 64 MiB, 8
#: threads): 1 MiB pieces took 1.3 to 3.1 s, mostly in the kernel; 4 MiB pieces 0.8 s.
WRITE_CHUNK = 4 * 1024 * 1024
#: errno of a file-system error that makes the whole location unusable, and what it means
_LOCATION_FAULTS: dict[int, tuple[type[Unreachable], str]] = {
    errno.ENOSPC: (LocationUnusable, "no space left on the device"),
    errno.EDQUOT: (LocationUnusable, "disk quota exceeded"),
    errno.EROFS: (LocationUnusable, "read-only file system"),
    errno.EACCES: (AccessDenied, "permission denied"),
    errno.EPERM: (AccessDenied, "operation not permitted"),
}
#: Deferred files committed together from which one syncfs of the filesystem replaces an
#: fsync per file. On ext4 with 2,000 files of 64 KiB, syncfs twice per 256 files took 0.25 s
#: against 0.4 s for an fsync per file; for a handful of files the fsyncs are cheaper than
#: flushing whatever else the filesystem holds.
SYNCFS_FROM = 16


class LocalStorage(Storage):
    """Objects are files under ``root``; a write lands in a temporary file that is fsynced and
    renamed into place (and the rename made durable), so a reader never sees a partial
    object and a written object survives a crash. Deferred writes (see ``deferred``) wait
    as temporary files until ``commit`` makes many of them durable at once."""

    kind = "local"

    def __init__(self, root: str | os.PathLike[str], *, create: bool = True) -> None:
        self.root = Path(root).resolve()
        self.name = f"file://{self.root}"
        if create:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                # A file where the folder should be, a read-only or unmounted volume: the
                # location is unusable until someone mends it, not a crash.
                kind, _ = _LOCATION_FAULTS.get(error.errno or 0, (LocationMissing, ""))
                raise kind(self.name, "", "cannot use the location folder: "
                           f"{error.strerror or error}") from None
        self._lock = threading.Lock()
        #: folders known to exist inside the root, without symlinks (checked once each)
        self._safe_folders: set[Path] = {self.root}
        #: recent folder scans: folder -> (mtime_ns, sorted names, which are folders)
        self._listings: dict[Path, tuple[int, list[str], list[bool]]] = {}
        #: folders this process has cleared of temporary files left by a crash
        self._swept: set[Path] = set()
        #: threads inside deferred(), and their writes waiting for commit(): key -> (temporary
        #: file, final path)
        self._deferring = threading.local()
        self._staged: dict[str, tuple[Path, Path]] = {}

    def _path(self, key: str) -> Path:
        validate_key(self.name, key)
        path = self.root.joinpath(*key.split("/"))
        # validate_key already refuses '..'; this also stops symlinks that point outside.
        # Resolving costs a system call per folder level, so a folder is checked once.
        if path.parent not in self._safe_folders or path.is_symlink():
            if not path.resolve().is_relative_to(self.root):
                raise ObjectNotFound(self.name, key, "resolves outside the location")
            if path.parent.is_dir() and path.parent.resolve() == path.parent:
                with self._lock:
                    self._safe_folders.add(path.parent)
        return path

    def _fault(self, key: str, error: OSError) -> StorageError:
        """A file-system error as a storage error: a location that cannot take any write
        (full, read-only, not ours) is unreachable until mended; anything else concerns
        this key."""
        known = _LOCATION_FAULTS.get(error.errno or 0)
        if known is not None:
            kind, reason = known
            return kind(self.name, key, reason)
        return StorageError(self.name, key, error.strerror or str(error))

    def _require_root(self) -> None:
        if not self.root.is_dir():
            raise LocationMissing(self.name, "", "a file stands where the location folder "
                                  "should be" if self.root.exists()
                                  else "the location folder does not exist (create it, or "
                                  "mount its volume)")

    def _entries(self, folder: Path) -> tuple[list[str], list[bool]]:
        """The names in ``folder`` as they sort among keys (a folder as "name/", since its
        keys all start so: 'a-b' < 'a/c' < 'a0'), and which are folders. Kept while the
        folder's mtime stands still, so paging through a large folder scans it once."""
        try:
            stamp = os.stat(folder).st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            return [], []
        with self._lock:
            cached = self._listings.get(folder)
        if cached is not None and cached[0] == stamp:
            return cached[1], cached[2]
        found: list[tuple[str, bool]] = []
        try:
            with os.scandir(folder) as scan:
                for entry in scan:
                    if entry.name.startswith(TEMP_MARKER):
                        continue
                    is_dir = entry.is_dir()
                    if is_dir and entry.is_symlink():
                        continue  # never followed, as os.walk does not follow them
                    found.append((entry.name + "/" if is_dir else entry.name, is_dir))
        except (FileNotFoundError, NotADirectoryError):
            return [], []
        found.sort()
        names, folders = [n for n, _ in found], [d for _, d in found]
        with self._lock:
            self._listings[folder] = (stamp, names, folders)
            while len(self._listings) > 16:
                del self._listings[next(iter(self._listings))]
        return names, folders

    def _walk(self, folder: Path, rel: str, prefix: str,
              start_after: str | None) -> Iterator[str]:
        """Keys under ``folder`` in key order, after ``start_after`` and under ``prefix``,
        skipping whole folders outside that range."""
        names, folders = self._entries(folder)
        begin = 0
        if start_after is not None and start_after.startswith(rel):
            tail = start_after[len(rel):]
            begin = bisect.bisect_right(names, tail)
            if begin and folders[begin - 1] and tail.startswith(names[begin - 1]):
                begin -= 1  # start_after lies inside that folder
        for index in range(begin, len(names)):
            key = rel + names[index]
            if folders[index]:
                if not (prefix.startswith(key) or key.startswith(prefix)):
                    continue
                if start_after is not None and key < start_after \
                        and not start_after.startswith(key):
                    continue  # every key in there sorts before start_after
                yield from self._walk(folder / names[index][:-1], key, prefix, start_after)
            elif key.startswith(prefix) and (start_after is None or key > start_after):
                yield key

    def list_page(self, prefix: str = "", start_after: str | None = None,
                  limit: int = 1000) -> ListPage:
        try:
            return self._list_page(prefix, start_after, limit)
        except OSError as error:
            raise self._fault(prefix, error) from None

    def _list_page(self, prefix: str, start_after: str | None, limit: int) -> ListPage:
        validate_prefix(self.name, prefix)
        self._require_root()
        # Start at the deepest folder the prefix names; walk only as far as the page needs.
        folder, _, _ = prefix.rpartition("/")
        base = self.root.joinpath(*folder.split("/")) if folder else self.root
        objects: list[ObjectInfo] = []
        more = False
        for key in self._walk(base, f"{folder}/" if folder else "", prefix, start_after):
            if len(objects) == limit:
                more = True
                break
            try:
                st = os.stat(self.root.joinpath(*key.split("/")))
            except FileNotFoundError:
                continue  # deleted between the scan and the stat
            objects.append(ObjectInfo(key, st.st_size,
                                      datetime.fromtimestamp(st.st_mtime, UTC)))
        if not more:
            with self._lock:
                self._listings.clear()  # the listing is done: its scans are not needed
        return ListPage(tuple(objects), objects[-1].key if more else None)

    @staticmethod
    def _info(key: str, path: Path) -> ObjectInfo:
        st = path.stat()
        return ObjectInfo(key=key, size=st.st_size,
                          last_modified=datetime.fromtimestamp(st.st_mtime, UTC))

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        self._require_root()
        try:
            if not path.is_file():
                raise FileNotFoundError(key)
            return self._info(key, path)
        except FileNotFoundError:
            raise ObjectNotFound(self.name, key, "no such object") from None

    @contextlib.contextmanager
    def _open(self, key: str) -> Iterator[BinaryIO]:
        path = self._path(key)
        self._require_root()
        try:
            handle = path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(self.name, key, "no such object") from None
        except OSError as error:
            raise self._fault(key, error) from None
        with handle:
            yield handle

    def open_read(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]:
        return self._open(key)

    def write(self, key: str, data: BinaryIO | bytes, *, sha256: str | None = None,
              meta: ObjectMeta | None = None) -> ObjectInfo:
        # A file keeps no metadata (keeps_metadata is False): ``meta`` has nowhere to go.
        stream: BinaryIO = io.BytesIO(data) if isinstance(data, bytes) else data

        def fill(out: BinaryIO) -> str:
            digest = hashlib.sha256()
            while chunk := stream.read(WRITE_CHUNK):
                digest.update(chunk)
                out.write(chunk)
            return digest.hexdigest()

        return self._store(key, fill, sha256)

    def copy_from(self, source: Storage, source_key: str, key: str, *,
                  sha256: str | None = None, size: int | None = None,
                  digest: Digest | None = None) -> CopyReport:
        """Between two local locations, with a recorded SHA-256: the kernel copies the file,
        and the copy is read back and hashed before it is renamed into place."""
        if sha256 is None or not isinstance(source, LocalStorage):
            return super().copy_from(source, source_key, key, sha256=sha256, size=size,
                                     digest=digest)
        with source._open(source_key) as handle:
            def fill(out: BinaryIO) -> str:
                out.flush()
                return copy_then_hash(handle.fileno(), out.fileno())

            info = self._store(key, fill, sha256)
        return CopyReport(info=info, method="kernel", sha256=info.sha256,
                          verified_by="sha256-read-back")

    def _store(self, key: str, fill: Callable[[BinaryIO], str],
               sha256: str | None) -> ObjectInfo:
        """Fill a temporary file (``fill`` returns the SHA-256 of what it wrote), check it,
        make it durable (now, or at commit when deferred) and rename it into place."""
        path = self._path(key)
        with self._lock:
            sweep = path.parent not in self._swept
            self._swept.add(path.parent)
        temp = path.parent / f"{TEMP_MARKER}{uuid.uuid4().hex}"
        try:
            if sweep:
                _remove_stale_temporaries(path.parent)
            with self._create(temp, key) as out:
                actual = fill(out)
                out.flush()
                deferred = getattr(self._deferring, "on", False)
                if not deferred:
                    os.fsync(out.fileno())
                st = os.fstat(out.fileno())
            check_sha256(self.name, key, sha256, actual)
            if deferred:
                with self._lock:
                    replaced = self._staged.pop(key, None)
                    self._staged[key] = (temp, path)
                if replaced is not None:
                    replaced[0].unlink(missing_ok=True)
            else:
                os.replace(temp, path)
                _fsync_dir(path.parent)
        except OSError as error:
            _discard(temp)  # the write's own error is the one to report
            raise self._fault(key, error) from None
        except BaseException:
            _discard(temp)
            raise
        return ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC), actual)

    def _create(self, temp: Path, key: str) -> BinaryIO:
        """Open a new temporary file; its folders are made only when missing, so that the
        common case costs no extra system call."""
        try:
            return temp.open("w+b")  # read too: a kernel copy is read back to be hashed
        except (FileNotFoundError, NotADirectoryError):
            self._require_root()  # a vanished location is unreachable, not to be recreated
        try:
            temp.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise StorageError(self.name, key, "a parent of this key is an object") from None
        return temp.open("w+b")

    @contextlib.contextmanager
    def _deferred(self) -> Iterator[None]:
        self._deferring.on = True
        try:
            yield
        finally:
            self._deferring.on = False

    def deferred(self) -> contextlib.AbstractContextManager[None]:
        return self._deferred()

    def commit(self, keys: Sequence[str]) -> None:
        """Make deferred writes durable, then visible, then their names durable: a crash at
        any point leaves each key absent or whole, never partial."""
        with self._lock:
            staged = [self._staged.pop(key) for key in keys if key in self._staged]
        if not staged:
            return
        try:
            bulk = len(staged) >= SYNCFS_FROM and _syncfs(self.root)
            if not bulk:
                for temp, _ in staged:
                    _fsync_file(temp)
            for temp, path in staged:
                os.replace(temp, path)
            if not (bulk and _syncfs(self.root)):
                for folder in sorted({path.parent for _, path in staged}):
                    _fsync_dir(folder)
        except OSError as error:
            for temp, _ in staged:
                _discard(temp)
            raise StorageError(self.name, "", f"cannot make new objects durable: "
                                              f"{error.strerror}") from None

    def sha256_of(self, key: str) -> str:
        """The hash of an object's bytes, a deferred write's included (its verification
        comes before its commit)."""
        with self._lock:
            staged = self._staged.get(key)
        if staged is None:
            return super().sha256_of(key)
        digest = hashlib.sha256()
        with staged[0].open("rb") as stream:
            while chunk := stream.read(WRITE_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def close(self) -> None:
        """Deferred writes nobody committed are dropped."""
        with self._lock:
            staged, self._staged = list(self._staged.values()), {}
        for temp, _ in staged:
            _discard(temp)

    def delete(self, key: str) -> None:
        path = self._path(key)
        self._require_root()
        try:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        except OSError as error:
            raise self._fault(key, error) from None
        # Leave no empty folders behind, but never remove the root itself.
        parent = path.parent
        while parent != self.root:
            try:
                parent.rmdir()
            except OSError:
                break
            with self._lock:
                self._safe_folders.discard(parent)
            parent = parent.parent


#: A temporary file this old is a crashed writer's leftover (a live write renames or removes
#: its own long before).
STALE_TEMPORARY = 24 * 3600.0


def _remove_stale_temporaries(folder: Path) -> None:
    """Remove what crashed writers left in ``folder``; done once per folder and process."""
    horizon = time.time() - STALE_TEMPORARY
    with contextlib.suppress(FileNotFoundError, NotADirectoryError), os.scandir(folder) as scan:
        for entry in scan:
            if entry.name.startswith(TEMP_MARKER) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat(follow_symlinks=False).st_mtime < horizon:
                        os.unlink(entry.path)


def _discard(temp: Path) -> None:
    """Remove a temporary file if it can be (its folder may be gone or replaced)."""
    with contextlib.suppress(OSError):
        temp.unlink()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _syncfs(folder: Path) -> bool:
    """Flush the whole filesystem that holds ``folder`` (Linux syncfs); False where there is
    no syncfs, or it failed, so the caller fsyncs file by file instead."""
    if _LIBC is None or not hasattr(_LIBC, "syncfs"):
        return False
    fd = os.open(folder, os.O_RDONLY)
    try:
        return int(_LIBC.syncfs(fd)) == 0
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable: fsync the folder that holds the new name."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

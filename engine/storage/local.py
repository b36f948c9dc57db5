"""Local filesystem backend: the embedded default, one folder per region."""

from __future__ import annotations

import bisect
import contextlib
import errno
import hashlib
import io
import itertools
import logging
import os
import stat
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from engine.errors import (
    AccessDenied,
    ChecksumMismatch,
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
from engine.storage.copy_helper import HELPER_FROM, CopyHelper
from engine.storage.durability import FolderFlushes
from engine.storage.file_copy import START_WRITING_FROM, copy_then_hash

_log = logging.getLogger("btar.storage.local")
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
#: how a temporary file is created: new (never someone else's), read back after a kernel copy
_CREATE = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_CLOEXEC


class LocalStorage(Storage):
    """Objects are files under ``root``; a write lands in a temporary file that is checked,
    fsynced and renamed into place, and the rename made durable before the write returns, so
    a reader never sees a partial object, a write that failed its check is never seen under
    its name, and a written object survives a crash.

    Writes on many threads at once are made durable together rather than one by one: each
    thread fsyncs its own file (the file system commits the fsyncs in flight together), and
    the threads that renamed files into one folder share one fsync of that folder
    (engine.storage.durability). So a write is durable when it returns, as on every cloud,
    and the driver's own thread never waits for a disk.

    Small copies from another local location, once they come in numbers (a catch-up), are
    made by a helper process (CopyHelper), which commits many at once in the same order:
    checked, bytes durable, renamed, name durable, and only then the copy returns."""

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
        #: the same folders as keys' folder parts ("" for the root), and the root as text:
        #: a copy thread names a file by joining text, without pathlib's cost per call
        self._safe_keys: set[str] = {""}
        self._root_text = str(self.root).rstrip("/")  # "" for the file system's root
        #: recent folder scans: folder -> (mtime_ns, sorted names, which are folders)
        self._listings: dict[Path, tuple[int, list[str], list[bool]]] = {}
        #: folders this process has cleared of temporary files left by a crash
        self._swept: set[str] = set()
        #: names of this instance's temporary files: a token and a serial number
        self._token = f"{uuid.uuid4().hex[:16]}-"
        self._serial = itertools.count()
        #: one fsync of a folder for the renames into it that wait at once
        self._folder_flushes = FolderFlushes()
        #: the process that makes small copies from other local locations, once one is made
        self._helper: CopyHelper | None = None
        self._helper_lock = threading.Lock()
        #: small copies asked of this location while it had no helper ready
        self._small_copies = 0
        #: why this location makes every copy on the callers' threads (no helper can run
        #: here), if so
        self._no_helper = "" if sys.platform == "linux" and sys.executable \
            else "the copy helper runs on Linux only, from a Python interpreter"

    def _path(self, key: str, *, final: bool = True) -> Path:
        """The file of ``key``. With ``final``, a symlink as its last part is followed only
        inside the root; without, the caller never follows one there (O_NOFOLLOW, or a
        rename over it)."""
        validate_key(self.name, key)
        path = self.root.joinpath(*key.split("/"))
        # validate_key already refuses '..'; this also stops symlinks that point outside.
        # Resolving costs a system call per folder level, so a folder is checked once.
        if path.parent not in self._safe_folders or (final and path.is_symlink()):
            if not path.resolve().is_relative_to(self.root):
                raise ObjectNotFound(self.name, key, "resolves outside the location")
            if path.parent.is_dir() and path.parent.resolve() == path.parent:
                with self._lock:
                    self._safe_folders.add(path.parent)
                    self._safe_keys.add(key.rpartition("/")[0])
        return path

    def _file(self, key: str) -> str:
        """``_path(key, final=False)`` as text, for the copy helper: once the key's folder
        is known to be safe, a check of the key and a join."""
        if key.rpartition("/")[0] in self._safe_keys:
            validate_key(self.name, key)
            return f"{self._root_text}/{key}"
        return str(self._path(key, final=False))

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

        def fill(out: int) -> tuple[str, int]:
            digest, length = hashlib.sha256(), 0
            while chunk := stream.read(WRITE_CHUNK):
                digest.update(chunk)
                length += len(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view):]
            return digest.hexdigest(), length

        return self._store(key, fill, sha256)

    def copy_from(self, source: Storage, source_key: str, key: str, *,
                  sha256: str | None = None, size: int | None = None,
                  digest: Digest | None = None) -> CopyReport:
        """Between two local locations, with a recorded SHA-256: the kernel copies the file,
        and the copy is read back and hashed before it is renamed into place."""
        if sha256 is None or not isinstance(source, LocalStorage):
            return super().copy_from(source, source_key, key, sha256=sha256, size=size,
                                     digest=digest)
        if size is not None and size < START_WRITING_FROM:
            report = self._copy_in_helper(source, source_key, key, sha256)
            if report is not None:
                return report
        handle, length = source._open_fd(source_key)
        try:
            info = self._store(key, lambda out: copy_then_hash(handle, out, length), sha256)
        finally:
            os.close(handle)
        return CopyReport(info=info, method="kernel", sha256=info.sha256,
                          verified_by="sha256-read-back")

    def _copy_in_helper(self, source: LocalStorage, source_key: str, key: str,
                        sha256: str) -> CopyReport | None:
        """A small copy made by the copy helper; None when this thread is to make it (the
        helper declined it, or there is none)."""
        helper = self._copy_helper()
        if helper is None:
            return None
        final = self._file(key)
        folder = final.rpartition("/")[0] or "/"
        answer = helper.copy(source._file(source_key), self._temporary(folder), final, sha256)
        if answer[0] == -1:
            return None  # it ended before it was asked: nothing was tried
        match answer[1]:
            case "ok":
                _, _, actual, length, mtime = answer
                info = ObjectInfo(key, length, datetime.fromtimestamp(mtime, UTC), actual)
                return CopyReport(info=info, method="kernel", sha256=actual,
                                  verified_by="sha256-read-back")
            case "declined":
                return None
            case "mismatch":
                raise ChecksumMismatch(self.name, key, sha256, answer[2])
            case "short":
                raise StorageError(self.name, key, f"the copy holds {answer[2]} bytes, "
                                   f"{answer[3]} were written and hashed")
            case "error":
                raise self._fault(key, OSError(answer[2], answer[3])) from None
            case _:
                raise StorageError(self.name, key, f"the copy helper process: {answer[2]}")

    def _copy_helper(self) -> CopyHelper | None:
        """This location's copy helper when it is ready for requests (None: make the copy on
        this thread). It is started once small copies come in numbers, and again if it
        ended; starting it costs tens of milliseconds, which a few copies do not repay."""
        helper = self._helper
        if self._no_helper:
            return None
        if helper is not None and helper.ready and helper.ended is None:
            return helper
        with self._helper_lock:
            self._small_copies += 1
            if self._small_copies < HELPER_FROM:
                return None
            helper = self._helper
            if helper is not None and helper.ended is not None:
                helper.close()
                if not helper.ready:  # it never started: this installation cannot run one
                    self._no_helper = f"the copy helper {helper.ended}"
                    _log.warning("%s: %s; small copies are made on btar's own threads",
                                 self.name, self._no_helper)
                    return None
                helper = None
            if helper is None:
                self._helper = CopyHelper()
                weakref.finalize(self, self._helper.close)
        return None

    def close(self) -> None:
        """End the copy helper, once it has committed what it holds."""
        with self._helper_lock:
            helper, self._helper = self._helper, None
        if helper is not None:
            helper.close()

    def _temporary(self, folder: str) -> str:
        """A new temporary file's name in ``folder``; the first time this process writes
        there, what crashed writers left is removed."""
        with self._lock:
            sweep = folder not in self._swept
            self._swept.add(folder)
        if sweep:
            with contextlib.suppress(OSError):  # best effort: a folder we cannot read
                _remove_stale_temporaries(Path(folder))  # fails the write that follows
        # Unique across processes (the token) and threads (the counter), without the system
        # call per name that uuid4 makes.
        return f"{folder}/{TEMP_MARKER}{self._token}{next(self._serial)}"

    def _open_fd(self, key: str) -> tuple[int, int]:
        """A file descriptor open for reading an object (a copy's source), and its size."""
        path = self._path(key, final=False)
        try:
            try:
                # A symlink as the last part is looked at only when there is one (ELOOP):
                # the common case costs no lstat.
                handle = os.open(path, _READ | os.O_NOFOLLOW)
            except OSError as error:
                if error.errno != errno.ELOOP:
                    raise
                handle = os.open(self._path(key), _READ)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            self._require_root()
            raise ObjectNotFound(self.name, key, "no such object") from None
        except OSError as error:
            raise self._fault(key, error) from None
        st = os.fstat(handle)
        if not stat.S_ISREG(st.st_mode):
            os.close(handle)
            raise ObjectNotFound(self.name, key, "no such object")
        return handle, st.st_size

    def _store(self, key: str, fill: Callable[[int], tuple[str, int]],
               sha256: str | None) -> ObjectInfo:
        """Fill a temporary file (``fill`` returns the SHA-256 of what it wrote and its
        length), check it, make its bytes durable, rename it into place and make the rename
        durable."""
        # The rename replaces whatever is at the final name, a symlink included, never
        # following it: no lstat of that name is needed.
        path = self._path(key, final=False)
        folder = path.parent
        renamed = False
        temp = Path(self._temporary(str(folder)))
        try:
            out = self._create(temp, key)
            try:
                actual, length = fill(out)
                # A mismatch never costs a flush, and is never renamed into place.
                check_sha256(self.name, key, sha256, actual)
                # On this thread, while the other copies in flight do the same: the file
                # system commits the fsyncs that wait at once together. The descriptor was
                # open since the file was made, so any error writing it back is reported.
                os.fsync(out)
                st = os.fstat(out)
                if st.st_size != length:  # what was hashed must be all the file holds
                    raise StorageError(self.name, key, f"the copy holds {st.st_size} bytes, "
                                       f"{length} were written and hashed")
            finally:
                os.close(out)
            os.replace(temp, path)
            renamed = True
            self._folder_flushes.wait(folder)
        except OSError as error:
            # Nothing of a failed write stays visible: not even a whole copy whose name
            # could not be made durable (its caller is told it failed).
            _discard(path if renamed else temp)
            raise self._fault(key, error) from None  # the write's own error is reported
        except BaseException:
            _discard(path if renamed else temp)
            raise
        return ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC), actual)

    def _create(self, temp: Path, key: str) -> int:
        """Open a new temporary file (for reading too: a kernel copy is read back to be
        hashed); its folders are made only when missing, so that the common case costs no
        extra system call."""
        try:
            return os.open(temp, _CREATE, 0o666)
        except (FileNotFoundError, NotADirectoryError):
            self._require_root()  # a vanished location is unreachable, not to be recreated
        try:
            _make_folders(temp.parent)
        except (FileExistsError, NotADirectoryError):
            raise StorageError(self.name, key, "a parent of this key is an object") from None
        return os.open(temp, _CREATE, 0o666)

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
                self._safe_keys.discard(parent.relative_to(self.root).as_posix())
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


def _make_folders(folder: Path) -> None:
    """Make ``folder`` and its missing parents, each one's name made durable in its parent
    (an object written into a folder that a crash then loses would be lost with it)."""
    missing: list[Path] = []
    while not folder.is_dir() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    for made in reversed(missing):
        try:
            made.mkdir()
        except FileExistsError:
            if not made.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(made)) from None
            # made meanwhile by another write, whose flush of it may not have happened yet
        _fsync_dir(made.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable: fsync the folder that holds the new name."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

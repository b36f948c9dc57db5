"""Local filesystem backend: the embedded default, one folder per region."""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import io
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from engine.errors import ObjectNotFound, StorageError, Unreachable
from engine.model import ObjectInfo
from engine.storage.base import (
    CHUNK_SIZE,
    TEMP_MARKER,
    ListPage,
    Storage,
    check_sha256,
    validate_key,
    validate_prefix,
)


class LocalStorage(Storage):
    """Objects are files under ``root``; a write lands in a temporary file that is fsynced and
    renamed into place, so a reader never sees a partial object."""

    kind = "local"

    def __init__(self, root: str | os.PathLike[str], *, create: bool = True) -> None:
        self.root = Path(root).resolve()
        self.name = f"file://{self.root}"
        if create:
            self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        validate_key(self.name, key)
        path = self.root.joinpath(*key.split("/"))
        # validate_key already refuses '..'; this also stops symlinks that point outside.
        if not path.resolve().is_relative_to(self.root):
            raise ObjectNotFound(self.name, key, "resolves outside the location")
        return path

    def _require_root(self) -> None:
        if not self.root.is_dir():
            raise Unreachable(self.name, "", "the location folder does not exist")

    def _all_keys(self, prefix: str) -> list[str]:
        # Directory order is not key order ('a-b' < 'a/c' but the folder 'a' sorts first),
        # so collect and sort; start the walk at the deepest folder the prefix names.
        folder, _, _ = prefix.rpartition("/")
        base = self.root.joinpath(*folder.split("/")) if folder else self.root
        keys: list[str] = []
        if not base.is_dir():
            return keys
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(TEMP_MARKER)]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for filename in filenames:
                if filename.startswith(TEMP_MARKER):
                    continue
                key = filename if rel == "." else f"{rel}/{filename}"
                if key.startswith(prefix):
                    keys.append(key)
        keys.sort()
        return keys

    def list_page(self, prefix: str = "", start_after: str | None = None,
                  limit: int = 1000) -> ListPage:
        validate_prefix(self.name, prefix)
        self._require_root()
        keys = self._all_keys(prefix)
        begin = bisect.bisect_right(keys, start_after) if start_after is not None else 0
        chosen = keys[begin:begin + limit]
        objects = []
        for key in chosen:
            try:
                objects.append(self._info(key, self.root.joinpath(*key.split("/"))))
            except FileNotFoundError:
                continue  # deleted between the walk and the stat
        more = begin + limit < len(keys)
        return ListPage(tuple(objects), chosen[-1] if more and chosen else None)

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
        with handle:
            yield handle

    def open_read(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]:
        return self._open(key)

    def write(self, key: str, data: BinaryIO | bytes, *, sha256: str | None = None) -> ObjectInfo:
        path = self._path(key)
        self._require_root()
        stream: BinaryIO = io.BytesIO(data) if isinstance(data, bytes) else data
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise StorageError(self.name, key, "a parent of this key is an object") from None
        temp = path.parent / f"{TEMP_MARKER}{uuid.uuid4().hex}"
        digest = hashlib.sha256()
        try:
            with temp.open("wb") as out:
                while chunk := stream.read(CHUNK_SIZE):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            check_sha256(self.name, key, sha256, digest.hexdigest())
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
        info = self._info(key, path)
        return ObjectInfo(info.key, info.size, info.last_modified, digest.hexdigest())

    def delete(self, key: str) -> None:
        path = self._path(key)
        self._require_root()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        # Leave no empty folders behind, but never remove the root itself.
        parent = path.parent
        while parent != self.root:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable: fsync the folder that holds the new name."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

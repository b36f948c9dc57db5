"""In-memory backend: for tests and for the simulator (its clock is injected)."""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import io
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from engine.errors import ObjectNotFound
from engine.model import ObjectInfo, ObjectMeta
from engine.storage.base import ListPage, Storage, check_sha256, validate_key, validate_prefix


def _wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Blob:
    data: bytes
    modified: datetime
    sha256: str
    meta: ObjectMeta | None = None


class MemoryStorage(Storage):
    """A sorted dict of objects guarded by a lock."""

    kind = "memory"
    keeps_metadata = True

    def __init__(self, name: str = "memory", clock: Callable[[], datetime] = _wall_clock) -> None:
        self.name = f"memory://{name}"
        self._clock = clock
        self._blobs: dict[str, _Blob] = {}
        self._keys: list[str] = []
        self._lock = threading.Lock()

    def list_page(self, prefix: str = "", start_after: str | None = None,
                  limit: int = 1000) -> ListPage:
        validate_prefix(self.name, prefix)
        with self._lock:
            lower = prefix if start_after is None or start_after < prefix else start_after
            begin = bisect.bisect_left(self._keys, lower)
            if start_after is not None and begin < len(self._keys) \
                    and self._keys[begin] == start_after:
                begin += 1
            chosen: list[ObjectInfo] = []
            index = begin
            while index < len(self._keys) and len(chosen) < limit:
                key = self._keys[index]
                if not key.startswith(prefix):
                    break
                blob = self._blobs[key]
                chosen.append(ObjectInfo(key, len(blob.data), blob.modified))
                index += 1
            more = index < len(self._keys) and self._keys[index].startswith(prefix)
        return ListPage(tuple(chosen), chosen[-1].key if more and chosen else None)

    def stat(self, key: str) -> ObjectInfo:
        validate_key(self.name, key)
        with self._lock:
            blob = self._blobs.get(key)
        if blob is None:
            raise ObjectNotFound(self.name, key, "no such object")
        return ObjectInfo(key, len(blob.data), blob.modified, meta=blob.meta or ObjectMeta())

    @contextlib.contextmanager
    def _open(self, key: str) -> Iterator[BinaryIO]:
        validate_key(self.name, key)
        with self._lock:
            blob = self._blobs.get(key)
        if blob is None:
            raise ObjectNotFound(self.name, key, "no such object")
        yield io.BytesIO(blob.data)

    def open_read(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]:
        return self._open(key)

    @contextlib.contextmanager
    def _open_described(self, key: str) -> Iterator[tuple[BinaryIO, ObjectInfo]]:
        validate_key(self.name, key)
        with self._lock:
            blob = self._blobs.get(key)
        if blob is None:
            raise ObjectNotFound(self.name, key, "no such object")
        yield io.BytesIO(blob.data), ObjectInfo(key, len(blob.data), blob.modified,
                                                meta=blob.meta or ObjectMeta())

    def open_described(self, key: str) -> contextlib.AbstractContextManager[
            tuple[BinaryIO, ObjectInfo]]:
        # one lookup gives the bytes and their description together
        return self._open_described(key)

    def write(self, key: str, data: BinaryIO | bytes, *, sha256: str | None = None,
              meta: ObjectMeta | None = None) -> ObjectInfo:
        validate_key(self.name, key)
        payload = data if isinstance(data, bytes) else data.read()
        actual = hashlib.sha256(payload).hexdigest()
        check_sha256(self.name, key, sha256, actual)
        blob = _Blob(payload, self._clock(), actual, meta)
        with self._lock:
            if key not in self._blobs:
                bisect.insort(self._keys, key)
            self._blobs[key] = blob
        return ObjectInfo(key, len(payload), blob.modified, actual)

    def delete(self, key: str) -> None:
        validate_key(self.name, key)
        with self._lock:
            if self._blobs.pop(key, None) is not None:
                self._keys.pop(bisect.bisect_left(self._keys, key))

    def corrupt(self, key: str) -> None:
        """Flip the first byte of an object in place (fault injection for tests)."""
        with self._lock:
            blob = self._blobs[key]
            data = bytes([blob.data[0] ^ 0xFF]) + blob.data[1:] if blob.data else b"\x00"
            self._blobs[key] = _Blob(data, blob.modified, hashlib.sha256(data).hexdigest(),
                                     blob.meta)

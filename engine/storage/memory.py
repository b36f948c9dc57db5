"""In-memory backend: for tests and for the simulator (its clock is injected).

Keys are kept sorted beside the description a listing gives of each (same index), so a page is
two bisections and a slice: its cost depends on the page, never on the keys before the cursor
or after the prefix. The simulator lists every service's whole history on each full listing.
"""

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
from engine.model import Digest, ObjectInfo, ObjectMeta
from engine.storage.base import (
    CopyReport,
    ListPage,
    Storage,
    check_sha256,
    validate_key,
    validate_prefix,
)

#: Listing prefixes remembered as valid (a location is listed under a few prefixes, often).
_PREFIXES_KEPT = 4096


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def _after_prefix(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix`` (None: no bound)."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            return prefix[:-1] + chr(last + 1)
        prefix = prefix[:-1]
    return None


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
        #: every key, sorted, and what a listing says of each, at the same index
        self._keys: list[str] = []
        self._listed: list[ObjectInfo] = []
        self._prefixes: set[str] = set()
        self._lock = threading.Lock()

    def list_page(self, prefix: str = "", start_after: str | None = None,
                  limit: int = 1000) -> ListPage:
        if prefix not in self._prefixes:
            validate_prefix(self.name, prefix)
            if len(self._prefixes) >= _PREFIXES_KEPT:
                self._prefixes.clear()
            self._prefixes.add(prefix)
        with self._lock:
            keys = self._keys
            lower = prefix if start_after is None or start_after < prefix else start_after
            begin = bisect.bisect_left(keys, lower)
            if start_after is not None and begin < len(keys) and keys[begin] == start_after:
                begin += 1
            upper = _after_prefix(prefix)
            end = len(keys) if upper is None else bisect.bisect_left(keys, upper, begin)
            stop = min(end, begin + limit) if limit > 0 else begin
            chosen = tuple(self._listed[begin:stop])
            more = stop < end
        return ListPage(chosen, chosen[-1].key if more and chosen else None)

    def stat(self, key: str) -> ObjectInfo:
        validate_key(self.name, key)
        with self._lock:
            blob = self._blobs.get(key)
        if blob is None:
            raise ObjectNotFound(self.name, key, "no such object")
        return ObjectInfo(key, len(blob.data), blob.modified, meta=blob.meta or ObjectMeta())

    def _blob(self, key: str) -> _Blob:
        validate_key(self.name, key)
        with self._lock:
            blob = self._blobs.get(key)
        if blob is None:
            raise ObjectNotFound(self.name, key, "no such object")
        return blob

    @contextlib.contextmanager
    def _open(self, key: str) -> Iterator[BinaryIO]:
        yield io.BytesIO(self._blob(key).data)

    def open_read(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]:
        return self._open(key)

    def read_bytes(self, key: str) -> bytes:
        return self._blob(key).data

    def sha256_of(self, key: str) -> str:
        # the stored bytes' hash, kept since they were written (or corrupted)
        return self._blob(key).sha256

    def stored_sha256(self, key: str) -> str | None:
        """What an object's bytes hash to, None when there is none (a checker's ground
        truth: nothing is validated, no fault applies)."""
        with self._lock:
            blob = self._blobs.get(key)
        return None if blob is None else blob.sha256

    @contextlib.contextmanager
    def _open_described(self, key: str) -> Iterator[tuple[BinaryIO, ObjectInfo]]:
        blob = self._blob(key)
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
        return self._store(key, payload, hashlib.sha256(payload).hexdigest(), sha256, meta)

    def copy_from(self, source: Storage, source_key: str, key: str, *,
                  sha256: str | None = None, size: int | None = None,
                  digest: Digest | None = None) -> CopyReport:
        if not (isinstance(source, MemoryStorage) and sha256 is not None):
            return super().copy_from(source, source_key, key, sha256=sha256, size=size,
                                     digest=digest)
        # What the default does for an expected SHA-256 between stores that keep metadata
        # (one read of the source, the write checks the hash; nothing else is hashed), with
        # neither streams nor a second hash of bytes whose hash is known.
        blob = source._blob(source_key)
        validate_key(self.name, key)
        info = self._store(key, blob.data, blob.sha256, sha256, blob.meta or ObjectMeta())
        return CopyReport(info=info, method="stream", sha256=info.sha256,
                          verified_by="sha256-streamed")

    def _store(self, key: str, payload: bytes, actual: str, sha256: str | None,
               meta: ObjectMeta | None) -> ObjectInfo:
        """Make ``payload`` (which hashes to ``actual``) visible under a valid ``key``."""
        check_sha256(self.name, key, sha256, actual)
        blob = _Blob(payload, self._clock(), actual, meta)
        listed = ObjectInfo(key, len(payload), blob.modified)
        with self._lock:
            index = bisect.bisect_left(self._keys, key)
            if key in self._blobs:
                self._listed[index] = listed
            else:
                self._keys.insert(index, key)
                self._listed.insert(index, listed)
            self._blobs[key] = blob
        return ObjectInfo(key, len(payload), blob.modified, actual)

    def delete(self, key: str) -> None:
        validate_key(self.name, key)
        with self._lock:
            if self._blobs.pop(key, None) is not None:
                index = bisect.bisect_left(self._keys, key)
                del self._keys[index]
                del self._listed[index]

    def corrupt(self, key: str) -> None:
        """Flip the first byte of an object in place (fault injection for tests)."""
        with self._lock:
            blob = self._blobs[key]
            data = bytes([blob.data[0] ^ 0xFF]) + blob.data[1:] if blob.data else b"\x00"
            self._blobs[key] = _Blob(data, blob.modified, hashlib.sha256(data).hexdigest(),
                                     blob.meta)
            self._listed[bisect.bisect_left(self._keys, key)] = ObjectInfo(key, len(data),
                                                                           blob.modified)

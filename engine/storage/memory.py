"""In-memory backend: for tests and for the simulator (its clock is injected).

Keys are kept sorted beside the description a listing gives of each, in blocks (``_Index``), so
a page is a few bisections and slices: its cost depends on the page, never on the keys before
the cursor or after the prefix, and a write moves at most one block's keys. The simulator lists
every service's whole history on each full listing.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import io
import threading
from collections.abc import Callable, Iterator
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

#: Listing prefixes remembered as valid with their bounds (a location is listed under a few
#: prefixes, often).
_PREFIXES_KEPT = 4096
#: Keys per block of the index: a block that grows past twice this is split in two.
_BLOCK = 512


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


#: An object: its bytes, when it was written, their SHA-256 and its metadata (None when empty).
#: A plain tuple, not a class: the cycle collector stops tracking a tuple of such values, and a
#: simulated day keeps millions of objects alive that it would otherwise walk again and again.
_Blob = tuple[bytes, datetime, str, ObjectMeta | None]


class _Index:
    """Every key in order, each with what a listing says of it, in blocks of at most
    ``2 * _BLOCK``. A key is found by two bisections (the blocks' last keys, then one block)
    and inserted into one block: in a single sorted list, every insertion between other keys
    moves all the keys after it, and a simulated day writes a hundred services' keys
    interleaved, some 150,000 of them into one region."""

    def __init__(self) -> None:
        self._keys: list[list[str]] = []
        self._infos: list[list[ObjectInfo]] = []
        #: each block's last key
        self._lasts: list[str] = []

    def _at(self, key: str) -> tuple[int, int]:
        """Where ``key`` is or would go, as bisect_left would say: (block, position in it);
        past every key, (number of blocks, 0)."""
        block = bisect.bisect_left(self._lasts, key)
        if block == len(self._lasts):
            return block, 0
        return block, bisect.bisect_left(self._keys[block], key)

    def put(self, key: str, info: ObjectInfo) -> None:
        """Add ``key``, or replace what a listing says of it."""
        block, at = self._at(key)
        if block == len(self._lasts):
            if not self._lasts:
                self._keys.append([])
                self._infos.append([])
                self._lasts.append(key)
            block = len(self._lasts) - 1
            at = len(self._keys[block])
            self._lasts[block] = key
        keys, infos = self._keys[block], self._infos[block]
        if at < len(keys) and keys[at] == key:
            infos[at] = info
            return
        keys.insert(at, key)
        infos.insert(at, info)
        if len(keys) > 2 * _BLOCK:
            self._keys[block:block + 1] = [keys[:_BLOCK], keys[_BLOCK:]]
            self._infos[block:block + 1] = [infos[:_BLOCK], infos[_BLOCK:]]
            self._lasts[block:block + 1] = [keys[_BLOCK - 1], keys[-1]]

    def remove(self, key: str) -> None:
        block, at = self._at(key)
        if block == len(self._lasts) or self._keys[block][at] != key:
            return
        keys = self._keys[block]
        del keys[at]
        del self._infos[block][at]
        if not keys:
            del self._keys[block], self._infos[block], self._lasts[block]
        elif at == len(keys):
            self._lasts[block] = keys[-1]

    def page(self, lower: str, after: str | None, upper: str | None,
             limit: int) -> tuple[list[ObjectInfo], bool]:
        """At most ``limit`` entries from ``lower`` (``after`` itself left out when it is
        there) up to ``upper`` (excluded; None: to the end), and whether more follow."""
        block, at = self._at(lower)
        if after is not None and block < len(self._lasts) and self._keys[block][at] == after:
            at += 1
            if at == len(self._keys[block]):
                block, at = block + 1, 0
        end = (len(self._lasts), 0) if upper is None else self._at(upper)
        chosen: list[ObjectInfo] = []
        while len(chosen) < limit and (block, at) < end:
            size = len(self._keys[block])
            stop = min(end[1] if block == end[0] else size, at + limit - len(chosen))
            chosen += self._infos[block][at:stop]
            block, at = (block + 1, 0) if stop == size else (block, stop)
        return chosen, (block, at) < end


class MemoryStorage(Storage):
    """A sorted dict of objects guarded by a lock."""

    kind = "memory"
    keeps_metadata = True

    def __init__(self, name: str = "memory", clock: Callable[[], datetime] = _wall_clock) -> None:
        self.name = f"memory://{name}"
        self._clock = clock
        self._blobs: dict[str, _Blob] = {}
        #: every key, sorted, and what a listing says of each
        self._index = _Index()
        #: prefixes listed lately (valid), each with its upper bound
        self._prefixes: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def list_page(self, prefix: str = "", start_after: str | None = None,
                  limit: int = 1000) -> ListPage:
        upper = self._prefixes.get(prefix, prefix)
        if upper == prefix:  # never a prefix's own bound: not listed lately
            validate_prefix(self.name, prefix)
            if len(self._prefixes) >= _PREFIXES_KEPT:
                self._prefixes.clear()
            upper = self._prefixes[prefix] = _after_prefix(prefix)
        lower = prefix if start_after is None or start_after < prefix else start_after
        with self._lock:
            listed, more = self._index.page(lower, start_after, upper, limit)
        chosen = tuple(listed)
        # the index keeps one ObjectInfo per key until the key is written again
        return ListPage(chosen, chosen[-1].key if more and chosen else None, stable_infos=True)

    def stat(self, key: str) -> ObjectInfo:
        data, modified, _, meta = self._blob(key)
        return ObjectInfo(key, len(data), modified, meta=meta or ObjectMeta())

    def _blob(self, key: str) -> _Blob:
        with self._lock:
            blob = self._blobs.get(key)
        if blob is None:
            # only a key that was stored is found, and it was valid: validate on a miss
            validate_key(self.name, key)
            raise ObjectNotFound(self.name, key, "no such object")
        return blob

    @contextlib.contextmanager
    def _open(self, key: str) -> Iterator[BinaryIO]:
        yield io.BytesIO(self._blob(key)[0])

    def open_read(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]:
        return self._open(key)

    def read_bytes(self, key: str) -> bytes:
        return self._blob(key)[0]

    def sha256_of(self, key: str) -> str:
        # the stored bytes' hash, kept since they were written (or corrupted)
        return self._blob(key)[2]

    def stored_sha256(self, key: str) -> str | None:
        """What an object's bytes hash to, None when there is none (a checker's ground
        truth: nothing is validated, no fault applies)."""
        with self._lock:
            blob = self._blobs.get(key)
        return None if blob is None else blob[2]

    @contextlib.contextmanager
    def _open_described(self, key: str) -> Iterator[tuple[BinaryIO, ObjectInfo]]:
        data, modified, _, meta = self._blob(key)
        yield io.BytesIO(data), ObjectInfo(key, len(data), modified, meta=meta or ObjectMeta())

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
        data, _, actual, meta = source._blob(source_key)
        if key != source_key:  # a key found in a memory storage is a valid key
            validate_key(self.name, key)
        info = self._store(key, data, actual, sha256, meta)
        return CopyReport(info=info, method="stream", sha256=info.sha256,
                          verified_by="sha256-streamed")

    def _store(self, key: str, payload: bytes, actual: str, sha256: str | None,
               meta: ObjectMeta | None) -> ObjectInfo:
        """Make ``payload`` (which hashes to ``actual``) visible under a valid ``key``."""
        check_sha256(self.name, key, sha256, actual)
        modified = self._clock()
        # empty metadata reads back as ObjectMeta() either way
        blob = (payload, modified, actual, meta or None)
        listed = ObjectInfo(key, len(payload), modified)
        with self._lock:
            self._index.put(key, listed)
            self._blobs[key] = blob
        return ObjectInfo(key, len(payload), modified, actual)

    def delete(self, key: str) -> None:
        validate_key(self.name, key)
        with self._lock:
            if self._blobs.pop(key, None) is not None:
                self._index.remove(key)

    def corrupt(self, key: str) -> None:
        """Flip the first byte of an object in place (fault injection for tests)."""
        with self._lock:
            stored, modified, _, meta = self._blobs[key]
            data = bytes([stored[0] ^ 0xFF]) + stored[1:] if stored else b"\x00"
            self._blobs[key] = (data, modified, hashlib.sha256(data).hexdigest(), meta)
            self._index.put(key, ObjectInfo(key, len(data), modified))

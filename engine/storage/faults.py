"""A wrapper that injects faults into any storage: outages (now, or after N more calls),
crashes after N writes, throttling, timeouts, connection resets mid-read, corrupted copies,
copies that claim success over wrong bytes, listings that miss a key, a slow link. Used by
tests and by the simulator. Faults surface as a real backend surfaces them once its own
retries are spent: Throttled, Unreachable, or wrong bytes."""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import BinaryIO

from engine.errors import Throttled, Unreachable
from engine.model import Digest, ObjectInfo, ObjectMeta
from engine.storage.base import CopyReport, ListPage, Storage


class InjectedCrash(RuntimeError):
    """Stands for the process dying mid-work (not a storage error). A live driver reports
    an exception inside a copy as a failed copy, so a test that needs the crash to end the
    run uses a driver that raises it again (tests/worlds.py)."""


class FaultyStorage(Storage):
    """Delegates to ``inner`` unless a fault is switched on."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.name = inner.name
        self.kind = inner.kind
        self.keeps_metadata = inner.keeps_metadata
        self.unreachable = False
        #: raise InjectedCrash on the write/copy after this many more have succeeded
        self.crash_after: int | None = None
        #: keys for which a copy lands with one byte flipped
        self.corrupt: Callable[[str], bool] = lambda key: False
        #: keys whose reads fail as if the region went away mid-transfer
        self.fail_reads: Callable[[str], bool] = lambda key: False
        #: the region goes away (``unreachable``) after this many more calls succeed
        self.outage_after: int | None = None
        #: the next this-many calls are refused as throttled (slow down)
        self.throttle_next = 0
        #: the next this-many calls time out (no answer)
        self.timeout_next = 0
        #: keys whose reads deliver half of the bytes, then the connection is reset
        self.reset_reads: Callable[[str], bool] = lambda key: False
        #: keys whose copies land with one byte flipped yet claim a server-side copy proven
        #: identical to the source (a provider checksum that lies)
        self.lie_on_copy: Callable[[str], bool] = lambda key: False
        #: keys the next listing that reaches them leaves out, once each
        self.omit_once: set[str] = set()
        #: seconds a copy of this many bytes spends on the wire before it lands (a link
        #: with a given latency and bandwidth per stream); slept with ``sleep``
        self.transfer_time: Callable[[int], float] = lambda size: 0.0
        self.sleep: Callable[[float], None] = time.sleep
        #: how many calls each fault refused, by kind
        self.injected: dict[str, int] = {}
        self._lock = threading.Lock()

    def _count(self, kind: str) -> None:
        self.injected[kind] = self.injected.get(kind, 0) + 1

    def _check(self, key: str = "") -> None:
        if not (self.unreachable or self.throttle_next or self.timeout_next) \
                and self.outage_after is None:
            return  # nothing armed (most calls): no lock to take
        with self._lock:
            if self.outage_after is not None:
                if self.outage_after <= 0:
                    self.unreachable, self.outage_after = True, None
                else:
                    self.outage_after -= 1
            if self.unreachable:
                self._count("outage")
                raise Unreachable(self.name, "", "injected outage")
            if self.throttle_next > 0:
                self.throttle_next -= 1
                self._count("throttle")
                raise Throttled(self.name, key, "slow down (injected throttling)")
            if self.timeout_next > 0:
                self.timeout_next -= 1
                self._count("timeout")
                raise Unreachable(self.name, key, "no answer: timed out (injected)")

    def _count_write(self) -> None:
        if self.crash_after is None:
            return
        with self._lock:
            if self.crash_after is not None:
                if self.crash_after <= 0:
                    raise InjectedCrash(f"injected crash in {self.name}")
                self.crash_after -= 1

    def list_page(self, prefix: str = "", start_after: str | None = None,
                  limit: int = 1000) -> ListPage:
        self._check(prefix)
        page = self.inner.list_page(prefix, start_after, limit)
        if not self.omit_once:  # most listings omit nothing: no set of their keys
            return page
        with self._lock:
            omitted = {o.key for o in page.objects} & self.omit_once
            self.omit_once -= omitted
            for _ in omitted:
                self._count("omit")
        if not omitted:
            return page
        return ListPage(tuple(o for o in page.objects if o.key not in omitted),
                        page.next_start_after)

    def stat(self, key: str) -> ObjectInfo:
        self._check(key)
        return self.inner.stat(key)

    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        self._check(key)
        if self.fail_reads(key):
            raise Unreachable(self.name, key, "injected failure while reading")
        if self.reset_reads(key):
            return self._reset_midway(key)
        return self.inner.open_read(key)

    def open_described(self, key: str) -> AbstractContextManager[tuple[BinaryIO, ObjectInfo]]:
        # one call, as the inner backend's own (a stat and a read would count twice)
        self._check(key)
        if self.fail_reads(key) or self.reset_reads(key):
            return self._described_with_faults(key)
        return self.inner.open_described(key)

    @contextlib.contextmanager
    def _described_with_faults(self, key: str) -> Iterator[tuple[BinaryIO, ObjectInfo]]:
        info = self.inner.stat(key)
        if self.fail_reads(key):
            raise Unreachable(self.name, key, "injected failure while reading")
        with self._reset_midway(key) as stream:
            yield stream, info

    @contextlib.contextmanager
    def _reset_midway(self, key: str) -> Iterator[BinaryIO]:
        data = self.inner.read_bytes(key)
        with self._lock:
            self._count("reset")
        yield _ResettingReader(data[:len(data) // 2], self.name, key)  # type: ignore[misc]

    def write(self, key: str, data: BinaryIO | bytes, *, sha256: str | None = None,
              meta: ObjectMeta | None = None) -> ObjectInfo:
        self._check(key)
        self._count_write()
        return self.inner.write(key, data, sha256=sha256, meta=meta)

    def delete(self, key: str) -> None:
        self._check(key)
        self.inner.delete(key)


    def close(self) -> None:
        self.inner.close()

    def copy_from(self, source: Storage, source_key: str, key: str, *,
                  sha256: str | None = None, size: int | None = None,
                  digest: Digest | None = None) -> CopyReport:
        self._check(key)
        self._count_write()
        delay = self.transfer_time(size or 0)
        if delay > 0:
            self.sleep(delay)
        if self.lie_on_copy(key):
            data = bytearray(source.read_bytes(source_key))
            data[:1] = bytes([data[0] ^ 0xFF]) if data else b"\x00"
            info = self.inner.write(key, bytes(data))
            with self._lock:
                self._count("lie")
            return CopyReport(info, "server-side", None, "etag-md5-equals-source",
                              identical_to_source=True)
        if self.corrupt(key):
            data = bytearray(source.read_bytes(source_key))
            data[:1] = bytes([data[0] ^ 0xFF]) if data else b"\x00"
            # Written without the expected hash: the corruption lands, as a bad link would.
            info = self.inner.write(key, bytes(data))
            return CopyReport(info, "stream", info.sha256, "sha256-streamed")
        inner_source = source.inner if isinstance(source, FaultyStorage) else source
        if isinstance(source, FaultyStorage):
            if source.reset_reads(source_key) or source.fail_reads(source_key):
                # Stream through the faulty source so that its read faults happen.
                with source.open_read(source_key) as stream:
                    info = self.inner.write(key, stream, sha256=sha256)
                return CopyReport(info, "stream", info.sha256, "sha256-streamed")
            source._check(source_key)
        return self.inner.copy_from(inner_source, source_key, key, sha256=sha256,
                                    size=size, digest=digest)


class _ResettingReader(io.RawIOBase):
    """Delivers some bytes, then fails as a reset connection does."""

    def __init__(self, data: bytes, location: str, key: str) -> None:
        self._data = io.BytesIO(data)
        self._location = location
        self._key = key

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        chunk = self._data.read(size if size is not None and size >= 0 else -1)
        if not chunk or size is None or size < 0:  # reading to the end cannot succeed
            raise Unreachable(self._location, self._key, "connection reset by peer (injected)")
        return chunk

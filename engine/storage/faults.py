"""A wrapper that injects faults into any storage: outages, crashes after N writes,
corrupted copies. Used by tests and by the simulator."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import BinaryIO

from engine.errors import Unreachable
from engine.model import ObjectInfo
from engine.storage.base import CopyReport, ListPage, Storage


class InjectedCrash(RuntimeError):
    """Stands for the process dying mid-work (not a storage error: nothing catches it)."""


class FaultyStorage(Storage):
    """Delegates to ``inner`` unless a fault is switched on."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.name = inner.name
        self.kind = inner.kind
        self.unreachable = False
        #: raise InjectedCrash on the write/copy after this many more have succeeded
        self.crash_after: int | None = None
        #: keys for which a copy lands with one byte flipped
        self.corrupt: Callable[[str], bool] = lambda key: False
        #: keys whose reads fail as if the region went away mid-transfer
        self.fail_reads: Callable[[str], bool] = lambda key: False
        self._lock = threading.Lock()

    def _check(self) -> None:
        if self.unreachable:
            raise Unreachable(self.name, "", "injected outage")

    def _count_write(self) -> None:
        with self._lock:
            if self.crash_after is not None:
                if self.crash_after <= 0:
                    raise InjectedCrash(f"injected crash in {self.name}")
                self.crash_after -= 1

    def list_page(self, prefix: str = "", start_after: str | None = None,
                  limit: int = 1000) -> ListPage:
        self._check()
        return self.inner.list_page(prefix, start_after, limit)

    def stat(self, key: str) -> ObjectInfo:
        self._check()
        return self.inner.stat(key)

    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        self._check()
        if self.fail_reads(key):
            raise Unreachable(self.name, key, "injected failure while reading")
        return self.inner.open_read(key)

    def write(self, key: str, data: BinaryIO | bytes, *, sha256: str | None = None) -> ObjectInfo:
        self._check()
        self._count_write()
        return self.inner.write(key, data, sha256=sha256)

    def delete(self, key: str) -> None:
        self._check()
        self.inner.delete(key)

    def copy_from(self, source: Storage, source_key: str, key: str, *,
                  sha256: str | None = None) -> CopyReport:
        self._check()
        self._count_write()
        if self.corrupt(key):
            data = bytearray(source.read_bytes(source_key))
            data[:1] = bytes([data[0] ^ 0xFF]) if data else b"\x00"
            # Written without the expected hash: the corruption lands, as a bad link would.
            info = self.inner.write(key, bytes(data))
            return CopyReport(info, "stream", info.sha256, "sha256-streamed")
        inner_source = source.inner if isinstance(source, FaultyStorage) else source
        if isinstance(source, FaultyStorage):
            source._check()
        return self.inner.copy_from(inner_source, source_key, key, sha256=sha256)

"""The storage contract: every backend's test module subclasses StorageContract and provides
two fixtures, ``storage`` and ``other_storage`` (a second, empty location of the same backend,
as if in another region)."""

from __future__ import annotations

import hashlib
import io

import pytest

from engine.errors import ChecksumMismatch, InvalidKey, ObjectNotFound
from engine.model import ObjectMeta
from engine.storage.base import Storage

BAD_KEYS = ["", "/etc/passwd", "../outside", "a/../../b", "a/./b", "a//b", "nul\x00byte",
            "a/..", "C:\\windows", ".btar-tmp-x"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class StorageContract:
    #: user metadata as the backup tools write it on this backend (pghoard's names): S3 and
    #: GCS keep hyphens, Azure names are C# identifiers (underscores)
    metadata_sample: dict[str, str] = {"compression-algorithm": "snappy",
                                       "encryption-key-id": "k-2026", "pg-version": "150004"}

    def test_write_then_stat_and_read(self, storage: Storage) -> None:
        info = storage.write("svc/base/1/data.bin", b"hello world")
        assert info.size == 11
        assert info.sha256 == sha(b"hello world")
        assert storage.stat("svc/base/1/data.bin").size == 11
        assert storage.read_bytes("svc/base/1/data.bin") == b"hello world"
        assert storage.sha256_of("svc/base/1/data.bin") == sha(b"hello world")

    def test_write_from_stream(self, storage: Storage) -> None:
        data = bytes(range(256)) * 5000
        info = storage.write("big.bin", io.BytesIO(data), sha256=sha(data))
        assert info.size == len(data)
        with storage.open_read("big.bin") as stream:
            assert stream.read() == data

    def test_overwrite_replaces(self, storage: Storage) -> None:
        storage.write("k", b"one")
        storage.write("k", b"two!")
        assert storage.read_bytes("k") == b"two!"

    def test_wrong_checksum_leaves_nothing_visible(self, storage: Storage) -> None:
        with pytest.raises(ChecksumMismatch):
            storage.write("bad.bin", b"payload", sha256=sha(b"other"))
        with pytest.raises(ObjectNotFound):
            storage.stat("bad.bin")
        assert list(storage.iter_objects()) == []

    def test_missing_object(self, storage: Storage) -> None:
        with pytest.raises(ObjectNotFound):
            storage.stat("nope")
        with pytest.raises(ObjectNotFound), storage.open_read("nope"):
            pass

    def test_listing_is_sorted_and_paginated(self, storage: Storage) -> None:
        keys = sorted([f"p/{i:03d}" for i in range(25)] + ["p-x", "p/a-b", "p/a/c", "q/1"])
        for key in keys:
            storage.write(key, key.encode())
        listed = [o.key for o in storage.iter_objects("p/", page_size=7)]
        assert listed == [k for k in keys if k.startswith("p/")]
        first = storage.list_page("p/", None, 10)
        assert len(first.objects) == 10
        assert first.next_start_after == first.objects[-1].key
        rest = storage.list_page("p/", first.next_start_after, 1000)
        assert rest.next_start_after is None
        assert [o.key for o in first.objects + rest.objects] == listed
        assert [o.key for o in storage.iter_objects()] == keys
        sizes = {o.key: o.size for o in storage.iter_objects()}
        assert sizes["p/a/c"] == len(b"p/a/c")

    def test_listing_empty_prefix_page(self, storage: Storage) -> None:
        page = storage.list_page("nothing/", None, 10)
        assert page.objects == ()
        assert page.next_start_after is None

    def test_delete(self, storage: Storage) -> None:
        storage.write("a/b/c", b"x")
        storage.delete("a/b/c")
        storage.delete("a/b/c")  # idempotent
        with pytest.raises(ObjectNotFound):
            storage.stat("a/b/c")
        assert list(storage.iter_objects()) == []

    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_keys_that_escape_are_refused(self, storage: Storage, key: str) -> None:
        with pytest.raises(InvalidKey):
            storage.write(key, b"x")
        with pytest.raises(InvalidKey):
            storage.stat(key)

    def test_copy_between_locations(self, storage: Storage, other_storage: Storage) -> None:
        data = b"0123456789" * 1000
        storage.write("svc/wal/000001", data)
        report = other_storage.copy_from(storage, "svc/wal/000001", "svc/wal/000001",
                                         sha256=sha(data))
        assert report.info.size == len(data)
        assert report.method in ("stream", "server-side", "kernel")
        if report.sha256 is not None:
            assert report.sha256 == sha(data)
        assert other_storage.read_bytes("svc/wal/000001") == data
        assert storage.read_bytes("svc/wal/000001") == data  # the source is untouched

    def test_copy_of_missing_source(self, storage: Storage, other_storage: Storage) -> None:
        with pytest.raises(ObjectNotFound):
            other_storage.copy_from(storage, "absent", "absent")

    def test_empty_object(self, storage: Storage) -> None:
        info = storage.write("empty", b"")
        assert info.size == 0
        assert storage.read_bytes("empty") == b""

    def test_copy_keeps_metadata(self, storage: Storage, other_storage: Storage) -> None:
        """User metadata, content type and encoding survive a copy on every path: the
        backend's own (server-side where it has one), and the streaming fallback; with and
        without a recorded SHA-256."""
        meta = ObjectMeta.of(self.metadata_sample, "application/x-tar", "gzip")
        data = b"tar bytes " * 500
        storage.write("svc/base/1/data.tar.gz", data, meta=meta)
        if not (storage.keeps_metadata and other_storage.keeps_metadata):
            # a folder keeps no metadata: the write and its copies still hold the bytes
            assert not storage.stat("svc/base/1/data.tar.gz").meta
            meta = ObjectMeta()
        assert (storage.stat("svc/base/1/data.tar.gz").meta or ObjectMeta()) == meta
        paths = {
            "own": lambda key, **kw: other_storage.copy_from(
                storage, "svc/base/1/data.tar.gz", key, **kw),
            "stream": lambda key, **kw: Storage.copy_from(
                other_storage, storage, "svc/base/1/data.tar.gz", key, **kw),
        }
        for name, copy in paths.items():
            for recorded in (sha(data), None):
                key = f"svc/base/1/{name}-{'sha' if recorded else 'none'}.tar.gz"
                copy(key, sha256=recorded, size=len(data))
                copied = other_storage.stat(key)
                assert (copied.meta or ObjectMeta()) == meta, (name, recorded)
                assert other_storage.read_bytes(key) == data

from __future__ import annotations

import errno
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from engine.effects import Completions, CopyResult, CopyTask, Effect, NextCompletions, StartCopy
from engine.errors import ChecksumMismatch, ObjectNotFound, StorageError, Unreachable
from engine.runtime import LiveDriver
from engine.storage.base import TEMP_MARKER
from engine.storage.local import LocalStorage
from engine.storage.memory import MemoryStorage
from tests.storage_contract import StorageContract, sha


class TestLocalContract(StorageContract):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> LocalStorage:
        return LocalStorage(tmp_path / "aws-eu-west-1")

    @pytest.fixture
    def other_storage(self, tmp_path: Path) -> LocalStorage:
        return LocalStorage(tmp_path / "aws-eu-central-1")


class TestMemoryContract(StorageContract):
    @pytest.fixture
    def storage(self) -> MemoryStorage:
        return MemoryStorage("one")

    @pytest.fixture
    def other_storage(self) -> MemoryStorage:
        return MemoryStorage("two")


def test_local_failed_write_leaves_no_temp_file(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "r")
    with pytest.raises(ChecksumMismatch):
        store.write("a/b", b"data", sha256=sha(b"other"))
    leftovers = [p for p in (tmp_path / "r").rglob("*") if p.is_file()]
    assert leftovers == []


def test_local_listing_hides_temp_files(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "r")
    store.write("a/b", b"x")
    (tmp_path / "r" / "a" / f"{TEMP_MARKER}123").write_bytes(b"half")
    assert [o.key for o in store.iter_objects()] == ["a/b"]


def test_local_symlink_out_of_root_is_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"credentials")
    store = LocalStorage(tmp_path / "r")
    os.symlink(secret, tmp_path / "r" / "link")
    with pytest.raises(ObjectNotFound):
        store.read_bytes("link")


def test_local_missing_root_is_unreachable(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "gone", create=False)
    with pytest.raises(Unreachable):
        store.list_page()


def test_local_delete_prunes_empty_folders_but_keeps_root(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "r")
    store.write("x/y/z", b"1")
    store.delete("x/y/z")
    assert (tmp_path / "r").is_dir()
    assert list((tmp_path / "r").iterdir()) == []


# --- durability: a key is absent or whole --------------------------------------------------

def temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(TEMP_MARKER)]


def test_a_copy_that_cannot_be_made_durable_fails(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    source, target = LocalStorage(tmp_path / "p"), LocalStorage(tmp_path / "s")
    source.write("k/1", b"one")

    def refuse(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    driver = LiveDriver({"p": source, "s": target}.__getitem__)
    monkeypatch.setattr(os, "fsync", refuse)
    [result] = driver.run(_copy(CopyTask("p", "s", "k/1", 3, sha(b"one"))))
    monkeypatch.undo()
    assert not result.ok
    assert "Input/output error" in result.error
    assert not list(target.iter_objects())  # nothing under the key, no temporary left
    assert not temporaries(tmp_path / "s")


def _copy(task: CopyTask) -> Generator[Effect, Any, tuple[CopyResult, ...]]:
    """Start one copy and wait for its completion."""
    started = yield StartCopy(task)
    assert started
    done: Completions = yield NextCompletions(None)
    return done.results


def test_temporaries_a_crash_left_are_removed_when_their_folder_is_written(
        tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "s")
    storage.write("log/a", b"a")
    old, fresh = (tmp_path / "s" / "log" / f"{TEMP_MARKER}{n}" for n in ("old", "fresh"))
    for path in (old, fresh):
        path.write_bytes(b"partial")
    os.utime(old, (1, 1))
    LocalStorage(tmp_path / "s").write("log/b", b"b")  # a new process, as after a crash
    assert not old.exists()
    assert fresh.exists()  # may belong to a write in progress


@pytest.mark.parametrize(("code", "reason"), [(errno.ENOSPC, "no space left on the device"),
                                              (errno.EROFS, "read-only file system"),
                                              (errno.EACCES, "permission denied")])
def test_a_location_that_cannot_take_writes_is_unreachable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, reason: str) -> None:
    storage = LocalStorage(tmp_path / "s")

    def refuse(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", refuse)
    with pytest.raises(Unreachable, match=reason):
        storage.write("log/a", b"a")
    monkeypatch.undo()
    assert not list(storage.iter_objects())
    assert not temporaries(tmp_path)


def test_a_folder_that_cannot_be_listed_is_unreachable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = LocalStorage(tmp_path / "s")
    storage.write("log/a", b"a")

    def refuse(path: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(os, "scandir", refuse)
    with pytest.raises(Unreachable, match="permission denied"):
        storage.list_page("log/")


def test_a_file_where_a_folder_is_expected_fails_only_that_key(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "s")
    storage.write("log", b"a file where a folder should be")
    with pytest.raises(StorageError, match="a parent of this key is an object") as caught:
        storage.write("log/1/a", b"a")
    assert not isinstance(caught.value, Unreachable)
    storage.write("base/1", b"b")  # the rest of the location still works


# -- copies between two local locations: made by the kernel, then read back and hashed -----

def _locations(tmp_path: Path) -> tuple[LocalStorage, LocalStorage]:
    return LocalStorage(tmp_path / "a"), LocalStorage(tmp_path / "b")


def test_a_local_copy_is_made_by_the_kernel_and_hashed_from_the_copy(tmp_path: Path) -> None:
    source, destination = _locations(tmp_path)
    data = os.urandom(9 * 1024 * 1024 + 7)  # several pieces of the kernel copy
    source.write("svc/base/1/data", data)
    report = destination.copy_from(source, "svc/base/1/data", "svc/base/1/data",
                                   sha256=sha(data))
    assert (report.method, report.verified_by) == ("kernel", "sha256-read-back")
    assert report.sha256 == sha(data)
    assert destination.read_bytes("svc/base/1/data") == data


def test_a_local_copy_that_does_not_hash_to_the_record_is_never_visible(
        tmp_path: Path) -> None:
    source, destination = _locations(tmp_path)
    source.write("svc/wal/1", b"changed since it was recorded")
    with pytest.raises(ChecksumMismatch):
        destination.copy_from(source, "svc/wal/1", "svc/wal/1", sha256=sha(b"recorded"))
    assert not any(p.is_file() for p in (tmp_path / "b").rglob("*"))


def test_a_local_copy_falls_back_to_reads_and_writes_where_the_kernel_cannot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source, destination = _locations(tmp_path)
    data = os.urandom(5 * 1024 * 1024)
    source.write("svc/wal/1", data)

    def across_devices(*_: object) -> int:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", across_devices)
    report = destination.copy_from(source, "svc/wal/1", "svc/wal/1", sha256=sha(data))
    assert report.sha256 == sha(data)
    assert destination.read_bytes("svc/wal/1") == data

"""Durability of the local backend. Group flushes (engine/storage/durability.py): a caller
returns only after a flush that began after its call, many callers share one flush, and a
failed flush fails exactly the callers it was meant to cover. The backend: a write is checked,
its bytes flushed, then renamed, then its name flushed, all before it returns; what fails
anywhere on the way leaves nothing visible."""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from engine.effects import Completions, CopyResult, CopyTask, Effect, NextCompletions, StartCopy
from engine.errors import ChecksumMismatch, ObjectNotFound, StorageError
from engine.runtime import LiveDriver
from engine.storage.base import TEMP_MARKER
from engine.storage.durability import FolderFlushes, GroupFlush
from engine.storage.local import LocalStorage
from tests.storage_contract import sha


class SlowFlush:
    """A flush that records when each call began and ended, and can be told to fail."""

    def __init__(self, seconds: float = 0.02) -> None:
        self.seconds = seconds
        self.calls: list[tuple[float, float]] = []
        self.fail_next = False
        self._lock = threading.Lock()

    def __call__(self) -> None:
        began = time.monotonic()
        time.sleep(self.seconds)
        with self._lock:
            self.calls.append((began, time.monotonic()))
            if self.fail_next:
                self.fail_next = False
                raise OSError(errno.EIO, "Input/output error")


def test_a_caller_returns_after_a_flush_that_began_after_its_call() -> None:
    flush = SlowFlush()
    group = GroupFlush(flush)

    def wait() -> float:
        called = time.monotonic()
        group.wait()
        return called

    with ThreadPoolExecutor(16) as pool:
        called_at = list(pool.map(lambda _: wait(), range(64)))
    assert flush.calls
    for called in called_at:
        assert any(began >= called for began, _ in flush.calls)


def test_many_callers_share_few_flushes() -> None:
    flush = SlowFlush(0.05)
    group = GroupFlush(flush)
    barrier = threading.Barrier(32)

    def wait() -> None:
        barrier.wait()
        group.wait()

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda _: wait(), range(32)))
    # All arrive during the first flush at the latest: that one, and one more for them.
    assert len(flush.calls) <= 2
    assert all(a[1] <= b[0] for a, b in zip(flush.calls, flush.calls[1:], strict=False))


def test_a_failed_flush_fails_its_callers_and_not_the_next() -> None:
    flush = SlowFlush()
    group = GroupFlush(flush)
    flush.fail_next = True
    with pytest.raises(OSError, match="Input/output error"):
        group.wait()
    group.wait()  # the next flush succeeds, and nothing of the failure is left over
    assert not group._errors
    assert not group._waiters


def test_folder_flushes_are_per_folder() -> None:
    seen: list[Path] = []
    flushes = FolderFlushes(seen.append)
    flushes.wait(Path("a"))
    flushes.wait(Path("b"))
    assert seen == [Path("a"), Path("b")]


# -- the local backend: a write returns durable, and only a checked write is ever visible ---

def temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(TEMP_MARKER)]


def _is_folder(fd: int) -> bool:
    return stat.S_ISDIR(os.fstat(fd).st_mode)


@pytest.fixture
def journal(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """The order of the flushes and renames the backend makes: ("fsync", "file"/"folder"),
    ("rename", final name)."""
    events: list[tuple[str, str]] = []
    fsync, replace = os.fsync, os.replace

    def logged_fsync(fd: int) -> None:
        fsync(fd)
        events.append(("fsync", "folder" if _is_folder(fd) else "file"))

    def logged_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        replace(src, dst)
        events.append(("rename", Path(dst).name))

    monkeypatch.setattr(os, "fsync", logged_fsync)
    monkeypatch.setattr(os, "replace", logged_replace)
    return events


def test_a_copy_is_flushed_then_renamed_then_its_name_flushed(
        tmp_path: Path, journal: list[tuple[str, str]]) -> None:
    source, destination = LocalStorage(tmp_path / "a"), LocalStorage(tmp_path / "b")
    source.write("svc/wal/1", b"segment")
    journal.clear()
    report = destination.copy_from(source, "svc/wal/1", "svc/wal/1", sha256=sha(b"segment"))
    assert (report.method, report.verified_by) == ("kernel", "sha256-read-back")
    # new folders first (each one's name made durable), then the file, its name, its folder
    assert journal == [("fsync", "folder"), ("fsync", "folder"), ("fsync", "file"),
                       ("rename", "1"), ("fsync", "folder")]
    journal.clear()
    destination.copy_from(source, "svc/wal/1", "svc/wal/2", sha256=sha(b"segment"))
    assert journal == [("fsync", "file"), ("rename", "2"), ("fsync", "folder")]


def test_writes_are_whole_and_durable_on_return(tmp_path: Path) -> None:
    """Each write is durable and visible when it returns: there is nothing to commit."""
    storage = LocalStorage(tmp_path / "s")
    keys = [f"log/{i:04d}" for i in range(40)]
    for i, key in enumerate(keys):
        assert storage.write(key, b"x" * i, sha256=sha(b"x" * i)).size == i
        assert storage.read_bytes(key) == b"x" * i
    storage.close()
    assert [o.key for o in storage.iter_objects("log/")] == keys
    assert not temporaries(tmp_path)


def test_concurrent_copies_into_one_folder_share_its_flushes(
        tmp_path: Path, journal: list[tuple[str, str]]) -> None:
    source, destination = LocalStorage(tmp_path / "a"), LocalStorage(tmp_path / "b")
    keys = [f"svc/wal/{i:04d}" for i in range(200)]
    for key in keys:
        source.write(key, key.encode())
    destination.write("svc/wal/first", b"makes the folders")
    journal.clear()

    def copy(key: str) -> str | None:
        return destination.copy_from(source, key, key, sha256=sha(key.encode())).sha256

    with ThreadPoolExecutor(32) as pool:
        assert list(pool.map(copy, keys)) == [sha(key.encode()) for key in keys]
    assert [o.key for o in destination.iter_objects("svc/wal/0")] == keys
    assert journal.count(("fsync", "file")) == len(keys)
    assert journal.count(("fsync", "folder")) < len(keys)
    assert not temporaries(tmp_path / "b")


def test_a_copy_whose_name_cannot_be_made_durable_fails_and_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source, destination = LocalStorage(tmp_path / "a"), LocalStorage(tmp_path / "b")
    source.write("k/1", b"one")
    destination.write("k/0", b"makes the folder")
    fsync = os.fsync

    def refuse_folders(fd: int) -> None:
        if _is_folder(fd):
            raise OSError(errno.EIO, "Input/output error")
        fsync(fd)

    monkeypatch.setattr(os, "fsync", refuse_folders)
    with pytest.raises(StorageError, match="Input/output error"):
        destination.copy_from(source, "k/1", "k/1", sha256=sha(b"one"))
    monkeypatch.undo()
    assert [o.key for o in destination.iter_objects()] == ["k/0"]
    assert not temporaries(tmp_path / "b")


def test_a_copy_that_does_not_match_costs_no_flush_and_is_never_visible(
        tmp_path: Path, journal: list[tuple[str, str]]) -> None:
    source, destination = LocalStorage(tmp_path / "a"), LocalStorage(tmp_path / "b")
    source.write("k/1", b"changed since it was recorded")
    destination.write("k/0", b"makes the folder")
    journal.clear()
    with pytest.raises(ChecksumMismatch):
        destination.copy_from(source, "k/1", "k/1", sha256=sha(b"recorded"))
    assert journal == []
    assert [o.key for o in destination.iter_objects()] == ["k/0"]
    assert not temporaries(tmp_path / "b")


def test_a_copy_through_the_driver_is_visible_when_it_comes_back(tmp_path: Path) -> None:
    source, target = LocalStorage(tmp_path / "p"), LocalStorage(tmp_path / "s")
    source.write("k/1", b"one")
    driver = LiveDriver({"p": source, "s": target}.__getitem__)

    def one() -> Generator[Effect, Any, tuple[CopyResult, ...]]:
        assert (yield StartCopy(CopyTask("p", "s", "k/1", 3, sha(b"one"))))
        done: Completions = yield NextCompletions(None)
        return done.results

    [result] = driver.run(one())
    assert result.ok
    assert result.verified_by == "sha256-read-back"
    assert target.read_bytes("k/1") == b"one"


def test_a_source_symlink_is_followed_only_inside_the_location(tmp_path: Path) -> None:
    source, destination = LocalStorage(tmp_path / "a"), LocalStorage(tmp_path / "b")
    source.write("svc/wal/1", b"segment")
    os.symlink(tmp_path / "a" / "svc" / "wal" / "1", tmp_path / "a" / "svc" / "wal" / "2")
    (tmp_path / "secret").write_bytes(b"credentials")
    os.symlink(tmp_path / "secret", tmp_path / "a" / "svc" / "wal" / "3")
    destination.copy_from(source, "svc/wal/2", "svc/wal/2", sha256=sha(b"segment"))
    assert destination.read_bytes("svc/wal/2") == b"segment"
    with pytest.raises(ObjectNotFound):
        destination.copy_from(source, "svc/wal/3", "svc/wal/3", sha256=sha(b"credentials"))
    with pytest.raises(ObjectNotFound):
        destination.copy_from(source, "svc", "svc/x", sha256=sha(b""))  # a folder


def test_a_new_folder_under_a_file_fails_only_that_key(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "s")
    storage.write("log", b"a file where a folder should be")
    for key in ("log/1", "log/1/a"):
        with pytest.raises(StorageError, match="a parent of this key is an object"):
            storage.write(key, b"a")
    assert not temporaries(tmp_path)

"""The local copy helper (engine/storage/copy_helper.py, engine/storage/local.py) and its group
commit (engine/storage/durability.py: Commits). A small copy between local locations is made
by a process of its own and answered only once durable under its name; a copy that fails
anywhere leaves nothing visible; what the helper declines is done by the caller's thread as
before; the helper never outlives btar, and one that ends is replaced."""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from engine.errors import ChecksumMismatch, ObjectNotFound, StorageError
from engine.storage import copy_helper, durability, local
from engine.storage.base import TEMP_MARKER
from engine.storage.copy_helper import HELPER_FROM, CopyHelper, _land
from engine.storage.durability import Landed, commit_together
from engine.storage.local import LocalStorage
from tests.storage_contract import sha


def temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(TEMP_MARKER)]


def _start_helper(destination: LocalStorage) -> CopyHelper:
    """Start the destination's helper as a run of small copies would, and wait until it
    takes requests."""
    for _ in range(HELPER_FROM):
        destination._copy_helper()
    helper = destination._helper
    assert helper is not None
    deadline = time.monotonic() + 10
    while not helper.ready and time.monotonic() < deadline:
        time.sleep(0.005)
    assert destination._copy_helper() is helper
    return helper


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[LocalStorage, LocalStorage]]:
    """Two locations; the destination's helper is ready."""
    source, destination = LocalStorage(tmp_path / "a"), LocalStorage(tmp_path / "b")
    destination.write("svc/wal/first", b"makes the folder")
    _start_helper(destination)
    yield source, destination
    destination.close()


def test_a_few_small_copies_start_no_helper(tmp_path: Path) -> None:
    source, destination = LocalStorage(tmp_path / "a"), LocalStorage(tmp_path / "b")
    source.write("svc/manifest", b"the marker")
    for i in range(HELPER_FROM - 1):
        destination.copy_from(source, "svc/manifest", f"svc/m{i}", sha256=sha(b"the marker"),
                              size=10)
    assert destination._helper is None


def _helper_pid(storage: LocalStorage) -> int:
    helper = storage._helper
    assert helper is not None
    assert helper._process is not None
    return helper._process.pid


def test_many_small_copies_go_through_the_helper_and_are_whole(
        pair: tuple[LocalStorage, LocalStorage], tmp_path: Path) -> None:
    source, destination = pair
    keys = [f"svc/wal/{i:04d}" for i in range(300)]
    (tmp_path / "a" / "svc" / "wal").mkdir(parents=True)
    for key in keys:
        (tmp_path / "a" / key).write_bytes(key.encode() * 50)

    def copy(key: str) -> tuple[str | None, str, str | None]:
        data = key.encode() * 50
        report = destination.copy_from(source, key, key, sha256=sha(data), size=len(data))
        return report.sha256, report.method, report.verified_by

    helper = destination._helper
    assert helper is not None
    asked = next(helper._ids)
    with ThreadPoolExecutor(32) as pool:
        reports = list(pool.map(copy, keys))
    assert reports == [(sha(k.encode() * 50), "kernel", "sha256-read-back") for k in keys]
    assert next(helper._ids) == asked + len(keys) + 1  # the helper made them all
    for key in keys:
        assert destination.read_bytes(key) == key.encode() * 50
    assert not temporaries(tmp_path / "b")


def test_a_copy_that_does_not_match_is_never_visible(
        pair: tuple[LocalStorage, LocalStorage], tmp_path: Path) -> None:
    source, destination = pair
    source.write("svc/wal/1", b"changed since it was recorded")
    helper = destination._helper
    assert helper is not None
    asked = next(helper._ids)
    with pytest.raises(ChecksumMismatch):
        destination.copy_from(source, "svc/wal/1", "svc/wal/1", sha256=sha(b"recorded"),
                              size=29)
    assert next(helper._ids) == asked + 2  # the helper found it
    assert [o.key for o in destination.iter_objects()] == ["svc/wal/first"]
    assert not temporaries(tmp_path / "b")


def test_what_the_helper_declines_is_done_or_refused_as_before(
        pair: tuple[LocalStorage, LocalStorage], tmp_path: Path) -> None:
    source, destination = pair
    source.write("svc/wal/1", b"segment")
    # a missing source: not found, as on the caller's own path
    with pytest.raises(ObjectNotFound):
        destination.copy_from(source, "svc/wal/absent", "svc/wal/absent", sha256=sha(b""),
                              size=0)
    # a folder the destination does not have yet: made by the caller, durably
    report = destination.copy_from(source, "svc/wal/1", "svc/new/deep/1",
                                   sha256=sha(b"segment"), size=7)
    assert report.sha256 == sha(b"segment")
    assert destination.read_bytes("svc/new/deep/1") == b"segment"
    # a symlink is followed only inside the location, never by the helper
    os.symlink(tmp_path / "a" / "svc" / "wal" / "1", tmp_path / "a" / "svc" / "wal" / "2")
    (tmp_path / "secret").write_bytes(b"credentials")
    os.symlink(tmp_path / "secret", tmp_path / "a" / "svc" / "wal" / "3")
    destination.copy_from(source, "svc/wal/2", "svc/wal/2", sha256=sha(b"segment"), size=7)
    assert destination.read_bytes("svc/wal/2") == b"segment"
    with pytest.raises(ObjectNotFound):
        destination.copy_from(source, "svc/wal/3", "svc/wal/3", sha256=sha(b"credentials"),
                              size=11)
    assert not temporaries(tmp_path / "b")


def test_a_full_disk_is_the_location_s_fault(
        pair: tuple[LocalStorage, LocalStorage], monkeypatch: pytest.MonkeyPatch) -> None:
    source, destination = pair
    source.write("svc/wal/1", b"segment")
    helper = destination._copy_helper()
    assert helper is not None
    monkeypatch.setattr(helper, "copy", lambda *a: (0, "error", errno.ENOSPC, "No space"))
    with pytest.raises(StorageError, match="no space left") as raised:
        destination.copy_from(source, "svc/wal/1", "svc/wal/1", sha256=sha(b"segment"), size=7)
    assert raised.value.fault == "unusable"
    assert [o.key for o in destination.iter_objects()] == ["svc/wal/first"]


def test_a_helper_that_ends_fails_its_copies_and_is_replaced(
        pair: tuple[LocalStorage, LocalStorage]) -> None:
    source, destination = pair
    source.write("svc/wal/1", b"segment")
    destination.copy_from(source, "svc/wal/1", "svc/wal/1", sha256=sha(b"segment"), size=7)
    first = _helper_pid(destination)
    helper = destination._helper
    assert helper is not None
    os.kill(first, signal.SIGKILL)
    helper._reader.join(10)
    assert helper.ended is not None
    # copies go on, on the callers' threads, while a new helper starts
    report = destination.copy_from(source, "svc/wal/1", "svc/wal/2", sha256=sha(b"segment"),
                                   size=7)
    assert report.sha256 == sha(b"segment")
    assert _start_helper(destination) is not helper
    assert _helper_pid(destination) != first


def test_copies_waiting_when_the_helper_ends_fail(
        pair: tuple[LocalStorage, LocalStorage]) -> None:
    source, destination = pair
    helper = destination._copy_helper()
    assert helper is not None
    fifo = Path(source.root) / "svc" / "fifo"
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)  # opening it blocks the helper's copying thread: the copy waits
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(destination.copy_from, source, "svc/fifo", "svc/wal/x",
                              sha256=sha(b""), size=0)
        time.sleep(0.2)
        assert not waiting.done()
        os.kill(_helper_pid(destination), signal.SIGKILL)
        with pytest.raises(StorageError, match="copy helper process"):
            waiting.result(10)


def test_the_helper_dies_with_btar(tmp_path: Path) -> None:
    program = textwrap.dedent(f"""
        import os, sys, threading, time
        from engine.storage.local import LocalStorage
        source = LocalStorage({str(tmp_path / "a")!r})
        target = LocalStorage({str(tmp_path / "b")!r})
        source.write("k/1", b"x")
        target.write("k/0", b"y")
        for i in range(1000):
            target.copy_from(source, "k/1", "k/2", sha256={sha(b"x")!r}, size=1)
            if target._helper is not None and target._helper.ready:
                break
            time.sleep(0.002)
        # busy: opening a FIFO blocks its copying thread, so only its death can stop it
        os.mkfifo({str(tmp_path / "a" / "k" / "fifo")!r})
        threading.Thread(target=target.copy_from, args=(source, "k/fifo", "k/3"),
                         kwargs={{"sha256": "", "size": 0}}, daemon=True).start()
        time.sleep(0.2)
        print(target._helper._process.pid, flush=True)
        time.sleep(60)
    """)
    btar = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, text=True)
    assert btar.stdout is not None
    helper = int(btar.stdout.readline())
    assert _alive(helper)
    btar.kill()
    btar.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(helper):
        time.sleep(0.02)
    assert not _alive(helper), "the copy helper outlived btar"


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for whoever inherited it to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


# -- the group commit: bytes durable before the rename, the name durable before the answer --

class Journal:
    """Records, in order, what the commit does to the disk: flushes of file bytes (an
    fsync of a file, or a syncfs that covers every file written before it) and renames, and
    flushes of names (an fsync of a folder, or a syncfs that covers every rename before it)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail: str = "") -> None:
        self.events: list[tuple[str, str]] = []
        self.fail = fail
        fsync, replace = os.fsync, os.replace
        real_syncfs = durability._SYNCFS

        def logged_fsync(fd: int) -> None:
            folder = os.path.isdir(f"/proc/self/fd/{fd}")
            if self.fail == ("folder" if folder else "file"):
                raise OSError(errno.EIO, "Input/output error")
            fsync(fd)
            self.events.append(("fsync", "folder" if folder else os.readlink(
                f"/proc/self/fd/{fd}")))

        def logged_replace(src: str, dst: str) -> None:
            replace(src, dst)
            self.events.append(("rename", dst))

        def logged_syncfs(fd: int) -> int:
            if self.fail == "syncfs":
                return -1
            assert real_syncfs is not None
            self.events.append(("syncfs", ""))
            return real_syncfs(fd)

        monkeypatch.setattr(durability.os, "fsync", logged_fsync)
        monkeypatch.setattr(durability.os, "replace", logged_replace)
        if real_syncfs is not None:
            monkeypatch.setattr(durability, "_SYNCFS", logged_syncfs)

    def check(self, finished: list[Landed]) -> None:
        """Each copy that finished well was landed, its bytes flushed, renamed, its name
        flushed, and only then finished, in that order."""
        for landed in finished:
            if landed.error is not None:
                continue
            events = self.events
            begun = events.index(("landed", landed.final))
            renamed = events.index(("rename", landed.final))
            done = events.index(("finished", landed.final))
            assert begun < renamed < done, landed
            assert any(kind == "syncfs" or (kind, what) == ("fsync", landed.temp)
                       for kind, what in events[begun:renamed]), landed
            assert any(kind == "syncfs" or (kind, what) == ("fsync", "folder")
                       for kind, what in events[renamed:done]), landed


def _landed(tmp_path: Path, count: int, start: int = 0,
            journal: Journal | None = None) -> list[Landed]:
    source = tmp_path / "src"
    source.mkdir(exist_ok=True)
    target = tmp_path / "dst"
    target.mkdir(exist_ok=True)
    batch = []
    for i in range(start, start + count):
        data = f"object {i}".encode()
        (source / str(i)).write_bytes(data)
        landed, answer = _land((i, str(source / str(i)), str(target / f"{TEMP_MARKER}{i}"),
                                str(target / str(i)), hashlib.sha256(data).hexdigest()))
        assert landed is not None, answer
        assert answer[1] == "ok"
        batch.append(landed)
        if journal is not None:
            journal.events.append(("landed", landed.final))
    return batch


def _visible(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "dst").iterdir())


def _commit(batch: list[Landed], journal: Journal | None = None) -> list[Landed]:
    commit_together(batch)
    if journal is not None:
        journal.events += [("finished", landed.final) for landed in batch]
    return batch


@pytest.mark.parametrize("sizes", [[1], [2], [3], [20], [20, 1, 5]])
def test_each_commit_renames_only_flushed_bytes_and_answers_only_flushed_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sizes: list[int]) -> None:
    journal = Journal(monkeypatch)
    finished: list[Landed] = []
    start = 0
    for size in sizes:
        finished += _commit(_landed(tmp_path, size, start, journal), journal)
        start += size
    assert sorted(landed.ident for landed in finished) == list(range(start))
    assert all(landed.error is None for landed in finished)
    journal.check(finished)
    assert _visible(tmp_path) == sorted(str(i) for i in range(start))
    assert not temporaries(tmp_path / "dst")


@pytest.mark.parametrize("fail", ["file", "folder", "syncfs"])
@pytest.mark.parametrize("size", [1, 20])
def test_a_failed_flush_fails_its_copies_and_leaves_nothing_visible(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: str, size: int) -> None:
    if fail == "syncfs" and durability._SYNCFS is None:
        pytest.skip("no syncfs here")
    Journal(monkeypatch, fail=fail)
    finished = _commit(_landed(tmp_path, size))
    bulk = durability._SYNCFS is not None and size >= durability.SYNCFS_FROM
    # in bulk, a syncfs and a file's fsync as the flush after it; alone, the file's fsync;
    # and the folder's fsync after the renames either way
    expect_failed = fail in ("syncfs", "file", "folder") if bulk else fail in ("file", "folder")
    assert all((landed.error is not None) == expect_failed for landed in finished)
    assert _visible(tmp_path) == ([] if expect_failed else sorted(str(i) for i in range(size)))
    assert not temporaries(tmp_path / "dst")


def test_a_copy_whose_rename_fails_is_the_only_one_to_fail(tmp_path: Path) -> None:
    batch = _landed(tmp_path, 20)
    (tmp_path / "dst" / "7").mkdir()  # a folder where copy 7 goes: its rename fails
    (tmp_path / "dst" / "7" / "x").write_bytes(b"")
    finished = _commit(batch)
    assert [landed.ident for landed in finished if landed.error is not None] == [7]
    assert _visible(tmp_path) == sorted(str(i) for i in range(20))  # "7" is the folder
    assert not temporaries(tmp_path / "dst")


def test_a_folder_replaced_by_a_symlink_is_checked_again(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "s")
    storage.write("a/b", b"x")
    assert storage._file("a/c") == f"{tmp_path / 's'}/a/c"  # "a" is known safe now
    storage.delete("a/b")  # "a" is empty and removed: no longer known
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "s" / "a")
    with pytest.raises(ObjectNotFound, match="outside the location"):
        storage._file("a/c")


def test_a_helper_that_cannot_start_is_not_tried_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(copy_helper, "_HELPER_CODE", "import sys; sys.exit(3)")
    started: list[CopyHelper] = []
    real = CopyHelper

    def counted() -> CopyHelper:
        started.append(real())
        return started[-1]

    monkeypatch.setattr(local, "CopyHelper", counted)
    source, destination = LocalStorage(tmp_path / "a"), LocalStorage(tmp_path / "b")
    source.write("svc/1", b"one")
    for i in range(HELPER_FROM + 40):
        destination.copy_from(source, "svc/1", f"svc/{i}", sha256=sha(b"one"), size=3)
        if started:
            started[0]._reader.join(10)
    assert len(started) == 1
    assert "exit status 3" in destination._no_helper
    assert destination.read_bytes(f"svc/{HELPER_FROM + 39}") == b"one"

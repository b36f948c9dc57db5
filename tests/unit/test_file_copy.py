"""The kernel copy of one file into another (engine/storage/file_copy.py): what is hashed is
the destination's bytes, read back, whatever the size, the pieces and the way the bytes were
copied; a large copy is handed to the disk as it goes."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest

from engine.storage import file_copy
from engine.storage.file_copy import copy_then_hash

#: a small piece, so that a few KiB make several
PIECE = 1024


@pytest.fixture(autouse=True)
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_copy, "PIECE", PIECE)
    monkeypatch.setattr(file_copy, "START_WRITING_FROM", 2 * PIECE)


def _copy(tmp_path: Path, data: bytes, size: int | None) -> tuple[str, int, bytes]:
    (tmp_path / "src").write_bytes(data)
    source = os.open(tmp_path / "src", os.O_RDONLY)
    destination = os.open(tmp_path / "dst", os.O_RDWR | os.O_CREAT | os.O_EXCL)
    try:
        digest, length = copy_then_hash(source, destination, size)
    finally:
        os.close(source)
        os.close(destination)
    return digest, length, (tmp_path / "dst").read_bytes()


@pytest.mark.parametrize("size", [0, 1, PIECE - 1, PIECE, PIECE + 1, 3 * PIECE + 7])
@pytest.mark.parametrize("known", [True, False])
def test_the_copy_and_its_hash(tmp_path: Path, size: int, known: bool) -> None:
    data = os.urandom(size)
    digest, length, copied = _copy(tmp_path, data, size if known else None)
    assert copied == data
    assert (digest, length) == (hashlib.sha256(data).hexdigest(), size)


def test_a_known_size_is_where_the_copy_stops(tmp_path: Path) -> None:
    """The size the caller saw: the recorded object is verified, whatever was appended."""
    data = os.urandom(3 * PIECE)
    digest, length, copied = _copy(tmp_path, data, 2 * PIECE)
    assert copied == data[:2 * PIECE]
    assert (digest, length) == (hashlib.sha256(data[:2 * PIECE]).hexdigest(), 2 * PIECE)


def test_a_source_shorter_than_its_size_gives_what_it_holds(tmp_path: Path) -> None:
    data = os.urandom(PIECE + 10)
    digest, length, copied = _copy(tmp_path, data, 4 * PIECE)
    assert copied == data
    assert (digest, length) == (hashlib.sha256(data).hexdigest(), len(data))


def test_where_the_kernel_cannot_copy_reads_and_writes_take_over(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real = os.copy_file_range

    def second_piece_unsupported(source: int, destination: int, count: int) -> int:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real(source, destination, count)

    monkeypatch.setattr(os, "copy_file_range", second_piece_unsupported)
    data = os.urandom(5 * PIECE + 3)
    digest, length, copied = _copy(tmp_path, data, len(data))
    assert copied == data
    assert (digest, length) == (hashlib.sha256(data).hexdigest(), len(data))


def test_other_errors_of_the_kernel_copy_are_raised(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(source: int, destination: int, count: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "copy_file_range", full)
    with pytest.raises(OSError, match="No space"):
        _copy(tmp_path, b"data", 4)


def test_what_is_hashed_is_read_back_from_the_copy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel that copied wrong bytes is caught: the hash is of the destination's."""
    real = os.copy_file_range

    def corrupting(source: int, destination: int, count: int) -> int:
        done = real(source, destination, count)
        if done:
            os.pwrite(destination, b"X", 0)
        return done

    monkeypatch.setattr(os, "copy_file_range", corrupting)
    data = b"a" * PIECE
    digest, _, copied = _copy(tmp_path, data, len(data))
    assert digest == hashlib.sha256(copied).hexdigest() != hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(("size", "handed"), [(2 * PIECE - 1, 0), (2 * PIECE, 2),
                                              (5 * PIECE + 1, 6)])
def test_a_large_copy_is_handed_to_the_disk_piece_by_piece(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, handed: int) -> None:
    ranges: list[tuple[int, int]] = []

    def start_writing(fd: int, offset: int, count: int, flags: int) -> int:
        ranges.append((offset, count))
        return 0

    monkeypatch.setattr(file_copy, "_START_WRITING", start_writing)
    data = os.urandom(size)
    _copy(tmp_path, data, size)
    assert len(ranges) == handed
    if ranges:
        assert sum(count for _, count in ranges) == size
        assert [offset for offset, _ in ranges] == [i * PIECE for i in range(handed)]

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.errors import ChecksumMismatch, ObjectNotFound, Unreachable
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

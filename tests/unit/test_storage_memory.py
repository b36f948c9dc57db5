"""The memory backend's own paths (the contract runs in test_storage_local.py): listings by
bisection at the edges of a prefix, and the copy between two memory stores that skips the
stream wrappers, against the protocol's default copy."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta

import pytest

from engine.errors import BtarError, ChecksumMismatch, ObjectNotFound
from engine.model import Digest, ObjectInfo
from engine.storage import memory
from engine.storage.base import CopyReport, Storage
from engine.storage.memory import MemoryStorage

T0 = datetime(2026, 11, 2, tzinfo=UTC)


def _scan(keys: list[str], prefix: str, start_after: str | None,
          limit: int) -> tuple[list[str], str | None]:
    """A listing by a plain scan of the sorted keys: what list_page must return."""
    matching = [k for k in sorted(keys) if k.startswith(prefix)
                and (start_after is None or k > start_after)]
    page = matching[:max(limit, 0)]
    more = len(matching) > len(page)
    return page, page[-1] if more and page else None


def test_pages_agree_with_a_scan_at_every_edge() -> None:
    rng = random.Random(7)
    pieces = ["a", "b", "a/", "ab", "-", "0", "z", "é", "\U0010ffff", "x\U0010ffff"]
    storage = MemoryStorage("edges", clock=lambda: T0)
    keys = sorted({"".join(rng.choice(pieces) for _ in range(rng.randint(1, 4)))
                   for _ in range(400)} - {""})
    keys = [k for k in keys if not k.startswith("/") and "//" not in k and not k.endswith("/")]
    for key in keys:
        storage.write(key, key.encode())
    for _ in range(2000):
        prefix = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 2)))
        if prefix.startswith("/") or "//" in prefix:
            continue
        start_after = rng.choice([None, rng.choice(keys), prefix, prefix + "a", "zz"])
        limit = rng.choice([0, 1, 2, 5, 1000])
        page = storage.list_page(prefix, start_after, limit)
        expected, cursor = _scan(keys, prefix, start_after, limit)
        assert [o.key for o in page.objects] == expected, (prefix, start_after, limit)
        assert page.next_start_after == cursor


def test_pages_agree_with_a_scan_as_blocks_split_and_empty(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys in blocks of a few (split, emptied, their last key gone) list as one sorted
    list would, after every change."""
    monkeypatch.setattr(memory, "_BLOCK", 2)
    rng = random.Random(11)
    storage = MemoryStorage("blocks", clock=lambda: T0)
    names = [f"{a}/{b}" for a in ("s1", "s2", "s3") for b in "abcdefghij"]
    keys: set[str] = set()
    for step in range(1500):
        key = rng.choice(names)
        if rng.random() < 0.35:
            storage.delete(key)
            keys.discard(key)
        elif rng.random() < 0.1 and key in keys:
            storage.corrupt(key)
        else:
            storage.write(key, f"{step}".encode())
            keys.add(key)
        prefix = rng.choice(["", "s", "s1/", "s2/", "s3/", "s2/c", "t"])
        start_after = rng.choice([None, rng.choice(names), prefix, "s2"])
        limit = rng.choice([0, 1, 2, 3, 7, 1000])
        page = storage.list_page(prefix, start_after, limit)
        expected, cursor = _scan(sorted(keys), prefix, start_after, limit)
        assert [o.key for o in page.objects] == expected, (step, prefix, start_after, limit)
        assert page.next_start_after == cursor
        assert [o.size for o in page.objects] == [len(storage.read_bytes(k)) for k in expected]


def test_a_listing_follows_overwrites_deletions_and_corruption() -> None:
    now = [T0]
    storage = MemoryStorage("changes", clock=lambda: now[0])
    storage.write("svc/log/1", b"one")
    storage.write("svc/log/2", b"two")
    now[0] += timedelta(seconds=5)
    storage.write("svc/log/1", b"longer")
    storage.delete("svc/log/2")
    storage.write("svc/empty", b"")
    storage.corrupt("svc/empty")  # an empty object becomes one byte
    assert storage.list_page("svc/").objects == (
        ObjectInfo("svc/empty", 1, T0 + timedelta(seconds=5)),
        ObjectInfo("svc/log/1", 6, T0 + timedelta(seconds=5)))
    assert storage.sha256_of("svc/empty") == hashlib.sha256(b"\x00").hexdigest()
    assert storage.stored_sha256("svc/log/2") is None


class _Plain(MemoryStorage):
    """A memory store that copies the protocol's default way (streams)."""

    def copy_from(self, source: Storage, source_key: str, key: str, *,
                  sha256: str | None = None, size: int | None = None,
                  digest: Digest | None = None) -> CopyReport:
        return Storage.copy_from(self, source, source_key, key, sha256=sha256, size=size,
                                 digest=digest)


@pytest.mark.parametrize("expected", ["right", "wrong", None])
@pytest.mark.parametrize("present", [True, False])
def test_a_copy_between_memory_stores_is_the_default_copy(expected: str | None,
                                                          present: bool) -> None:
    outcomes: list[tuple[object, ...]] = []
    for kind in (MemoryStorage, _Plain):
        source = MemoryStorage("src", clock=lambda: T0)
        destination = kind("dst", clock=lambda: T0 + timedelta(seconds=1))
        if present:
            source.write("svc/a", b"payload")
        sha = {"right": hashlib.sha256(b"payload").hexdigest(), "wrong": "0" * 64,
               None: None}[expected]
        try:
            report = destination.copy_from(source, "svc/a", "svc/a", sha256=sha, size=7)
            outcomes.append((report, destination.stat("svc/a"), destination.read_bytes("svc/a"),
                             destination.list_page()))
        except BtarError as error:
            outcomes.append((type(error), str(error), destination.list_page()))
    assert outcomes[0] == outcomes[1]
    if not present:
        assert outcomes[0][0] is ObjectNotFound
    elif expected == "wrong":
        assert outcomes[0][0] is ChecksumMismatch

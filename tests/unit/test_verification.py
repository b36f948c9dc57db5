"""Objects whose layout records no SHA-256: the Digest value, the verdict on a copy, what the
catalog keeps per destination object, downloads verified against it, and a whole
replication + fork of such a layout over memory storages."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Container, Iterable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.catalog import Catalog, CopyRecord
from engine.effects import CopyResult, CopyTask, ErrorKind, FetchTask, Side
from engine.formats import LAYOUTS
from engine.formats.base import BackupLayout, Discovery
from engine.model import (
    BackupItem,
    Digest,
    ItemKind,
    ItemStatus,
    ObjectInfo,
    ObjectMeta,
    ObjectRef,
    listing_digest,
)
from engine.replication import established, verify
from engine.storage.faults import FaultyStorage
from engine.storage.memory import MemoryStorage
from engine.transfer import execute_copy, execute_fetch
from tests.worlds import World

T = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SECONDARY = "aws-eu-central-1"
DATA = b"payload bytes " * 100
SHA1 = Digest("sha1", hashlib.sha1(DATA).hexdigest())
SHA256 = hashlib.sha256(DATA).hexdigest()


# --- the Digest value -------------------------------------------------------------------------

def test_digest_text_round_trips_and_refuses_nonsense() -> None:
    assert Digest.parse(str(SHA1)) == SHA1
    assert str(SHA1) == f"sha1:{SHA1.value}"
    bad = [("sha1", "abc"), ("md4", "0" * 32), ("md5", "G" * 32), ("sha1", SHA1.value.upper())]
    for algorithm, value in bad:
        with pytest.raises(ValueError, match="digest"):
            Digest(algorithm, value)


def test_listing_digest_prefers_md5_then_crc32c() -> None:
    md5, crc = Digest("md5", "0" * 32), Digest("crc32c", "0a0b0c0d")
    info = ObjectInfo("k", 1, T, digests=(crc, md5))
    assert listing_digest(info) == md5
    assert listing_digest(dataclasses.replace(info, digests=(crc,))) == crc
    assert listing_digest(dataclasses.replace(info, digests=())) is None


def test_object_ref_expects_sha256_first() -> None:
    assert ObjectRef("k", 1, SHA256, SHA1).expected == Digest("sha256", SHA256)
    assert ObjectRef("k", 1, None, SHA1).expected == SHA1
    assert ObjectRef("k", 1, None).expected is None


# --- the verdict on a copy ------------------------------------------------------------------

def task(digest: Digest | None = None, sha256: str | None = None) -> CopyTask:
    return CopyTask("a", "b", "svc/k", len(DATA), sha256, digest)


def test_verify_against_a_recorded_digest() -> None:
    good = CopyResult(task(SHA1), ok=True, digests=(SHA1,), verified_by="s3-checksum-sha1")
    assert verify(good, None) == (True, "s3-checksum-sha1")
    other = Digest("sha1", "0" * 40)
    assert verify(dataclasses.replace(good, digests=(other,)), None)[0] is False
    # a provider checksum equal to the source's does not stand in for the recorded digest
    claimed = CopyResult(task(SHA1), ok=True, identical_to_source=True, verified_by="x")
    assert verify(claimed, None) == (False, f"nothing proved the copy holds the recorded "
                                            f"{SHA1}")


def test_verify_without_any_digest_needs_a_comparison_with_the_source() -> None:
    compared = CopyResult(task(), ok=True, identical_to_source=True,
                          verified_by="crc32c+md5-equals-source")
    assert verify(compared, None) == (True, "crc32c+md5-equals-source")
    assert verify(dataclasses.replace(compared, identical_to_source=False), None)[0] is False
    assert verify(dataclasses.replace(compared, ok=False), None)[0] is False


def test_the_sha256_path_is_unchanged() -> None:
    result = CopyResult(task(sha256=SHA256), ok=True, sha256=SHA256, verified_by="sha256-streamed")
    assert verify(result, SHA256) == (True, "sha256-streamed")
    assert established(result) == (None, "")  # nothing new for the catalog


# --- copies over memory storages --------------------------------------------------------------

def stores() -> tuple[MemoryStorage, MemoryStorage]:
    source, destination = MemoryStorage("p"), MemoryStorage("s")
    source.write("svc/k", DATA, meta=ObjectMeta.of({"pg-version": "15"}, "application/x-tar"))
    return source, destination


def test_memory_copy_without_digest_reads_both_sides_and_keeps_metadata() -> None:
    source, destination = stores()
    result = execute_copy(source, destination, task())
    assert result.ok
    assert result.identical_to_source
    assert result.verified_by == "sha256-streamed+sha256-read-back+sha256-of-source-read"
    assert established(result) == (SHA256, "")
    assert destination.stat("svc/k").meta == source.stat("svc/k").meta


def test_memory_copy_with_a_wrong_recorded_digest_never_becomes_visible() -> None:
    source, destination = stores()
    result = execute_copy(source, destination, task(Digest("sha1", "0" * 40)))
    assert not result.ok
    assert result.error_kind == ErrorKind.MISMATCH
    assert "sha1" in result.error
    assert list(destination.iter_objects()) == []


def test_established_digests_for_the_catalog() -> None:
    source, destination = stores()
    result = execute_copy(source, destination, task(SHA1))
    assert established(result) == (SHA256, str(SHA1))


# --- downloads --------------------------------------------------------------------------------

def test_fetch_with_a_recorded_sha1(tmp_path: Path) -> None:
    source, _ = stores()
    ok = execute_fetch(source, FetchTask("p", "svc/k", str(tmp_path / "a"), len(DATA), None,
                                         SHA1))
    assert ok.ok
    again = execute_fetch(source, FetchTask("p", "svc/k", str(tmp_path / "a"), len(DATA), None,
                                            SHA1))
    assert again.skipped  # a whole file already there is kept, checked by the same digest
    wrong = execute_fetch(source, FetchTask("p", "svc/k", str(tmp_path / "b"), len(DATA), None,
                                            Digest("sha1", "1" * 40)))
    assert not wrong.ok
    assert not (tmp_path / "b").exists()


def test_fetch_of_a_copy_nothing_vouches_for_is_refused(tmp_path: Path) -> None:
    source, _ = stores()
    result = execute_fetch(source, FetchTask("p", "svc/k", str(tmp_path / "a"), len(DATA), None))
    assert not result.ok
    assert "records no digest" in result.error
    assert not (tmp_path / "a").exists()


# --- the catalog ------------------------------------------------------------------------------

def item(ref: ObjectRef) -> BackupItem:
    return BackupItem(ItemKind.LOG, "log/1/0000000001", T, T, "1", 1, (), ref, T)


def test_catalog_keeps_the_recorded_digest_and_what_each_copy_established() -> None:
    catalog = Catalog.in_memory()
    recorded = ObjectRef("log/1/seg", len(DATA), None, SHA1)
    catalog.add_items("svc", "p", [(item(recorded), T)], ItemStatus.AVAILABLE, T)
    catalog.add_missing("svc", "p", "s", T)
    [row] = catalog.item_refs("svc", "s", "log/1/0000000001")
    assert (row.sha256, row.digest) == (None, SHA1)  # the destination expects the record
    catalog.record_copies("svc", "s", [CopyRecord("log/1/seg", True, "server-side",
                                                  "s3-checksum-sha1", "", SHA256, str(SHA1))], T)
    [copied] = catalog.item_refs("svc", "s", "log/1/0000000001")
    assert (copied.sha256, copied.digest) == (SHA256, SHA1)
    [primary] = catalog.item_refs("svc", "p", "log/1/0000000001")
    assert (primary.sha256, primary.digest) == (None, SHA1)  # the primary's record stands
    # a failed attempt changes nothing of what is known
    catalog.record_copies("svc", "s", [CopyRecord("log/1/seg", False, error="x")], T)
    assert catalog.item_refs("svc", "s", "log/1/0000000001")[0].sha256 == SHA256
    model = catalog.item_as_model(catalog.items("svc", "s")[0])
    assert model.marker == ObjectRef("log/1/seg", len(DATA), SHA256, SHA1)
    attempts = catalog.copy_attempts("svc", "s")
    assert attempts[0]["verified_by"] == "s3-checksum-sha1"


# --- replication and a fork of a layout that records no SHA-256 --------------------------------

@dataclasses.dataclass(frozen=True)
class WithoutSha256:
    """btar's native layout as if it recorded no SHA-256 (as Barman Cloud records none)."""

    inner: BackupLayout

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def discover(self, objects: Iterable[ObjectInfo],
                 known: Container[str] = frozenset()) -> Discovery:
        found = self.inner.discover(objects, known)
        return Discovery(found.markers, tuple(strip(s) for s in found.segments),
                         known_segments=found.known_segments)

    def parse_marker(self, marker: ObjectInfo, data: bytes) -> BackupItem:
        return strip(self.inner.parse_marker(marker, data))


def strip(found: BackupItem) -> BackupItem:
    return dataclasses.replace(
        found, payload=tuple(dataclasses.replace(r, sha256=None) for r in found.payload),
        marker=dataclasses.replace(found.marker, sha256=None))


def test_replication_and_fork_of_a_layout_without_sha256(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(LAYOUTS, "native", WithoutSha256(LAYOUTS["native"]))
    world = World()
    world.produce("orders", 3, base_first=True)
    world.app.enable("orders", SECONDARY)
    # the first copies land damaged: caught by reading both sides, never published
    world.stores[SECONDARY].corrupt = lambda key: key.endswith(".log")
    [outcome] = world.app.sync(["orders"])
    assert outcome.failed
    assert not any(o.key.endswith(".log") for o in world.stores[SECONDARY].inner.iter_objects())
    world.stores[SECONDARY].corrupt = lambda key: False
    world.app.sync(["orders"])
    published = world.catalog.items("orders", SECONDARY, statuses=[ItemStatus.AVAILABLE])
    assert len(published) == 4
    for row in published:
        for ref in world.catalog.item_refs("orders", SECONDARY, row.item_id):
            assert ref.sha256 is not None  # established by the copy, for downloads
        # the source's SHA-256, proven by the comparison, is kept for the primary's object
        # too: a later copy of it (another region) takes the recorded-SHA-256 path
        primary = world.stores["aws-eu-west-1"].inner
        for ref in world.catalog.item_refs("orders", "aws-eu-west-1", row.item_id):
            assert ref.sha256 == hashlib.sha256(primary.read_bytes(f"orders/{ref.key}"))\
                .hexdigest()
    world.assert_published_items_whole("orders", SECONDARY)
    outcome = world.app.fork("orders", SECONDARY, None, tmp_path / "fork")
    assert outcome.downloaded > 0


def test_a_copy_whose_source_stops_answering_during_verification_is_removed() -> None:
    source, destination = stores()
    faulty = FaultyStorage(source)
    calls = {"n": 0}

    def second_read_fails(key: str) -> bool:
        calls["n"] += 1
        return calls["n"] > 1  # the copy's own read passes, the verifying read does not

    faulty.fail_reads = second_read_fails
    result = execute_copy(faulty, destination, task())
    assert not result.ok
    assert result.failed_side == Side.SOURCE
    assert result.error_kind == ErrorKind.UNREACHABLE
    assert list(destination.iter_objects()) == []  # nothing unverified stays


def test_error_kinds_and_sides_keep_their_words() -> None:
    """Journals, metrics and events see the same words the strings were."""
    assert [k.value for k in ErrorKind] == ["unreachable", "missing", "throttled", "mismatch",
                                            "other"]
    assert [s.value for s in Side] == ["source", "destination"]
    assert json.dumps({"kind": ErrorKind.MISSING, "side": Side.SOURCE}) == \
        '{"kind": "missing", "side": "source"}'
    assert f"{ErrorKind.THROTTLED}" == str(ErrorKind.THROTTLED) == "throttled"

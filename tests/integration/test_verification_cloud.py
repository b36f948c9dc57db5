"""Verification of copies whose layout records no SHA-256, on every backend against its local
server (moto, fake-gcs-server, Azurite) and a local folder: what verifies a clean copy, and
that a corrupted one (damaged on its way, or a source rewritten after the listing) is caught,
removed and never reported good."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.effects import CopyResult, CopyTask, ErrorKind, FetchTask
from engine.model import Digest, listing_digest
from engine.replication import verify
from engine.storage.base import Storage
from engine.storage.faults import FaultyStorage
from engine.storage.local import LocalStorage
from engine.transfer import execute_copy, execute_fetch
from tests.integration.gcs_server import FakeGcs
from tests.integration.s3_server import MotoS3
from tests.integration.test_storage_azure import MakeStorage, make_storage
from tests.integration.test_storage_gcs import open_gcs
from tests.integration.test_storage_s3 import open_s3, spy_of

pytestmark = pytest.mark.integration
__all__ = ["make_storage"]  # the Azurite fixture, used by name

BACKENDS = ("local", "s3", "gcs", "azure")
KEY = "svc/base/20261206T120000/data.tar"
DATA = b"barman data.tar " * 4096
OTHER = b"BARMAN DATA.TAR " * 4096  # the same size, other bytes

#: how a clean copy of an object with no recorded digest is verified, per backend
NO_DIGEST_VERIFIED_BY = {
    "local": "sha256-streamed+sha256-read-back+sha256-of-source-read",
    "s3": "s3-checksum-sha256+etag-md5-equals-source",
    "gcs": "crc32c+md5-equals-source",
    "azure": "md5-read-back-equals-source-content-md5",
}
#: ... and of an object whose layout records a SHA-1 (pgBackRest's rck)
SHA1_VERIFIED_BY = {
    "local": "sha1-streamed",
    "s3": "s3-checksum-sha1",
    "gcs": "crc32c+md5-equals-source+sha1-read-back",
    "azure": "md5-read-back-equals-source-content-md5",
}


def sha1(data: bytes) -> Digest:
    return Digest("sha1", hashlib.sha1(data).hexdigest())


Pair = tuple[Storage, Storage]


@pytest.fixture(params=BACKENDS)
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Pair]]:
    """(backend, (source, destination)): two locations of one backend, as two regions."""
    kind: str = request.param
    if kind == "local":
        yield kind, (LocalStorage(tmp_path / "primary"), LocalStorage(tmp_path / "secondary"))
    elif kind == "s3":
        moto: MotoS3 = request.getfixturevalue("moto_s3")
        yield kind, (open_s3(moto, "aws-eu-west-1"), open_s3(moto, "aws-eu-central-1"))
    elif kind == "gcs":
        fake: FakeGcs = request.getfixturevalue("fake_gcs")
        prefix = f"t-{uuid.uuid4().hex[:12]}"
        source = open_gcs(fake, "google-europe-west1", prefix)
        target = open_gcs(fake, "google-europe-west4", prefix)
        yield kind, (source, target)
        source.close()
        target.close()
    else:
        make: MakeStorage = request.getfixturevalue("make_storage")
        yield kind, (make("acct1"), make("acct2"))


def task_for(source: Storage, destination: Storage, digest: Digest | None,
             size: int = len(DATA)) -> CopyTask:
    return CopyTask(source.name, destination.name, KEY, size, None, digest)


def copy(source: Storage, destination: Storage, task: CopyTask) -> CopyResult:
    result = execute_copy(source, destination, task)
    ok, _ = verify(result, None)
    assert ok == result.ok, result  # verify never publishes what execute_copy refused
    return result


def assert_refused(result: CopyResult, destination: Storage) -> None:
    assert not result.ok
    assert result.error_kind == ErrorKind.MISMATCH, result.error
    # removed, or (a streamed copy checked before it completes) never made visible
    assert KEY not in {o.key for o in destination.iter_objects()}


def test_clean_copy_without_any_digest(pair: tuple[str, Pair]) -> None:
    kind, (source, destination) = pair
    source.write(KEY, DATA)
    result = copy(source, destination, task_for(source, destination, None))
    assert result.ok
    assert result.identical_to_source
    assert result.verified_by == NO_DIGEST_VERIFIED_BY[kind]
    # what a later download verifies against: the SHA-256 where the copy established it,
    # else the provider's own checksums of the copy (GCS: MD5 and CRC32C)
    if kind == "gcs":
        assert result.sha256 is None
        assert {d.algorithm for d in result.digests} == {"md5", "crc32c"}
    else:
        assert result.sha256 == hashlib.sha256(DATA).hexdigest()
    assert destination.read_bytes(KEY) == DATA


def test_clean_copy_with_a_recorded_sha1(pair: tuple[str, Pair]) -> None:
    kind, (source, destination) = pair
    source.write(KEY, DATA)
    result = copy(source, destination, task_for(source, destination, sha1(DATA)))
    assert result.ok
    assert result.verified_by == SHA1_VERIFIED_BY[kind]
    assert sha1(DATA) in result.digests
    assert verify(result, None) == (True, SHA1_VERIFIED_BY[kind])


@pytest.mark.parametrize("digest", [None, sha1(DATA)], ids=["no-digest", "sha1"])
def test_copy_damaged_on_its_way_is_caught(pair: tuple[str, Pair],
                                           digest: Digest | None) -> None:
    """The destination lands with one byte flipped (a bad link, a bad disk) and the copy
    says it streamed fine: the read of each side (or of the copy, against the recorded
    digest) catches it, and the damaged copy is removed."""
    _, (source, destination) = pair
    source.write(KEY, DATA)
    damaged = FaultyStorage(destination)
    damaged.corrupt = lambda key: True
    result = copy(source, damaged, task_for(source, damaged, digest))
    assert_refused(result, destination)


@pytest.mark.parametrize("recorded", ["sha1", "listing"])
def test_source_rewritten_after_the_listing_is_caught(pair: tuple[str, Pair],
                                                      recorded: str) -> None:
    """The item was described from the listing; then the primary's object was rewritten with
    other bytes of the same size. The copy holds the new bytes: the recorded SHA-1, or the
    provider's MD5 from the listing (GCS, Azure), no longer matches."""
    kind, (source, destination) = pair
    source.write(KEY, DATA)
    if recorded == "sha1":
        digest: Digest | None = sha1(DATA)
    else:
        [listed] = source.list_page("svc/").objects
        digest = listing_digest(listed)
        if kind in ("local", "s3"):
            # no checksum in these listings (an S3 ETag is an MD5 only for some objects, which
            # a listing does not tell apart): there only a layout's own digest pins the bytes
            assert digest is None
            return
        assert digest == Digest("md5", hashlib.md5(DATA, usedforsecurity=False).hexdigest())
    task = task_for(source, destination, digest)
    source.write(KEY, OTHER)
    assert_refused(copy(source, destination, task), destination)
    assert source.read_bytes(KEY) == OTHER  # the primary is never touched


def test_source_of_another_size_than_listed_is_caught(pair: tuple[str, Pair]) -> None:
    _, (source, destination) = pair
    source.write(KEY, DATA + b"more")
    result = copy(source, destination, task_for(source, destination, None))
    assert_refused(result, destination)
    assert "bytes" in result.reason


def test_fetch_verifies_what_the_copy_established(pair: tuple[str, Pair], tmp_path: Path,
                                                  ) -> None:
    """A later download (a fork, a restore_command) checks the digest recorded for the copy,
    and a copy damaged since is refused."""
    _, (source, destination) = pair
    source.write(KEY, DATA)
    result = copy(source, destination, task_for(source, destination, None))
    best = result.digests[0] if result.digests else None
    fetch = FetchTask(destination.name, KEY, str(tmp_path / "out" / "data.tar"), len(DATA),
                      result.sha256, best)
    assert execute_fetch(destination, fetch).ok
    assert (tmp_path / "out" / "data.tar").read_bytes() == DATA
    destination.write(KEY, OTHER)
    again = FetchTask(destination.name, KEY, str(tmp_path / "out" / "again.tar"), len(DATA),
                      result.sha256, best)
    failed = execute_fetch(destination, again)
    assert not failed.ok
    assert "does not match the recorded" in failed.error
    assert not (tmp_path / "out" / "again.tar").exists()


#: full reads of (source, destination) a clean copy costs, per backend and recorded digest
READS = {
    ("local", "none"): (2, 1), ("s3", "none"): (0, 0), ("gcs", "none"): (0, 0),
    ("azure", "none"): (0, 1),
    ("local", "sha1"): (1, 0), ("s3", "sha1"): (0, 0), ("gcs", "sha1"): (0, 1),
    ("azure", "sha1"): (0, 1),
}


def counting(storage: Storage) -> dict[str, int]:
    """Counts the reads of a storage's objects (open_read and open_described)."""
    counts = {"reads": 0}
    # the default open_described reads through open_read: count that once
    own = type(storage).open_described is not Storage.open_described
    for name in ("open_read", "open_described") if own else ("open_read",):
        original: Callable[[str], object] = getattr(storage, name)

        def counted(key: str, original: Callable[[str], object] = original) -> object:
            counts["reads"] += 1
            return original(key)

        setattr(storage, name, counted)
    return counts


@pytest.mark.parametrize("recorded", ["none", "sha1"])
def test_reads_a_clean_copy_costs(pair: tuple[str, Pair], recorded: str) -> None:
    kind, (source, destination) = pair
    source.write(KEY, DATA)
    source_reads, destination_reads = counting(source), counting(destination)
    digest = sha1(DATA) if recorded == "sha1" else None
    assert copy(source, destination, task_for(source, destination, digest)).ok
    assert (source_reads["reads"], destination_reads["reads"]) == READS[(kind, recorded)]


def test_clean_copy_pinned_by_the_listing(pair: tuple[str, Pair]) -> None:
    """A layout that records nothing pins each object by the checksum its listing carries:
    GCS compares the rewrite's MD5 with it without any read (not even a lookup of the
    source); Azure reads the copy back."""
    kind, (source, destination) = pair
    source.write(KEY, DATA)
    [listed] = source.list_page("svc/").objects
    digest = listing_digest(listed)
    if kind in ("local", "s3"):
        assert digest is None
        return
    source_reads, destination_reads = counting(source), counting(destination)
    result = copy(source, destination, task_for(source, destination, digest))
    assert result.ok
    assert digest in result.digests
    assert (source_reads["reads"], destination_reads["reads"]) == \
        ((0, 0) if kind == "gcs" else (0, 1))


def test_s3_multipart_source_without_checksum_is_read_once_in_its_region(
        moto_s3: MotoS3) -> None:
    """A multipart source's ETag is no MD5 and moto stores no checksum: S3's SHA-256 of the
    copy is compared with one of the source read in the primary region, once; the result
    carries it so the catalog never needs that read again."""
    source = open_s3(moto_s3, "aws-eu-west-1", multipart_threshold=5 * 1024**2,
                     part_size=5 * 1024**2)
    destination = open_s3(moto_s3, "aws-eu-central-1")
    data = hashlib.shake_256(b"barman").digest(6 * 1024**2)
    source.write(KEY, data)
    reads = counting(source), counting(destination)
    result = copy(source, destination, task_for(source, destination, None, len(data)))
    assert result.ok
    assert result.verified_by == "s3-checksum-sha256+sha256-of-source-read"
    assert (reads[0]["reads"], reads[1]["reads"]) == (1, 0)
    assert result.source_sha256 == result.sha256 == hashlib.sha256(data).hexdigest()


def _with_stored_sha256(value: str) -> Callable[..., Any]:
    """A HeadObject that reports a full-object SHA-256 stored with the object, as S3 does for
    objects uploaded with one (moto stores none)."""

    def head_object(real: Callable[..., Any], **kwargs: Any) -> Any:
        answer = real(**kwargs)
        if kwargs.get("ChecksumMode") == "ENABLED":
            answer["ChecksumSHA256"] = value
            answer["ChecksumType"] = "FULL_OBJECT"
        return answer

    return head_object


@pytest.mark.parametrize("stored_right", [True, False])
def test_s3_compares_with_the_source_s_own_stored_checksum(moto_s3: MotoS3,
                                                           stored_right: bool) -> None:
    stored = hashlib.sha256(DATA if stored_right else OTHER).digest()
    source = open_s3(moto_s3, "aws-eu-west-1",
                     overrides={"head_object": _with_stored_sha256(
                         base64.b64encode(stored).decode())})
    destination = open_s3(moto_s3, "aws-eu-central-1", spy=True)
    source.write(KEY, DATA)
    result = copy(source, destination, task_for(source, destination, None))
    copies = spy_of(destination).named("copy_object")
    assert copies[0]["ChecksumAlgorithm"] == "SHA256"
    assert copies[0]["CopySourceIfMatch"]  # pinned to the version whose checksum was read
    if stored_right:
        assert result.ok
        assert result.verified_by == "s3-sha256-equals-source"
    else:
        assert_refused(result, destination)
        assert "the source's stored" in result.error


def test_s3_copy_whose_md5_differs_from_the_source_etag_is_removed(moto_s3: MotoS3) -> None:
    def corrupting_copy(real: Callable[..., Any], **kwargs: Any) -> Any:
        response = real(**kwargs)
        put = spy_of(destination).real.put_object(Bucket=kwargs["Bucket"], Key=kwargs["Key"],
                                                  Body=OTHER)
        response["CopyObjectResult"]["ETag"] = put["ETag"]
        return response

    source = open_s3(moto_s3, "aws-eu-west-1")
    destination = open_s3(moto_s3, "aws-eu-central-1",
                          overrides={"copy_object": corrupting_copy})
    source.write(KEY, DATA)
    result = copy(source, destination, task_for(source, destination, None))
    assert_refused(result, destination)
    assert "ETag" in result.error

"""S3 backend against moto's server (two buckets in two regions), plus retry and error-mapping
tests with botocore's Stubber or small fake clients (no server, no real sleeping)."""

from __future__ import annotations

import hashlib
import io
import logging
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.stub import Stubber

from engine.errors import (
    BadInput,
    ChecksumMismatch,
    ObjectNotFound,
    StorageError,
    Throttled,
    Unreachable,
)
from engine.storage.local import LocalStorage
from engine.storage.locations import S3Location, open_location
from engine.storage.s3 import S3Storage, redact
from engine.storage.s3_copy import VERIFIED_ETAG_MD5, VERIFIED_S3_SHA256
from tests.integration.s3_server import (
    FAKE_KEY_ID,
    FAKE_SECRET,
    FAKE_TOKEN,
    MotoS3,
    closed_port,
)
from tests.storage_contract import StorageContract, sha

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
PRIMARY, SECONDARY = "aws-eu-west-1", "aws-eu-central-1"
KMS_KEY = "arn:aws:kms:eu-central-1:111122223333:key/btar-test-key"


class Spy:
    """Wraps a boto3 client: records each call and lets a test replace an operation."""

    def __init__(self, real: Any, **overrides: Callable[..., Any]) -> None:
        self.real = real
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.overrides = overrides

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.real, name)
        if not callable(attr):
            return attr

        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            if name in self.overrides:
                return self.overrides[name](attr, **kwargs)
            return attr(**kwargs)

        return call

    def named(self, name: str) -> list[dict[str, Any]]:
        return [kwargs for called, kwargs in self.calls if called == name]


def location(moto: MotoS3, region_id: str, **settings: Any) -> S3Location:
    prefix = f"t-{uuid.uuid4().hex[:12]}/backups"
    return S3Location(url=f"s3://{moto.bucket(region_id)}/{prefix}", endpoint_url=moto.endpoint,
                      **settings)


def open_s3(moto: MotoS3, region_id: str, *, spy: bool = False,
            overrides: dict[str, Callable[..., Any]] | None = None,
            **settings: Any) -> S3Storage:
    loc = location(moto, region_id, **settings)
    store = S3Storage.from_location(loc, region_id, sleep=lambda _: None)
    if spy or overrides:
        store = S3Storage.from_location(loc, region_id, client=Spy(store.client,
                                                                   **(overrides or {})),
                                        sleep=lambda _: None)
    return store


def spy_of(store: S3Storage) -> Spy:
    assert isinstance(store.client, Spy)
    return store.client


class TestS3Contract(StorageContract):
    @pytest.fixture
    def storage(self, moto_s3: MotoS3) -> S3Storage:
        return open_s3(moto_s3, PRIMARY)

    @pytest.fixture
    def other_storage(self, moto_s3: MotoS3) -> S3Storage:
        return open_s3(moto_s3, SECONDARY)


# --- opening locations -------------------------------------------------------------------------

def test_from_location_derives_region_bucket_and_prefix(moto_s3: MotoS3) -> None:
    loc = S3Location(url="s3://btar-primary-eu-west-1/svc/base/", endpoint_url=moto_s3.endpoint)
    store = open_location(loc, PRIMARY)
    assert isinstance(store, S3Storage)
    assert (store.bucket, store.prefix, store.region) == ("btar-primary-eu-west-1", "svc/base/",
                                                           "eu-west-1")
    assert store.client.meta.region_name == "eu-west-1"
    assert store.name == "s3://btar-primary-eu-west-1/svc/base"
    pinned = S3Storage.from_location(replace(loc, region="us-east-2"), PRIMARY)
    assert pinned.client.meta.region_name == "us-east-2"
    with pytest.raises(BadInput):
        S3Storage.from_location(loc, "google-europe-west1")


def test_missing_profile_is_bad_input(moto_s3: MotoS3) -> None:
    loc = location(moto_s3, PRIMARY, profile="btar-no-such-profile")
    with pytest.raises(BadInput, match="btar-no-such-profile"):
        S3Storage.from_location(loc, PRIMARY)


# --- server-side copies ------------------------------------------------------------------------

def test_copy_between_regions_is_server_side_and_md5_verified(moto_s3: MotoS3) -> None:
    source = open_s3(moto_s3, PRIMARY)
    target = open_s3(moto_s3, SECONDARY, spy=True)
    data = b"wal segment " * 4096
    source.write("wal/000000010000000000000001", data)
    report = target.copy_from(source, "wal/000000010000000000000001", "wal/seg1",
                              sha256=sha(data))
    assert report.method == "server-side"
    assert report.sha256 is None  # the bytes never passed through btar
    assert report.identical_to_source is True
    assert report.verified_by == VERIFIED_ETAG_MD5
    assert report.info.size == len(data)
    copies = spy_of(target).named("copy_object")
    assert len(copies) == 1
    assert copies[0]["CopySource"] == {"Bucket": source.bucket,
                                       "Key": source.prefix + "wal/000000010000000000000001"}
    assert copies[0]["CopySourceIfMatch"]  # pinned to the version whose ETag was compared
    assert spy_of(target).named("get_object") == []
    assert target.sha256_of("wal/seg1") == sha(data)


def test_copy_with_a_known_size_is_one_request_verified_by_s3s_sha256(moto_s3: MotoS3) -> None:
    source = open_s3(moto_s3, PRIMARY)
    target = open_s3(moto_s3, SECONDARY, spy=True)
    data = b"wal segment " * 4096
    source.write("wal/1", data)
    report = target.copy_from(source, "wal/1", "wal/1", size=len(data), sha256=sha(data))
    assert (report.method, report.sha256, report.verified_by) == \
        ("server-side", sha(data), VERIFIED_S3_SHA256)
    assert [name for name, _ in spy_of(target).calls] == ["copy_object"]  # no HEAD, no GET
    assert spy_of(target).named("copy_object")[0]["ChecksumAlgorithm"] == "SHA256"


def test_a_service_without_copy_checksums_gets_the_older_copy(moto_s3: MotoS3) -> None:
    def refuse_checksums(real: Callable[..., Any], **kwargs: Any) -> Any:
        if "ChecksumAlgorithm" in kwargs:
            raise ClientError({"Error": {"Code": "NotImplemented", "Message": "no"}},
                              "CopyObject")
        return real(**kwargs)

    source = open_s3(moto_s3, PRIMARY)
    target = open_s3(moto_s3, SECONDARY, overrides={"copy_object": refuse_checksums})
    source.write("wal/1", b"one")
    source.write("wal/2", b"two")
    first = target.copy_from(source, "wal/1", "wal/1", size=3)
    second = target.copy_from(source, "wal/2", "wal/2", size=3)
    assert first.verified_by == second.verified_by == VERIFIED_ETAG_MD5
    checksummed = [c for c in spy_of(target).named("copy_object") if "ChecksumAlgorithm" in c]
    assert len(checksummed) == 1  # asked once, then remembered


def test_copy_whose_bytes_differ_is_not_reported_identical(moto_s3: MotoS3) -> None:
    """A destination holding other bytes has another MD5 ETag: refused, never identical."""

    def corrupting_copy(real: Callable[..., Any], **kwargs: Any) -> Any:
        response = real(**kwargs)
        client = spy_of(target).real
        put = client.put_object(Bucket=kwargs["Bucket"], Key=kwargs["Key"], Body=b"not it")
        response["CopyObjectResult"]["ETag"] = put["ETag"]
        return response

    source = open_s3(moto_s3, PRIMARY)
    target = open_s3(moto_s3, SECONDARY, overrides={"copy_object": corrupting_copy})
    source.write("k", b"the real bytes")
    with pytest.raises(StorageError, match="MD5"):
        target.copy_from(source, "k", "k", sha256=sha(b"the real bytes"))
    with pytest.raises(ObjectNotFound):  # the corrupt copy does not stay visible
        target.stat("k")


def test_multipart_copy_uses_ranged_part_copies_and_claims_nothing(moto_s3: MotoS3) -> None:
    source = open_s3(moto_s3, PRIMARY)
    target = open_s3(moto_s3, SECONDARY, spy=True, multipart_threshold=5 * MIB,
                     part_size=5 * MIB)
    data = hashlib.shake_256(b"base backup").digest(11 * MIB)
    source.write("base/1/pg_data.tar", data)
    report = target.copy_from(source, "base/1/pg_data.tar", "base/1/pg_data.tar")
    spy = spy_of(target)
    assert spy.named("copy_object") == []
    ranges = [call["CopySourceRange"] for call in spy.named("upload_part_copy")]
    assert ranges == [f"bytes=0-{5 * MIB - 1}", f"bytes={5 * MIB}-{10 * MIB - 1}",
                      f"bytes={10 * MIB}-{11 * MIB - 1}"]
    assert all(call["CopySourceIfMatch"] for call in spy.named("upload_part_copy"))
    assert report.method == "server-side"
    assert (report.sha256, report.verified_by, report.identical_to_source) == (None, None, False)
    assert report.info.size == len(data)
    assert target.sha256_of("base/1/pg_data.tar") == sha(data)
    assert spy.real.head_object(Bucket=target.bucket,
                                Key=target.prefix + "base/1/pg_data.tar")["ETag"].endswith('-3"')


def test_sse_kms_is_requested_and_disables_the_etag_claim(moto_s3: MotoS3) -> None:
    source = open_s3(moto_s3, PRIMARY)
    target = open_s3(moto_s3, SECONDARY, spy=True, sse_kms_key_id=KMS_KEY,
                     multipart_threshold=5 * MIB, part_size=5 * MIB)
    source.write("small", b"tiny")
    source.write("large", b"L" * (6 * MIB))
    report = target.copy_from(source, "small", "small", sha256=sha(b"tiny"))
    # moto still answers with an MD5 ETag; real S3 would not, so nothing is claimed
    assert (report.identical_to_source, report.verified_by) == (False, None)
    target.copy_from(source, "large", "large")
    target.write("written", b"w" * (6 * MIB))
    target.write("written-small", b"w")
    for key in ("small", "large", "written", "written-small"):
        head = spy_of(target).real.head_object(Bucket=target.bucket, Key=target.prefix + key)
        assert head["ServerSideEncryption"] == "aws:kms", key
        assert head["SSEKMSKeyId"] == KMS_KEY, key
    spy = spy_of(target)
    assert spy.named("copy_object")[0]["SSEKMSKeyId"] == KMS_KEY
    assert all(c["SSEKMSKeyId"] == KMS_KEY for c in spy.named("create_multipart_upload"))


def test_stream_fallback_when_forced_or_from_another_backend(moto_s3: MotoS3,
                                                             tmp_path: Path) -> None:
    source = open_s3(moto_s3, PRIMARY)
    forced = open_s3(moto_s3, SECONDARY, spy=True, copy_mode="stream")
    data = b"binlog " * 1000
    source.write("binlog.000001", data)
    report = forced.copy_from(source, "binlog.000001", "binlog.000001", sha256=sha(data))
    assert (report.method, report.sha256, report.verified_by) == ("stream", sha(data),
                                                                  "sha256-streamed")
    assert spy_of(forced).named("copy_object") == []
    with pytest.raises(ChecksumMismatch):
        forced.copy_from(source, "binlog.000001", "other", sha256=sha(b"else"))

    local = LocalStorage(tmp_path / "primary")
    local.write("binlog.000002", data)
    target = open_s3(moto_s3, SECONDARY, spy=True)
    report = target.copy_from(local, "binlog.000002", "binlog.000002")
    assert (report.method, report.sha256) == ("stream", sha(data))
    assert spy_of(target).named("copy_object") == []
    assert target.read_bytes("binlog.000002") == data


# --- writes, reads, listing --------------------------------------------------------------------

def test_large_write_is_multipart_with_bounded_parts(moto_s3: MotoS3) -> None:
    sizes: list[int] = []

    def measure(real: Callable[..., Any], **kwargs: Any) -> Any:
        sizes.append(len(kwargs["Body"].getbuffer()))
        return real(**kwargs)

    store = open_s3(moto_s3, PRIMARY, overrides={"upload_part": measure}, part_size=5 * MIB,
                    multipart_threshold=5 * MIB)
    data = hashlib.shake_256(b"wal").digest(11 * MIB)
    info = store.write("big", io.BytesIO(data), sha256=sha(data))
    assert sizes == [5 * MIB, 5 * MIB, 1 * MIB]
    assert (info.size, info.sha256) == (len(data), sha(data))
    assert store.sha256_of("big") == sha(data)


def test_multipart_write_with_wrong_sha256_is_aborted(moto_s3: MotoS3) -> None:
    store = open_s3(moto_s3, PRIMARY, spy=True, part_size=5 * MIB, multipart_threshold=5 * MIB)
    data = b"x" * (6 * MIB)
    with pytest.raises(ChecksumMismatch):
        store.write("big", io.BytesIO(data), sha256=sha(b"something else"))
    spy = spy_of(store)
    assert spy.named("complete_multipart_upload") == []
    assert len(spy.named("abort_multipart_upload")) == 1
    with pytest.raises(ObjectNotFound):
        store.stat("big")
    pending = spy.real.list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix)
    assert pending.get("Uploads", []) == []


def test_listing_follows_continuation_tokens(moto_s3: MotoS3) -> None:
    loc = location(moto_s3, PRIMARY)
    real = S3Storage.from_location(loc, PRIMARY).client
    store = S3Storage(loc.url.split("/")[2], loc.url.split("/", 3)[3], region="eu-west-1",
                      client=Spy(real), endpoint_url=moto_s3.endpoint, max_keys=3)  # type: ignore[arg-type]
    keys = [f"wal/{i:04d}" for i in range(8)]
    for key in keys:
        store.write(key, b"x")
    page = store.list_page("wal/", None, 7)
    assert [o.key for o in page.objects] == keys[:7]
    assert page.next_start_after == "wal/0006"
    requests = spy_of(store).named("list_objects_v2")
    assert [r["MaxKeys"] for r in requests] == [3, 3, 1]
    assert "ContinuationToken" not in requests[0]
    assert all("ContinuationToken" in r for r in requests[1:])
    rest = store.list_page("wal/", page.next_start_after, 7)
    assert [o.key for o in rest.objects] == keys[7:]
    assert rest.next_start_after is None
    assert spy_of(store).named("list_objects_v2")[-1]["StartAfter"] == store.prefix + "wal/0006"
    assert [o.key for o in store.iter_objects(page_size=2)] == keys
    assert all(o.last_modified.tzinfo is not None for o in page.objects)


def test_read_resumes_after_a_broken_stream(moto_s3: MotoS3) -> None:
    class BreaksOnce:
        def __init__(self, body: Any) -> None:
            self.body = body
            self.reads = 0

        def read(self, amount: int | None = None) -> bytes:
            self.reads += 1
            if self.reads == 2:
                raise ResponseStreamingError(error="connection reset by peer")
            return bytes(self.body.read(amount))

        def close(self) -> None:
            self.body.close()

    def flaky_get(real: Callable[..., Any], **kwargs: Any) -> Any:
        response = real(**kwargs)
        if "Range" not in kwargs:
            response["Body"] = BreaksOnce(response["Body"])
        return response

    store = open_s3(moto_s3, PRIMARY, overrides={"get_object": flaky_get})
    data = hashlib.shake_256(b"resume").digest(3 * MIB)
    store.write("seg", data)
    with store.open_read("seg") as stream:
        chunks = [stream.read(MIB), stream.read(MIB), stream.read()]
    assert b"".join(chunks) == data
    gets = spy_of(store).named("get_object")
    assert len(gets) == 2
    assert gets[1]["Range"] == f"bytes={MIB}-"
    assert gets[1]["IfMatch"]


def test_missing_bucket_is_unreachable(moto_s3: MotoS3) -> None:
    loc = S3Location(url="s3://btar-no-such-bucket/x", endpoint_url=moto_s3.endpoint)
    with pytest.raises(Unreachable, match="does not exist"):
        S3Storage.from_location(loc, PRIMARY).list_page()


def test_closed_port_is_unreachable_quickly(moto_s3: MotoS3) -> None:
    delays: list[float] = []
    loc = S3Location(url="s3://bucket/p", endpoint_url=f"http://127.0.0.1:{closed_port()}",
                     max_attempts=2)
    store = S3Storage.from_location(loc, PRIMARY, connect_timeout=1.0, read_timeout=1.0,
                                    sleep=delays.append)
    started = time.monotonic()
    with pytest.raises(Unreachable):
        store.stat("k")
    with pytest.raises(Unreachable):
        store.list_page()
    assert time.monotonic() - started < 5
    assert len(delays) == 2  # one retry per call


# --- credential hygiene ------------------------------------------------------------------------

def test_credentials_never_appear_in_errors_reprs_or_logs(
        moto_s3: MotoS3, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    source = open_s3(moto_s3, PRIMARY)
    target = open_s3(moto_s3, SECONDARY)
    source.write("a", b"payload")
    target.copy_from(source, "a", "a")
    target.read_bytes("a")
    texts = [repr(source), str(source), source.name, repr(target), target.name]
    unreachable = S3Storage.from_location(
        S3Location(url="s3://b/p", endpoint_url=f"http://127.0.0.1:{closed_port()}",
                   max_attempts=1), PRIMARY, connect_timeout=1.0)
    failures: list[Callable[[], object]] = [
        lambda: source.stat("missing"),
        lambda: target.copy_from(source, "missing", "x"),
        lambda: source.write("../escape", b"x"),
        lambda: unreachable.stat("k"),
        lambda: S3Storage.from_location(S3Location(url="s3://btar-no-such-bucket/x",
                                                   endpoint_url=moto_s3.endpoint),
                                        PRIMARY).list_page(),
        lambda: source.write("k", b"x", sha256=sha(b"y")),
    ]
    for failure in failures:
        with pytest.raises(StorageError) as caught:
            failure()
        texts.append("".join(traceback.format_exception(caught.value)))
    # the check below is only meaningful if botocore really logged its signed requests
    assert "Credential=<redacted>" in caplog.text
    texts.append(caplog.text)
    texts.extend(str(record.__dict__) for record in caplog.records)
    for text in texts:
        for secret in (FAKE_KEY_ID, FAKE_SECRET, FAKE_TOKEN):
            assert secret not in text


def test_redact_removes_key_ids_and_session_tokens() -> None:
    text = ("Authorization: AWS4-HMAC-SHA256 Credential=AKIAABCDEFGHIJKLMNOP/20260101/x, "
            "'X-Amz-Security-Token': b'tok/en+value==', x-amz-security-token:tok2\n"
            "X-Amz-Credential=ASIAABCDEFGHIJKLMNOP%2F2026&x=1")
    cleaned = redact(text)
    for secret in ("AKIAABCDEFGHIJKLMNOP", "ASIAABCDEFGHIJKLMNOP", "tok/en+value", "tok2"):
        assert secret not in cleaned


# --- retries (no server, no real sleeping) -----------------------------------------------------

def _stubbed(max_attempts: int = 8) -> tuple[S3Storage, Stubber, list[float]]:
    client = boto3.session.Session().client(
        "s3", region_name="eu-west-1", aws_access_key_id="AKIASTUBSTUBSTUBSTUB",
        aws_secret_access_key="stub", config=Config(retries={"total_max_attempts": 1}))
    delays: list[float] = []
    store = S3Storage("bucket", "pre", region="eu-west-1", client=client, sleep=delays.append,
                      jitter=lambda: 1.0, max_attempts=max_attempts)
    return store, Stubber(client), delays


HEAD = {"ContentLength": 5, "ETag": '"5d41402abc4b2a76b9719d911017c592"',
        "LastModified": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)}
WHERE = {"Bucket": "bucket", "Key": "pre/k"}


def test_slowdown_is_retried_with_backoff_then_succeeds() -> None:
    store, stub, delays = _stubbed()
    stub.add_client_error("head_object", "SlowDown", "Please reduce your request rate.", 503,
                          expected_params=WHERE)
    stub.add_client_error("head_object", "ServiceUnavailable", "busy", 503,
                          expected_params=WHERE)
    stub.add_response("head_object", HEAD, WHERE)
    with stub:
        assert store.stat("k").size == 5
    stub.assert_no_pending_responses()
    assert delays == [0.25, 0.5]


def test_throttling_that_persists_raises_throttled() -> None:
    store, stub, delays = _stubbed(max_attempts=3)
    for _ in range(3):
        stub.add_client_error("head_object", "SlowDown", "slow down", 503, expected_params=WHERE)
    with stub, pytest.raises(Throttled):
        store.stat("k")
    assert delays == [0.25, 0.5]


def test_backoff_is_jittered_and_capped() -> None:
    delays: list[float] = []
    store = S3Storage("bucket", region="eu-west-1", client=object(), sleep=delays.append,  # type: ignore[arg-type]
                      jitter=lambda: 0.0, backoff_base=1.0, backoff_cap=4.0)
    for attempt in range(5):
        store.backoff(attempt)
    assert delays == [0.5, 1.0, 2.0, 2.0, 2.0]


def test_server_errors_are_retried_then_storage_error() -> None:
    store, stub, delays = _stubbed(max_attempts=2)
    for _ in range(2):
        stub.add_client_error("head_object", "InternalError", "oops", 500, expected_params=WHERE)
    with stub, pytest.raises(StorageError) as caught:
        store.stat("k")
    assert type(caught.value) is StorageError
    assert len(delays) == 1


def test_access_denied_is_not_retried() -> None:
    store, stub, delays = _stubbed()
    stub.add_client_error("head_object", "AccessDenied", "Access Denied", 403,
                          expected_params=WHERE)
    with stub, pytest.raises(StorageError, match="AccessDenied"):
        store.stat("k")
    assert delays == []


class _FlakyClient:
    """head_object fails with the given errors, then answers."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def head_object(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return dict(HEAD)


def test_timeouts_are_retried() -> None:
    client = _FlakyClient(ReadTimeoutError(endpoint_url="http://s3"),
                          ConnectTimeoutError(endpoint_url="http://s3"))
    delays: list[float] = []
    store = S3Storage("bucket", "pre", client=client, sleep=delays.append,  # type: ignore[arg-type]
                      jitter=lambda: 1.0)
    assert store.stat("k").size == 5
    assert client.calls == 3
    assert delays == [0.25, 0.5]


def test_endpoint_down_after_retries_is_unreachable() -> None:
    client = _FlakyClient(*[EndpointConnectionError(endpoint_url="http://s3")] * 3)
    delays: list[float] = []
    store = S3Storage("bucket", "pre", client=client, sleep=delays.append,  # type: ignore[arg-type]
                      max_attempts=3)
    with pytest.raises(Unreachable):
        store.stat("k")
    assert len(delays) == 2

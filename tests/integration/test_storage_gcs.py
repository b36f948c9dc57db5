"""GCS backend against fake-gcs-server (two buckets as two regions), plus retry, rewrite-token
and resumable-upload recovery tests with small test doubles (no real sleeping).

What fake-gcs-server does not emulate, and is therefore covered by doubles here: throttling,
multi-call rewrites, composite objects, KMS keys, checksum validation of uploads, and the status
query of a resumable session (the emulator finalises the object when asked for its status).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import google.auth
import google_crc32c
import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from engine.errors import (
    AccessDenied,
    BadInput,
    ChecksumMismatch,
    ObjectNotFound,
    StorageError,
    Throttled,
    Unreachable,
)
from engine.storage import gcs as gcs_module
from engine.storage.gcs import (
    VERIFIED_CRC32C_MD5,
    GcsStorage,
    checksums_match,
    redact,
    rewrite_until_done,
)
from engine.storage.local import LocalStorage
from engine.storage.locations import GcsLocation, open_location
from tests.integration.gcs_server import (
    FakeGcs,
    closed_port,
)
from tests.storage_contract import StorageContract, sha

pytestmark = pytest.mark.integration

KIB, MIB = 1024, 1024 * 1024
PRIMARY, SECONDARY = "google-europe-west1", "google-europe-west4"
KMS_KEY = "projects/btar-test/locations/europe-west4/keyRings/btar/cryptoKeys/backups"
#: small chunks so that modest test objects take the resumable and multi-range paths
CHUNK = 256 * KIB


def b64_crc32c(data: bytes) -> str:
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


def b64_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def no_sleep(_: float) -> None:
    pass


def location(server: FakeGcs, region: str, prefix: str, **extra: Any) -> GcsLocation:
    return GcsLocation(url=f"gs://{server.bucket(region)}/{prefix}",
                       emulator_host=server.endpoint, **extra)


def open_gcs(server: FakeGcs, region: str, prefix: str, *, client: Any = None,
             upload_http: Any = None, sleep: Any = no_sleep, **extra: Any) -> GcsStorage:
    return GcsStorage.from_location(location(server, region, prefix, **extra), region,
                                    client=client, upload_http=upload_http,
                                    upload_chunk_size=CHUNK, read_chunk_size=CHUNK, sleep=sleep)


def emulator_client(server: FakeGcs, http: requests.Session | None = None) -> Any:
    return storage.Client(project="btar-test", credentials=AnonymousCredentials(),
                          client_options={"api_endpoint": server.endpoint}, _http=http)


@pytest.fixture
def prefix() -> str:
    """A fresh prefix per test: isolation without clearing buckets or restarting the server."""
    return f"t-{uuid.uuid4().hex[:12]}"


class TestGcsContract(StorageContract):
    @pytest.fixture
    def storage(self, fake_gcs: FakeGcs, prefix: str) -> Iterator[GcsStorage]:
        store = open_gcs(fake_gcs, PRIMARY, prefix)
        yield store
        store.close()

    @pytest.fixture
    def other_storage(self, fake_gcs: FakeGcs, prefix: str) -> Iterator[GcsStorage]:
        store = open_gcs(fake_gcs, SECONDARY, prefix)
        yield store
        store.close()


# --- test doubles ---------------------------------------------------------------------------

def fake_response(request: requests.PreparedRequest | None, status: int,
                  body: dict[str, Any] | None = None,
                  headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    payload = body if body is not None else {"error": {"code": status, "message": "slow down"}}
    response._content = json.dumps(payload).encode()
    response.headers["Content-Type"] = "application/json"
    response.headers.update(headers or {})
    if request is not None:
        response.request = request
        response.url = request.url or ""
    return response


class FlakySession(requests.Session):
    """An HTTP session for a real Client: the next requests whose URL contains ``match`` fail
    as planned (an HTTP status, or an exception raised before anything is sent)."""

    def __init__(self, plan: list[int | Exception] | None = None, match: str = "") -> None:
        super().__init__()
        self.plan = list(plan or [])
        self.match = match
        self.sent: list[tuple[str, str]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = request.url or ""
        self.sent.append((request.method or "", url))
        if self.plan and self.match in url:
            failure = self.plan.pop(0)
            if isinstance(failure, Exception):
                raise failure
            return fake_response(request, failure)
        return super().send(request, **kwargs)


class UploadDouble:
    """Carries resumable-upload chunks to fake-gcs-server, failing some as planned, and answers
    session status queries itself (the emulator would finalise the object when asked)."""

    def __init__(self, plan: dict[int, str] | None = None) -> None:
        self.real = requests.Session()
        self.plan = dict(plan or {})
        self.ranges: list[str] = []
        self.sizes: list[int] = []
        self.deleted: list[str] = []
        self.held = 0

    def _forward(self, url: str, data: bytes, content_range: str, headers: dict[str, str],
                 timeout: Any) -> requests.Response:
        response = self.real.put(url, data=data, headers={**headers,
                                                          "Content-Range": content_range},
                                 timeout=timeout)
        if response.status_code == 308:
            self.held = int(response.headers["Range"].split("-")[1]) + 1
        return response

    def put(self, url: str, *, data: bytes, headers: dict[str, str],
            timeout: Any = None) -> requests.Response:
        content_range = headers["Content-Range"]
        self.ranges.append(content_range)
        self.sizes.append(len(data))
        if content_range.startswith("bytes */"):
            held = {"Range": f"bytes=0-{self.held - 1}"} if self.held else {}
            return fake_response(None, 308, {}, held)
        action = self.plan.pop(len(self.ranges), None)
        if action == "refuse":
            raise requests.ConnectionError("connection reset by peer")
        if action == "half":
            first = int(content_range.split(" ")[1].split("-")[0])
            half = len(data) // 2
            self._forward(url, data[:half], f"bytes {first}-{first + half - 1}/*", {}, timeout)
            raise requests.ReadTimeout("read timed out")
        response = self._forward(url, data, content_range, headers, timeout)
        if action == "tamper" and response.status_code in (200, 201):
            resource = response.json()
            resource["md5Hash"] = b64_md5(b"something else")
            return fake_response(None, response.status_code, resource)
        return response

    def delete(self, url: str, *, timeout: Any = None) -> requests.Response:
        self.deleted.append(url)
        return self.real.delete(url, timeout=timeout)

    def close(self) -> None:
        self.real.close()


class FakeRewriteBlob:
    """A destination whose rewrite needs several calls, as GCS does for large objects."""

    def __init__(self, answers: list[tuple[str | None, int, int]]) -> None:
        self.answers = list(answers)
        self.tokens: list[str | None] = []

    def rewrite(self, source: Any, *, token: str | None = None, retry: Any = None,
                timeout: Any = None) -> tuple[str | None, int, int]:
        assert retry is None  # retries are ours
        self.tokens.append(token)
        return self.answers.pop(0)


# --- opening a location -----------------------------------------------------------------------

def test_from_location_parses_bucket_and_prefix(fake_gcs: FakeGcs) -> None:
    store = open_location(location(fake_gcs, PRIMARY, "svc/a"), PRIMARY)
    assert isinstance(store, GcsStorage)
    assert store.name == f"gs://{fake_gcs.bucket(PRIMARY)}/svc/a"
    assert store.bucket_name == fake_gcs.bucket(PRIMARY)
    assert store.prefix == "svc/a/"
    store.write("k", b"v")
    assert store.read_bytes("k") == b"v"
    raw = emulator_client(fake_gcs).bucket(fake_gcs.bucket(PRIMARY))
    assert raw.get_blob("svc/a/k") is not None


def test_emulator_host_from_the_environment(fake_gcs: FakeGcs, prefix: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake_gcs.endpoint)
    loc = GcsLocation(url=f"gs://{fake_gcs.bucket(PRIMARY)}/{prefix}")
    store = GcsStorage.from_location(loc, PRIMARY)
    assert isinstance(store.client._credentials, AnonymousCredentials)
    store.write("k", b"from env")
    assert store.read_bytes("k") == b"from env"


@pytest.mark.parametrize("url", ["gs:///nobucket", "s3://b/p"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(BadInput):
        GcsStorage.from_location(GcsLocation(url=url, emulator_host="x"), "r")


def test_rewrite_chunk_must_be_whole_mebibytes(fake_gcs: FakeGcs) -> None:
    with pytest.raises(BadInput, match="1 MiB"):
        open_gcs(fake_gcs, PRIMARY, "p", rewrite_chunk_bytes=MIB + 1)


# --- server-side copies and their verification -------------------------------------------------

def test_copy_between_regions_is_a_verified_rewrite(fake_gcs: FakeGcs, prefix: str) -> None:
    http = FlakySession()
    source = open_gcs(fake_gcs, PRIMARY, prefix)
    target = open_gcs(fake_gcs, SECONDARY, prefix, client=emulator_client(fake_gcs, http))
    data = bytes(range(256)) * 4096
    source.write("svc/base/1/data", data)
    report = target.copy_from(source, "svc/base/1/data", "svc/base/1/data", sha256=sha(data))
    assert report.method == "server-side"
    assert report.identical_to_source is True
    assert report.verified_by == VERIFIED_CRC32C_MD5
    assert report.sha256 is None  # GCS gives no SHA-256: none is claimed
    assert report.info.size == len(data)
    assert target.read_bytes("svc/base/1/data") == data
    rewrites = [url for method, url in http.sent if "/rewriteTo/" in url]
    assert len(rewrites) == 1
    assert "sourceGeneration=" in rewrites[0]  # the generation whose checksums were compared


def test_emulator_reports_true_checksums_for_a_rewrite(fake_gcs: FakeGcs, prefix: str) -> None:
    """A check of the emulator itself: fake-gcs-server's CRC32C and MD5 of a rewritten object
    are those of its bytes (computed here independently), so the claim above rests on real
    values."""
    source = open_gcs(fake_gcs, PRIMARY, prefix)
    target = open_gcs(fake_gcs, SECONDARY, prefix)
    data = bytes(reversed(range(256))) * 12_000 + b"tail"
    source.write("obj", data)
    target.copy_from(source, "obj", "obj")
    raw = emulator_client(fake_gcs).bucket(fake_gcs.bucket(SECONDARY)).get_blob(f"{prefix}/obj")
    assert raw.crc32c == b64_crc32c(data)
    assert raw.md5_hash == b64_md5(data)
    assert raw.component_count is None


def test_rewrite_requests_carry_max_bytes_and_kms_key(fake_gcs: FakeGcs, prefix: str) -> None:
    http = FlakySession()
    source = open_gcs(fake_gcs, PRIMARY, prefix)
    target = open_gcs(fake_gcs, SECONDARY, prefix, client=emulator_client(fake_gcs, http),
                      rewrite_chunk_bytes=2 * MIB, kms_key_name=KMS_KEY)
    source.write("obj", b"x" * 1000)
    target.copy_from(source, "obj", "obj")
    target.write("small", b"abc")
    target.write("large", b"y" * (CHUNK * 2 + 1))
    rewrite = next(url for _, url in http.sent if "/rewriteTo/" in url)
    assert "maxBytesRewrittenPerCall=2097152" in rewrite
    assert "destinationKmsKeyName=projects%2Fbtar-test" in rewrite
    uploads = [url for method, url in http.sent if method == "POST" and "/upload/" in url]
    assert len(uploads) == 2
    assert all("kmsKeyName=projects%2Fbtar-test" in u for u in uploads)
    # fake-gcs-server accepts the key but does not emulate KMS: it reports none
    raw = emulator_client(fake_gcs).bucket(fake_gcs.bucket(SECONDARY)).get_blob(f"{prefix}/obj")
    assert raw.kms_key_name is None


def test_rewrite_loop_follows_tokens_until_done() -> None:
    destination = FakeRewriteBlob([("t1", MIB, 3 * MIB), ("t2", 2 * MIB, 3 * MIB),
                                   (None, 3 * MIB, 3 * MIB)])
    ran: list[int] = []

    def call(operation: Any) -> Any:
        ran.append(1)
        return operation()

    assert rewrite_until_done(destination, object(), call=call) == 3
    assert destination.tokens == [None, "t1", "t2"]
    assert len(ran) == 3  # each call went through the retrying runner


def test_rewrite_loop_gives_up_without_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gcs_module, "MAX_STALLED_REWRITES", 3)
    destination = FakeRewriteBlob([("t", MIB, 4 * MIB)] * 10)
    with pytest.raises(StorageError, match="no progress"):
        rewrite_until_done(destination, object(), call=lambda op: op(), location="gs://b",
                           key="k")
    assert len(destination.tokens) == 4


def test_rewrite_token_loop_inside_copy_from(fake_gcs: FakeGcs, prefix: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator finishes every rewrite at once; make the first two calls answer with a
    token (as GCS does) and check copy_from carries on with it."""
    real = gcs_module._RewriteTarget.rewrite
    tokens: list[str | None] = []

    def partial(self: Any, source: Any, token: str | None = None, **kwargs: Any) -> Any:
        tokens.append(token)
        if len(tokens) <= 2:
            return f"token-{len(tokens)}", len(tokens) * 10, 30
        return real(self, source, **kwargs)

    monkeypatch.setattr(gcs_module._RewriteTarget, "rewrite", partial)
    source = open_gcs(fake_gcs, PRIMARY, prefix)
    target = open_gcs(fake_gcs, SECONDARY, prefix)
    source.write("obj", b"z" * 30)
    report = target.copy_from(source, "obj", "obj")
    assert tokens == [None, "token-1", "token-2"]
    assert report.identical_to_source


def test_copy_with_differing_checksums_is_removed(fake_gcs: FakeGcs, prefix: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    real = gcs_module._RewriteTarget.rewrite

    def corrupting(self: Any, *args: Any, **kwargs: Any) -> Any:
        answer = real(self, *args, **kwargs)
        self._properties["md5Hash"] = b64_md5(b"not the source")
        return answer

    monkeypatch.setattr(gcs_module._RewriteTarget, "rewrite", corrupting)
    source = open_gcs(fake_gcs, PRIMARY, prefix)
    target = open_gcs(fake_gcs, SECONDARY, prefix)
    source.write("obj", b"payload")
    with pytest.raises(StorageError, match="copy was removed"):
        target.copy_from(source, "obj", "obj")
    with pytest.raises(ObjectNotFound):
        target.stat("obj")


def test_checksum_comparison_claims_only_what_was_reported() -> None:
    def obj(crc: str | None, md5: str | None, components: int | None = None) -> Any:
        return SimpleNamespace(crc32c=crc, md5_hash=md5, component_count=components)

    assert checksums_match(obj("c", "m"), obj("c", "m")) is True
    assert checksums_match(obj("c", "m"), obj("c", "x")) is False
    assert checksums_match(obj("c", "m"), obj("d", "m")) is False
    # a composite object has a CRC32C but no MD5: nothing is claimed, the engine reads back
    assert checksums_match(obj("c", None, 2), obj("c", None, 2)) is None
    assert checksums_match(obj("c", "m", 2), obj("c", "m")) is None
    assert checksums_match(obj(None, "m"), obj(None, "m")) is None


def test_stream_fallback_when_forced_or_from_another_backend(
        fake_gcs: FakeGcs, prefix: str, tmp_path: Path) -> None:
    source = open_gcs(fake_gcs, PRIMARY, prefix)
    forced = open_gcs(fake_gcs, SECONDARY, prefix, copy_mode="stream")
    data = b"wal segment " * 50_000
    source.write("wal/1", data)
    report = forced.copy_from(source, "wal/1", "wal/1", sha256=sha(data))
    assert (report.method, report.verified_by) == ("stream", "sha256-streamed")
    assert report.sha256 == sha(data)
    assert not report.identical_to_source
    local = LocalStorage(tmp_path / "local")
    local.write("wal/2", data)
    report = open_gcs(fake_gcs, SECONDARY, prefix).copy_from(local, "wal/2", "wal/2")
    assert report.method == "stream"
    assert report.sha256 == sha(data)
    with pytest.raises(ChecksumMismatch):
        forced.copy_from(source, "wal/1", "wal/3", sha256=sha(b"other"))
    with pytest.raises(ObjectNotFound):
        forced.stat("wal/3")


# --- writes -----------------------------------------------------------------------------------

def test_large_write_is_chunked_and_final_chunk_carries_hashes(fake_gcs: FakeGcs,
                                                               prefix: str) -> None:
    double = UploadDouble()
    store = open_gcs(fake_gcs, PRIMARY, prefix, upload_http=double)
    data = bytes(range(256)) * (CHUNK * 3 // 256) + b"end"
    info = store.write("big", io.BytesIO(data), sha256=sha(data))
    assert info.size == len(data)
    assert info.sha256 == sha(data)
    assert double.ranges == [f"bytes 0-{CHUNK - 1}/*", f"bytes {CHUNK}-{2 * CHUNK - 1}/*",
                             f"bytes {2 * CHUNK}-{3 * CHUNK - 1}/*",
                             f"bytes {3 * CHUNK}-{len(data) - 1}/{len(data)}"]
    assert max(double.sizes) == CHUNK  # never more than one chunk per request
    assert store.read_bytes("big") == data


def test_resumable_write_with_wrong_sha256_never_finishes(fake_gcs: FakeGcs,
                                                          prefix: str) -> None:
    double = UploadDouble()
    store = open_gcs(fake_gcs, PRIMARY, prefix, upload_http=double)
    data = b"q" * (CHUNK * 2 + 10)
    with pytest.raises(ChecksumMismatch):
        store.write("bad", io.BytesIO(data), sha256=sha(b"other"))
    assert all(r.endswith("/*") for r in double.ranges)  # the last chunk was never sent
    assert len(double.deleted) == 1  # the session was cancelled
    with pytest.raises(ObjectNotFound):
        store.stat("bad")
    assert list(store.iter_objects()) == []


def test_chunk_failures_resume_from_the_session_status(fake_gcs: FakeGcs,
                                                       prefix: str) -> None:
    """A chunk refused before sending, and one half-stored before a timeout: each time the
    session is asked what it holds and only the rest is sent again."""
    double = UploadDouble({2: "refuse", 5: "half"})
    sleeps: list[float] = []
    store = open_gcs(fake_gcs, PRIMARY, prefix, upload_http=double, sleep=sleeps.append)
    data = bytes(range(251)) * (CHUNK * 4 // 251)
    store.write("resumed", io.BytesIO(data), sha256=sha(data))
    assert store.read_bytes("resumed") == data
    half = CHUNK // 2
    assert double.ranges[1:7] == [
        f"bytes {CHUNK}-{2 * CHUNK - 1}/*", "bytes */*", f"bytes {CHUNK}-{2 * CHUNK - 1}/*",
        f"bytes {2 * CHUNK}-{3 * CHUNK - 1}/*", "bytes */*",
        f"bytes {2 * CHUNK + half}-{3 * CHUNK - 1}/*"]
    assert len(sleeps) == 2


def test_upload_altered_in_transit_is_removed(fake_gcs: FakeGcs, prefix: str) -> None:
    double = UploadDouble({3: "tamper"})
    store = open_gcs(fake_gcs, PRIMARY, prefix, upload_http=double)
    data = b"t" * (CHUNK * 2 + 1)
    with pytest.raises(StorageError, match="arrived altered"):
        store.write("altered", data)
    with pytest.raises(ObjectNotFound):
        store.stat("altered")


# --- reads --------------------------------------------------------------------------------------

def test_reads_are_ranged_and_pinned_to_one_generation(fake_gcs: FakeGcs,
                                                       prefix: str) -> None:
    store = open_gcs(fake_gcs, PRIMARY, prefix)
    data = b"a" * CHUNK + b"b" * CHUNK
    store.write("obj", data)
    with store.open_read("obj") as stream:
        assert stream.read(CHUNK) == b"a" * CHUNK
        store.write("obj", b"c" * (2 * CHUNK))  # overwritten mid-read
        with pytest.raises(ObjectNotFound):  # never a mix of two versions
            stream.read(CHUNK)


def test_read_checks_the_stored_crc32c(fake_gcs: FakeGcs, prefix: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_gcs(fake_gcs, PRIMARY, prefix)
    store.write("obj", b"0123456789")
    real = storage.Blob.download_as_bytes

    def flipped(self: Any, *args: Any, **kwargs: Any) -> bytes:
        data: bytes = real(self, *args, **kwargs)
        return b"X" + data[1:]

    monkeypatch.setattr(storage.Blob, "download_as_bytes", flipped)
    with pytest.raises(StorageError, match="CRC32C"):
        store.read_bytes("obj")


# --- listing ------------------------------------------------------------------------------------

def test_listing_pages_map_onto_start_offset(fake_gcs: FakeGcs, prefix: str) -> None:
    http = FlakySession()
    store = open_gcs(fake_gcs, PRIMARY, prefix, client=emulator_client(fake_gcs, http))
    store.page_size = 3  # several HTTP pages per list_page
    keys = [f"wal/{i:04d}" for i in range(11)]
    for key in keys:
        store.write(key, key.encode())
    # a console-made "folder" placeholder is no object
    emulator_client(fake_gcs).bucket(store.bucket_name).blob(
        f"{prefix}/wal/0005/").upload_from_string(b"")
    first = store.list_page("wal/", None, 4)
    assert [o.key for o in first.objects] == keys[:4]
    assert first.next_start_after == keys[3]
    second = store.list_page("wal/", first.next_start_after, 4)
    assert [o.key for o in second.objects] == keys[4:8]  # start_after itself is excluded
    third = store.list_page("wal/", second.next_start_after, 4)
    assert [o.key for o in third.objects] == keys[8:]
    assert third.next_start_after is None
    assert [o.key for o in store.iter_objects("wal/", page_size=2)] == keys
    lists = [url for method, url in http.sent
             if method == "GET" and url.split("?")[0].endswith("/o")]
    assert any("startOffset=" in url for url in lists)
    assert any("pageToken=" in url for url in lists)


def test_missing_bucket_is_unreachable(fake_gcs: FakeGcs) -> None:
    store = GcsStorage("btar-no-such-bucket", "p", emulator_host=fake_gcs.endpoint)
    with pytest.raises(Unreachable, match="does not exist"):
        store.list_page()
    # Writes and server-side copies into it too, not "no such object".
    with pytest.raises(Unreachable, match="bucket btar-no-such-bucket does not exist"):
        store.write("k", b"data")
    source = GcsStorage(fake_gcs.bucket(PRIMARY), f"p-{uuid.uuid4().hex}",
                        emulator_host=fake_gcs.endpoint)
    source.write("k", b"data")
    with pytest.raises(Unreachable, match="bucket btar-no-such-bucket does not exist"):
        store.copy_from(source, "k", "k")
    # A missing source object stays a missing object.
    target = GcsStorage(fake_gcs.bucket(SECONDARY), f"p-{uuid.uuid4().hex}",
                        emulator_host=fake_gcs.endpoint)
    with pytest.raises(ObjectNotFound):
        target.copy_from(source, "absent", "k")


def test_closed_port_is_unreachable_quickly() -> None:
    loc = GcsLocation(url="gs://bucket/p", emulator_host=f"http://127.0.0.1:{closed_port()}")
    store = GcsStorage.from_location(loc, PRIMARY)  # real sleeping, default attempts
    started = time.monotonic()
    with pytest.raises(Unreachable):
        store.list_page()
    assert time.monotonic() - started < 3
    quick = GcsStorage.from_location(loc, PRIMARY, sleep=no_sleep)
    with pytest.raises(Unreachable):
        quick.stat("k")
    with pytest.raises(Unreachable):
        quick.write("k", b"x")
    with pytest.raises(Unreachable):
        quick.write("k", b"x" * (9 * MIB))
    with pytest.raises(Unreachable), quick.open_read("k"):
        pass


# --- retries ------------------------------------------------------------------------------------

def test_throttling_is_retried_with_backoff_then_succeeds(fake_gcs: FakeGcs,
                                                          prefix: str) -> None:
    http = FlakySession([503, 429], match="/o/")
    sleeps: list[float] = []
    store = GcsStorage(fake_gcs.bucket(PRIMARY), prefix, client=emulator_client(fake_gcs, http),
                       sleep=sleeps.append, jitter=lambda: 1.0)
    store.write("k", b"v")
    assert store.stat("k").size == 1
    assert sleeps == [0.25, 0.5]


def test_throttling_that_persists_raises_throttled(fake_gcs: FakeGcs, prefix: str) -> None:
    http = FlakySession([429] * 10, match="/o")
    sleeps: list[float] = []
    store = GcsStorage(fake_gcs.bucket(PRIMARY), prefix, client=emulator_client(fake_gcs, http),
                       max_attempts=4, sleep=sleeps.append, jitter=lambda: 0.0)
    with pytest.raises(Throttled, match="after 4 attempts"):
        store.list_page()
    assert sleeps == [0.125, 0.25, 0.5]  # half of 0.25 * 2**n with no jitter


def test_backoff_is_capped() -> None:
    sleeps: list[float] = []
    store = GcsStorage("b", client=SimpleNamespace(bucket=lambda name: None), sleep=sleeps.append,
                       jitter=lambda: 1.0, backoff_cap=2.0)
    for attempt in range(8):
        store.backoff(attempt)
    assert max(sleeps) == 2.0


def test_each_operation_retries_throttling(fake_gcs: FakeGcs, prefix: str) -> None:
    source = open_gcs(fake_gcs, PRIMARY, prefix)
    source.write("src", b"s" * 1000)
    for match in ("/rewriteTo/", "/download/", "uploadType=multipart", "uploadType=resumable"):
        http = FlakySession([503], match=match)
        store = open_gcs(fake_gcs, SECONDARY, prefix, client=emulator_client(fake_gcs, http))
        store.copy_from(source, "src", "copy")
        assert store.read_bytes("copy") == b"s" * 1000
        store.write("small", b"x")
        store.write("large", b"y" * (CHUNK + 1))
        assert not http.plan, match  # the planned 503 happened and was retried


def test_server_errors_are_retried_and_forbidden_is_not(fake_gcs: FakeGcs,
                                                        prefix: str) -> None:
    http = FlakySession([500, 502, 504], match="/o/")
    store = GcsStorage(fake_gcs.bucket(PRIMARY), prefix, client=emulator_client(fake_gcs, http),
                       sleep=no_sleep)
    store.write("k", b"v")
    assert store.read_bytes("k") == b"v"
    http.plan = [403, 503]
    with pytest.raises(AccessDenied, match="HTTP 403") as caught:
        store.stat("k")
    assert caught.value.fault == "denied"
    assert http.plan == [503]  # not retried


def test_broken_connections_are_retried(fake_gcs: FakeGcs, prefix: str) -> None:
    http = FlakySession([requests.ConnectionError("reset"), requests.ReadTimeout("slow")],
                        match="/o/")
    store = GcsStorage(fake_gcs.bucket(PRIMARY), prefix, client=emulator_client(fake_gcs, http),
                       sleep=no_sleep)
    store.write("k", b"v")
    assert store.stat("k").size == 1


# --- credentials ------------------------------------------------------------------------------

FAKE_ACCESS_TOKEN = "ya29.btarFakeAccessToken-DoNotLeak-0123456789"
FAKE_REFRESH_TOKEN = "1//btarFakeRefreshToken-DoNotLeak-abcdef"
FAKE_CLIENT_SECRET = "GOCSPX-btarFakeClientSecret-DoNotLeak"
SECRETS = (FAKE_ACCESS_TOKEN, FAKE_REFRESH_TOKEN, FAKE_CLIENT_SECRET, "DoNotLeak")


class _TokenHandler(BaseHTTPRequestHandler):
    """A loopback OAuth token endpoint: grants the fake token, or refuses when told to."""

    bodies: list[bytes] = []
    refuse = False

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).bodies.append(body)
        payload: dict[str, Any]
        if type(self).refuse:
            payload = {"error": "invalid_grant", "error_description": "Token has been revoked"}
            status = 400
        else:
            payload = {"access_token": FAKE_ACCESS_TOKEN, "expires_in": 3600,
                       "token_type": "Bearer"}
            status = 200
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def token_server() -> Iterator[str]:
    _TokenHandler.bodies = []
    _TokenHandler.refuse = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def chain_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, endpoint: str,
                 token_uri: str, name: str) -> tuple[Any, Any]:
    """A Client whose credentials come from the standard chain (an authorized_user file named
    by GOOGLE_APPLICATION_CREDENTIALS), talking to the emulator. google-auth always sends such
    credentials to Google's token endpoint; the test points them at a loopback one."""
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({
        "type": "authorized_user", "client_id": "btar-fake.apps.googleusercontent.com",
        "client_secret": FAKE_CLIENT_SECRET, "refresh_token": FAKE_REFRESH_TOKEN}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "end user credentials without a quota project"
        credentials, _ = google.auth.default(
            scopes=["https://www.googleapis.com/auth/devstorage.read_write"])
    credentials = credentials.with_token_uri(token_uri)
    client = storage.Client(project="btar-test", credentials=credentials,
                            client_options={"api_endpoint": endpoint})
    return client, credentials


def test_credentials_never_appear_in_errors_reprs_or_logs(
        fake_gcs: FakeGcs, prefix: str, tmp_path: Path, token_server: str,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    caplog.set_level(logging.DEBUG)
    google_logger = logging.getLogger("google")  # google-auth's logs do not propagate
    google_logger.addHandler(caplog.handler)
    errors: list[BaseException] = []
    stores: list[GcsStorage] = []
    try:
        client, credentials = chain_client(tmp_path, monkeypatch, fake_gcs.endpoint,
                                           token_server, "good")
        store = open_gcs(fake_gcs, PRIMARY, prefix, client=client)
        other = open_gcs(fake_gcs, SECONDARY, prefix, client=client)
        stores += [store, other]
        store.write("small", b"s")
        store.write("large", b"l" * (CHUNK + 5))
        other.copy_from(store, "large", "large")
        assert other.read_bytes("large") == b"l" * (CHUNK + 5)
        list(store.iter_objects())
        for failing in (lambda: store.stat("missing"), lambda: store.write("../x", b"")):
            try:
                failing()
            except StorageError as exc:
                errors.append(exc)
        assert credentials.token == FAKE_ACCESS_TOKEN  # the chain's token was really used
        assert any(b"btarFakeRefreshToken" in body for body in _TokenHandler.bodies)

        _TokenHandler.refuse = True  # a revoked refresh token
        client, _ = chain_client(tmp_path, monkeypatch, fake_gcs.endpoint, token_server, "bad")
        revoked = open_gcs(fake_gcs, PRIMARY, prefix, client=client)
        stores.append(revoked)
        with pytest.raises(StorageError) as caught:
            revoked.stat("small")
        errors.append(caught.value)

        dead_uri = f"http://127.0.0.1:{closed_port()}/token"  # the token endpoint is down
        client, _ = chain_client(tmp_path, monkeypatch, fake_gcs.endpoint, dead_uri, "dead")
        down = open_gcs(fake_gcs, PRIMARY, prefix, client=client)
        stores.append(down)
        with pytest.raises(Unreachable) as unreachable:
            down.list_page()
        errors.append(unreachable.value)
    finally:
        google_logger.removeHandler(caplog.handler)
    texts = [caplog.text]
    texts.extend(str(record.__dict__) for record in caplog.records)
    for error in errors:
        texts += [str(error), repr(error), "".join(traceback.format_exception(error))]
    for store in stores:
        texts += [repr(store), str(store), store.name]
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def test_redact_removes_tokens_and_session_ids() -> None:
    text = redact(f"PUT /upload?uploadType=resumable&upload_id=ABCdef123 Authorization: Bearer "
                  f"{FAKE_ACCESS_TOKEN} {{'refresh_token': '{FAKE_REFRESH_TOKEN}'}} "
                  f"client_secret={FAKE_CLIENT_SECRET}")
    assert "ABCdef123" not in text
    for secret in SECRETS:
        assert secret not in text

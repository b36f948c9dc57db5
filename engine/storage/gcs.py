"""Google Cloud Storage backend (google-cloud-storage), also for fake-gcs-server.

One ``GcsStorage`` is a bucket plus prefix; a bucket's location is fixed when it is created, so
the client needs no region. Retries are ours, not the SDK's: every SDK call gets ``retry=None``
and ``call()`` retries throttling (429/503), other 5xx, timeouts and refused connections with
injectable sleep and jitter (engine.storage.retry), then raises Throttled / Unreachable /
StorageError (engine.storage.gcs_errors says what the SDK's errors mean):

- a missing bucket: LocationMissing ("bucket X does not exist"), on listings, writes and
  copies (a 404 on those asks whether the bucket exists);
- 401/403 or credentials that cannot get a token: AccessDenied, not retried, the reason says
  to check the credentials (a 403 that is a rate limit is throttling);
- 429/503: Throttled after ``max_attempts``; other 5xx: StorageError ("the service kept
  answering 500 after N attempts");
- refused connections, DNS failures, dropped connections: Unreachable after
  ``connect_attempts``; an endpoint that accepts and never answers: Unreachable after
  TIMEOUT_ATTEMPTS read timeouts.

Writes up to one chunk are sent as a single upload after their SHA-256 was checked. Larger
writes use a resumable upload session: chunks go up as they are read, and the final chunk, the
one that makes the object visible, is sent only once the running SHA-256 matched; otherwise the
session is cancelled and nothing appears (engine.storage.gcs_io, with the reads).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar
from urllib.parse import unquote, urlsplit

import requests
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.cloud.storage.blob import Blob

from engine.errors import (
    BadInput,
    LocationMissing,
    ObjectNotFound,
    StorageError,
)
from engine.model import Digest, ObjectInfo, ObjectMeta
from engine.storage.base import (
    CopyReport,
    ListPage,
    Storage,
    check_sha256,
    closing_described,
    closing_stream,
    validate_prefix,
)
from engine.storage.digests import from_base64
from engine.storage.gcs_errors import NOISY_LOGGERS, REDACTIONS, SDK_ERRORS, classify, describe
from engine.storage.gcs_errors import redact as redact  # where callers have found it
from engine.storage.gcs_io import (
    OCTET,
    Reader,
    Stored,
    UploadHashes,
    read_exact,
    upload_resumable,
)
from engine.storage.retry import Attempts, Backoff, Describe, RetriedRequests, Retry, utc

if TYPE_CHECKING:
    from engine.storage.locations import GcsLocation

_T = TypeVar("_T")
_log = logging.getLogger(__name__)

# an untyped callable of a typed package, held as Any so that mypy --strict accepts the call
_Anonymous: Any = AnonymousCredentials

#: ``verified_by`` of a server-side copy whose CRC32C and MD5 both equal the source's.
VERIFIED_CRC32C_MD5 = "crc32c+md5-equals-source"
#: Resumable upload chunks (all but the last) must be multiples of this.
UPLOAD_QUANTUM = 256 * 1024
#: GCS wants maxBytesRewrittenPerCall as a multiple of 1 MiB.
REWRITE_QUANTUM = 1024 * 1024
DEFAULT_CHUNK = 8 * 1024 * 1024
#: A refused connection or a DNS failure gets this many tries: an outage should surface fast.
CONNECT_ATTEMPTS = 3
#: Tries of a request whatever the failure (throttling, 5xx, broken streams), by default.
MAX_ATTEMPTS = 8
#: Seconds to wait for a TCP connection. A reachable endpoint accepts in milliseconds; 10 s
#: rides out a congested network, and one that drops packets is Unreachable after
#: CONNECT_ATTEMPTS of them (about 30 s).
CONNECT_TIMEOUT = 10.0
#: Seconds to wait for the next bytes of an answer: the client library's own default for
#: every call. Requests move at most one chunk (8 MiB), and a long rewrite answers with a
#: token to continue with, so a silence this long means the endpoint hangs.
READ_TIMEOUT = 60.0
#: Tries of a request that got no answer within READ_TIMEOUT: one retry for a single lost
#: answer, so an endpoint that accepts connections and never answers is Unreachable after
#: about 2 x READ_TIMEOUT (2 minutes), not MAX_ATTEMPTS x READ_TIMEOUT.
TIMEOUT_ATTEMPTS = 2
#: Rewrite calls in a row without progress before a copy is abandoned.
MAX_STALLED_REWRITES = 100


def checksums_match(source: Any, copy: Any) -> bool | None:
    """Compare the service's CRC32C and MD5 of a source object and its copy: True when both
    are given for both non-composite objects and equal, False when they differ, None when the
    service did not report enough to tell (composite objects have no MD5)."""
    if source.component_count is not None or copy.component_count is not None:
        return None
    sums = (source.crc32c, source.md5_hash, copy.crc32c, copy.md5_hash)
    if not all(sums):
        return None
    return bool(source.crc32c == copy.crc32c and source.md5_hash == copy.md5_hash)


def rewrite_until_done(destination: Any, source: Any, *, call: Callable[[Callable[[], Any]], Any],
                       timeout: Any = None, location: str = "", key: str = "") -> int:
    """Drive ``destination.rewrite(source)`` until the service reports it done, following the
    rewrite token (large objects, other locations or storage classes, a new KMS key take several
    calls). ``call`` runs one request with retries. Returns the number of calls made."""
    token: str | None = None
    calls = 0
    best = -1
    stalled = 0
    while True:
        def once(previous: str | None = token) -> Any:
            return destination.rewrite(source, token=previous, retry=None, timeout=timeout)

        token, rewritten, total = call(once)
        calls += 1
        if token is None:
            return calls
        _log.debug("%s: %s: rewrite %d of %d bytes", location, key, rewritten, total)
        if rewritten > best:
            best, stalled = rewritten, 0
        else:
            stalled += 1
            if stalled >= MAX_STALLED_REWRITES:
                raise StorageError(location, key, f"rewrite made no progress in {stalled} calls "
                                   f"({rewritten} of {total} bytes)")


class _RewriteTarget(Blob):  # type: ignore[misc]
    """A destination blob whose rewrite requests carry maxBytesRewrittenPerCall; Blob.rewrite
    has no parameter for it but sends the blob's ``_query_params``. Used for rewrites only."""

    def __init__(self, name: str, bucket: Any, *, kms_key_name: str | None,
                 max_bytes_per_call: int | None) -> None:
        super().__init__(name, bucket, kms_key_name=kms_key_name)
        self._max_bytes_per_call = max_bytes_per_call

    @property
    def _query_params(self) -> dict[str, Any]:
        params = dict(super()._query_params)
        if self._max_bytes_per_call:
            params["maxBytesRewrittenPerCall"] = self._max_bytes_per_call
        return params


def _digests_of(blob: Any) -> tuple[Digest, ...]:
    """The MD5 (absent for composite objects) and CRC32C GCS stored of an object."""
    found = (from_base64("md5", blob.md5_hash), from_base64("crc32c", blob.crc32c))
    return tuple(d for d in found if d is not None)


def _info_of(key: str, blob: Any) -> ObjectInfo:
    return ObjectInfo(key=key, size=int(blob.size or 0), last_modified=utc(blob.updated),
                      digests=_digests_of(blob),
                      meta=ObjectMeta.of(blob.metadata, blob.content_type,
                                         blob.content_encoding))


class GcsStorage(RetriedRequests, Storage):
    """A bucket and prefix of Google Cloud Storage; safe to share between threads."""

    kind = "gcs"
    keeps_metadata = True

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: storage.Client | None = None,
        project: str | None = None,
        emulator_host: str | None = None,
        kms_key_name: str | None = None,
        rewrite_chunk_bytes: int | None = None,
        copy_mode: str = "auto",
        upload_chunk_size: int = DEFAULT_CHUNK,
        read_chunk_size: int = DEFAULT_CHUNK,
        upload_http: Any = None,
        max_attempts: int | None = None,
        connect_attempts: int | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        page_size: int = 1000,
        backoff_base: float = 0.25,
        backoff_cap: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        """``client`` replaces the one built from ``project`` / ``emulator_host`` (tests);
        ``upload_http`` (a requests.Session) carries resumable upload chunks, which the session
        URI authorises by itself."""
        if not bucket:
            raise BadInput("a gs location needs a bucket: gs://bucket/prefix")
        prefix = prefix.strip("/")
        self.name = f"gs://{bucket}/{prefix}" if prefix else f"gs://{bucket}"
        validate_prefix(self.name, prefix)
        if upload_chunk_size < UPLOAD_QUANTUM or upload_chunk_size % UPLOAD_QUANTUM:
            raise BadInput(f"{self.name}: upload_chunk_size must be a multiple of 256 KiB")
        if rewrite_chunk_bytes is not None and rewrite_chunk_bytes % REWRITE_QUANTUM:
            raise BadInput(f"{self.name}: rewrite_chunk_bytes must be a multiple of 1 MiB")
        self.bucket_name = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.kms_key_name = kms_key_name
        self.rewrite_chunk_bytes = rewrite_chunk_bytes
        self.copy_mode = copy_mode
        self.upload_chunk_size = upload_chunk_size
        self.read_chunk_size = max(1, read_chunk_size)
        self.max_attempts = max(1, MAX_ATTEMPTS if max_attempts is None else max_attempts)
        self.connect_attempts = max(1, min(
            CONNECT_ATTEMPTS if connect_attempts is None else connect_attempts,
            self.max_attempts))
        #: (connect, read) seconds, given to every request
        self.timeout = (CONNECT_TIMEOUT if connect_timeout is None else connect_timeout,
                        READ_TIMEOUT if read_timeout is None else read_timeout)
        self.page_size = max(1, min(page_size, 1000))
        self.retry = Retry(self.name, SDK_ERRORS, classify,
                           Attempts(self.max_attempts, self.connect_attempts, TIMEOUT_ATTEMPTS),
                           Backoff(backoff_base, backoff_cap, sleep, jitter), _log)
        REDACTIONS.install(NOISY_LOGGERS)
        self.client: Any = client if client is not None else self._make_client(project,
                                                                                emulator_host)
        # google-cloud-storage 3.x fetches bucket metadata in background threads for tracing:
        # extra requests (and a bucket permission) we neither need nor want during an outage.
        if getattr(self.client, "_bucket_metadata_cache", None) is not None:
            self.client._bucket_metadata_cache = None
        self.endpoint: str = str(getattr(self.client, "api_endpoint", ""))
        self.bucket: Any = self.client.bucket(bucket)
        self._upload_http: Any = upload_http if upload_http is not None else requests.Session()

    def _make_client(self, project: str | None, emulator_host: str | None) -> Any:
        if emulator_host:
            endpoint = emulator_host if "://" in emulator_host else f"http://{emulator_host}"
            return storage.Client(project=project or "btar-emulator",
                                  credentials=_Anonymous(),
                                  client_options={"api_endpoint": endpoint})
        try:
            return storage.Client(project=project)
        except auth_exceptions.DefaultCredentialsError:
            raise BadInput(f"{self.name}: no Google credentials found; set "
                           "GOOGLE_APPLICATION_CREDENTIALS or run on a machine with a service "
                           "account") from None

    @classmethod
    def from_location(
        cls,
        location: GcsLocation,
        region_id: str,
        *,
        client: storage.Client | None = None,
        upload_http: Any = None,
        upload_chunk_size: int = DEFAULT_CHUNK,
        read_chunk_size: int = DEFAULT_CHUNK,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> GcsStorage:
        """Open ``gs://bucket/prefix`` of a GcsLocation. ``emulator_host`` (or the
        STORAGE_EMULATOR_HOST environment variable) means anonymous access to an emulator;
        otherwise the standard Google credential chain. ``region_id`` is not needed: a bucket's
        location is fixed when it is created."""
        parts = urlsplit(location.url)
        if parts.scheme != "gs" or not parts.netloc:
            raise BadInput(f"{location.display()}: a gcs location is gs://bucket/prefix")
        emulator = location.emulator_host or os.environ.get("STORAGE_EMULATOR_HOST") or None
        return cls(
            parts.netloc,
            unquote(parts.path),
            client=client,
            project=location.project,
            emulator_host=emulator,
            kms_key_name=location.kms_key_name,
            rewrite_chunk_bytes=location.rewrite_chunk_bytes,
            copy_mode=location.copy_mode,
            upload_chunk_size=upload_chunk_size,
            read_chunk_size=read_chunk_size,
            upload_http=upload_http,
            max_attempts=location.max_attempts,
            connect_timeout=connect_timeout,
            read_timeout=location.read_timeout if read_timeout is None else read_timeout,
            sleep=sleep,
            jitter=jitter,
        )

    def __repr__(self) -> str:
        return f"GcsStorage({self.name!r})"

    # --- retries and errors -----------------------------------------------------------------

    def _describe(self, key: str) -> Describe:
        """How a request about ``key`` that failed for good is reported."""
        return lambda exc, failure, attempts: describe(exc, failure, attempts, location=self.name,
                                                       key=key, read_timeout=self.timeout[1])

    # --- the Storage protocol ---------------------------------------------------------------

    def list_page(self, prefix: str = "", start_after: str | None = None,
                  limit: int = 1000) -> ListPage:
        validate_prefix(self.name, prefix)
        if limit < 1:
            raise ValueError("limit must be at least 1")
        full_prefix = self.prefix + prefix
        # start_offset is inclusive: the key equal to start_after comes back and is dropped.
        start_offset = self.prefix + start_after if start_after is not None else None
        objects: list[ObjectInfo] = []
        token: str | None = None
        more = False
        while not more:
            # one extra for start_after itself, one to learn whether more remain
            want = min(self.page_size, limit - len(objects) + 2)

            def fetch(page_token: str | None = token, size: int = want) -> tuple[list[Any], Any]:
                iterator = self.client.list_blobs(
                    self.bucket_name, prefix=full_prefix or None, start_offset=start_offset,
                    max_results=size, page_token=page_token, retry=None, timeout=self.timeout)
                page = next(iterator.pages, None)
                return (list(page) if page is not None else []), iterator.next_page_token

            try:
                blobs, token = self.call("", fetch)
            except ObjectNotFound:
                raise LocationMissing(self.name, "", f"bucket {self.bucket_name} does not "
                                      "exist") from None
            for blob in blobs:
                key = blob.name[len(self.prefix):]
                if (start_after is not None and key <= start_after) or key.endswith("/"):
                    continue  # start_after itself, or a "folder" placeholder made by consoles
                if len(objects) == limit:
                    more = True
                    break
                # the listing carries the stored MD5 and CRC32C at no extra cost
                objects.append(ObjectInfo(key=key, size=int(blob.size or 0),
                                          last_modified=utc(blob.updated),
                                          digests=_digests_of(blob)))
            if not token:
                break
        return ListPage(tuple(objects), objects[-1].key if more else None)

    def _get(self, key: str) -> Any:
        """The object's current resource (generation, size, checksums) or ObjectNotFound."""
        full = self.full_key(key)
        blob = self.call(key, lambda: self.bucket.get_blob(full, retry=None,
                                                           timeout=self.timeout))
        if blob is None:
            raise ObjectNotFound(self.name, key, "no such object")
        return blob

    def stat(self, key: str) -> ObjectInfo:
        blob = self._get(key)
        return _info_of(key, blob)

    def open_read(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]:
        return closing_stream(Reader(self, key, self._get(key)))

    def open_described(self, key: str) -> contextlib.AbstractContextManager[
            tuple[BinaryIO, ObjectInfo]]:
        # a read looks the object up first anyway: its answer describes the generation read
        blob = self._get(key)
        return closing_described(Reader(self, key, blob), _info_of(key, blob))

    def _new_blob(self, full: str, meta: ObjectMeta | None = None) -> Any:
        blob = self.bucket.blob(full, kms_key_name=self.kms_key_name)
        if meta:
            # sent with the upload (its object resource), so the object is born with them
            blob.metadata = meta.as_dict or None
            blob.content_type = meta.content_type or OCTET
            blob.content_encoding = meta.content_encoding or None
        return blob

    def write(self, key: str, data: BinaryIO | bytes, *, sha256: str | None = None,
              meta: ObjectMeta | None = None) -> ObjectInfo:
        try:
            return self._write(key, data, sha256, meta)
        except ObjectNotFound as error:
            raise self._unless_bucket_missing(key, error) from None

    def _unless_bucket_missing(self, key: str, error: ObjectNotFound) -> StorageError:
        """A write or copy answered 404: the bucket is gone (the location is unusable until
        it is created, as on a listing), or the error is about the object after all."""
        try:
            exists = self.call(key, lambda: self.bucket.exists(retry=None,
                                                                timeout=self.timeout))
        except StorageError:
            return error
        if exists:
            return error
        return LocationMissing(self.name, key, f"bucket {self.bucket_name} does not exist")

    def _write(self, key: str, data: BinaryIO | bytes, sha256: str | None,
               meta: ObjectMeta | None) -> ObjectInfo:
        full = self.full_key(key)
        stream: BinaryIO = io.BytesIO(data) if isinstance(data, bytes) else data
        hashes = UploadHashes()
        # one byte past a chunk tells whether a resumable session is needed
        first = read_exact(stream, self.upload_chunk_size + 1)
        hashes.update(first)
        if len(first) <= self.upload_chunk_size:
            check_sha256(self.name, key, sha256, hashes.sha256.hexdigest())
            stored = self._upload_whole(key, full, first, meta)
        else:
            stored = upload_resumable(self, key, full, stream, first, hashes, sha256, meta)
        self._check_stored(key, stored, hashes)
        return ObjectInfo(key=key, size=hashes.size, last_modified=stored.updated,
                          sha256=hashes.sha256.hexdigest())

    def _upload_whole(self, key: str, full: str, data: bytes,
                      meta: ObjectMeta | None) -> Stored:
        blob = self._new_blob(full, meta)
        content_type = (meta.content_type if meta else "") or OCTET

        def upload() -> None:
            # checksum="md5": the service refuses the upload if the bytes arrive altered
            blob.upload_from_file(io.BytesIO(data), size=len(data), content_type=content_type,
                                  checksum="md5", retry=None, timeout=self.timeout)

        self.call(key, upload)
        return Stored.of_blob(blob)

    def _check_stored(self, key: str, stored: Stored, hashes: UploadHashes) -> None:
        """Compare what the service says it stored with what was sent; remove a bad object."""
        problems = []
        if stored.size != hashes.size:
            problems.append(f"{stored.size} bytes stored, {hashes.size} sent")
        if stored.md5_hash is not None and stored.md5_hash != hashes.md5_b64():
            problems.append(f"MD5 {stored.md5_hash} stored, {hashes.md5_b64()} sent")
        if stored.crc32c is not None and stored.crc32c != hashes.crc32c_b64():
            problems.append(f"CRC32C {stored.crc32c} stored, {hashes.crc32c_b64()} sent")
        if not problems:
            return
        self._delete_generation(key, stored.generation)
        raise StorageError(self.name, key, "upload arrived altered (" + "; ".join(problems) +
                           "); the object was removed")

    def _delete_generation(self, key: str, generation: int | None) -> None:
        full = self.full_key(key)
        try:
            self.call(key, lambda: self.bucket.delete_blob(
                full, if_generation_match=generation, retry=None, timeout=self.timeout))
        except StorageError as exc:
            _log.warning("%s: %s: could not remove a bad object: %s", self.name, key, exc)

    def delete(self, key: str) -> None:
        full = self.full_key(key)
        with contextlib.suppress(ObjectNotFound):
            self.call(key, lambda: self.bucket.delete_blob(full, retry=None,
                                                           timeout=self.timeout))

    # --- server-side copy -------------------------------------------------------------------

    def copy_from(self, source: Storage, source_key: str, key: str, *,
                  sha256: str | None = None, size: int | None = None,
                  digest: Digest | None = None) -> CopyReport:
        """Server-side copy (rewrite) from another GcsStorage of the same service; other
        sources, or copy_mode "stream", stream the bytes through this process. A rewrite does
        not hash the bytes: ``sha256`` is not checked here; the report says what was verified
        (CRC32C and MD5 of the copy against the source's) and carries the copy's MD5 and
        CRC32C. A rewrite keeps the object's metadata, content type and encoding.

        With a ``digest`` GCS reports itself (MD5 or CRC32C: the source's from the listing),
        the rewrite is not pinned to a generation looked up first: engine.transfer compares
        the copy's checksum with the listed one, which also catches a source rewritten since
        the listing."""
        if not isinstance(source, GcsStorage) or self.copy_mode != "auto" \
                or source.endpoint != self.endpoint:
            return super().copy_from(source, source_key, key, sha256=sha256, size=size,
                                     digest=digest)
        full = self.full_key(key)
        listed = sha256 is None and digest is not None and digest.algorithm in ("md5", "crc32c")
        original = None if listed else source._get(source_key)
        # pin the generation that was looked at: its checksums are the ones compared below
        pinned = source.bucket.blob(source.full_key(source_key)) if original is None \
            else source.bucket.blob(original.name, generation=original.generation)
        destination = _RewriteTarget(full, self.bucket, kms_key_name=self.kms_key_name,
                                     max_bytes_per_call=self.rewrite_chunk_bytes)
        try:
            rewrite_until_done(destination, pinned, call=lambda op: self.call(key, op),
                               timeout=self.timeout, location=self.name, key=key)
        except ObjectNotFound as error:
            found = self._unless_bucket_missing(key, error)
            if found is error and original is None:
                # an unpinned rewrite's 404 is about the source object
                raise ObjectNotFound(source.name, source_key, "no such object") from None
            raise found from None
        copied = int(destination.size or 0)
        info = _info_of(key, destination)
        if original is None:
            return CopyReport(info=info, method="server-side", sha256=None, verified_by=None,
                              digests=info.digests)
        if copied != int(original.size or 0):
            self._delete_generation(key, destination.generation)
            raise StorageError(self.name, key, f"server-side copy holds {copied} bytes, the "
                               f"source {original.size}; the copy was removed")
        same = checksums_match(original, destination)
        if same is None:
            return CopyReport(info=info, method="server-side", sha256=None, verified_by=None,
                              digests=info.digests)
        if not same:
            self._delete_generation(key, destination.generation)
            raise StorageError(self.name, key, f"server-side copy holds CRC32C/MD5 "
                               f"{destination.crc32c}/{destination.md5_hash}, the source "
                               f"{original.crc32c}/{original.md5_hash}; the copy was removed")
        return CopyReport(info=info, method="server-side", sha256=None,
                          verified_by=VERIFIED_CRC32C_MD5, identical_to_source=True,
                          digests=info.digests)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._upload_http.close()
        with contextlib.suppress(Exception):
            self.client.close()

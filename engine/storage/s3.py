"""Amazon S3 backend (boto3), also for S3-compatible services and moto.

One ``S3Storage`` is a bucket plus prefix in one AWS region. Retries are ours, not botocore's
(botocore is set to a single attempt) so that throttling, timeouts and refused connections map
to Throttled / Unreachable after a known number of attempts with injectable sleep and jitter
(engine.storage.retry; what botocore's errors mean is in engine.storage.s3_errors).

How a failure ends up (after the retries of ``call``):

- NoSuchBucket: LocationMissing ("bucket X does not exist");
- wrong or missing credentials, 401/403 (InvalidAccessKeyId, SignatureDoesNotMatch,
  AccessDenied...): AccessDenied, not retried, the reason says to check the credentials;
- throttling (SlowDown, 503, 429...): Throttled after ``max_attempts``;
- other 5xx: StorageError ("the service kept answering 500 after N attempts");
- refused connections, DNS failures, dropped connections: Unreachable after
  CONNECT_ATTEMPTS; an endpoint that accepts and never answers: Unreachable after
  TIMEOUT_ATTEMPTS read timeouts.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar
from urllib.parse import unquote, urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    ProfileNotFound,
    ReadTimeoutError,
)

from engine.errors import (
    BadInput,
    LocationMissing,
    ObjectNotFound,
    StorageError,
)
from engine.model import Digest, ObjectInfo, ObjectMeta
from engine.storage.base import (
    CHUNK_SIZE,
    CopyReport,
    ListPage,
    Storage,
    check_sha256,
    closing_described,
    closing_stream,
    validate_prefix,
)
from engine.storage.digests import from_base64
from engine.storage.retry import (
    Attempts,
    Backoff,
    Describe,
    Failure,
    RetriedRequests,
    Retry,
    utc,
)
from engine.storage.s3_copy import (
    MAX_PART,
    MAX_PARTS,
    MIN_PART,
    _etag_hex,
    _md5_etag,
    _meta_args,
    _meta_of,
    copy_recorded,
    copy_unrecorded,
)
from engine.storage.s3_errors import NOISY_LOGGERS, REDACTIONS, classify, describe
from engine.storage.s3_errors import redact as redact  # where callers have found it
from engine.storage.s3_wire import Wire, WireDeclined

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

    from engine.storage.locations import S3Location

_T = TypeVar("_T")
_log = logging.getLogger(__name__)

#: Seconds to wait for a TCP connection. A reachable endpoint accepts in milliseconds; 10 s
#: rides out a congested network, and an endpoint that drops packets is Unreachable after
#: CONNECT_ATTEMPTS of them (about 30 s).
CONNECT_TIMEOUT = 10.0
#: Seconds to wait for the next bytes of an answer: twice botocore's default, because a single
#: CopyObject (up to 5 GiB, see multipart_threshold) may answer only once the copy is done; a
#: silence longer than that means the endpoint hangs.
READ_TIMEOUT = 120.0
#: Tries of a request whose connection is refused, cannot be resolved or drops: an outage
#: should surface within seconds, not after every one of ``max_attempts``.
CONNECT_ATTEMPTS = 3
#: Tries of a request that got no answer within READ_TIMEOUT: one retry for a single lost
#: answer, so an endpoint that accepts connections and never answers is Unreachable after
#: about 2 x READ_TIMEOUT (4 minutes), not max_attempts x READ_TIMEOUT (16 minutes).
TIMEOUT_ATTEMPTS = 2
#: Connections kept per client: the copy streams and the request pool of a replicator.
POOL_CONNECTIONS = 32

class _Reader:
    """A GetObject body that resumes with a ranged, If-Match GET after a broken connection."""

    def __init__(self, storage: S3Storage, key: str, response: Any) -> None:
        self._storage = storage
        self._key = key
        self._body = response["Body"]
        self._etag: str = response["ETag"]
        self._size: int = response["ContentLength"]
        self._pos = 0
        self.closed = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        amount = None if size is None or size < 0 else size
        failures = 0
        while True:
            try:
                data: bytes = self._body.read(amount)
            except (HTTPClientError, IncompleteReadError) as exc:
                failures += 1
                # a stream that breaks is resumed where it broke; one that hangs is not waited
                # for more than TIMEOUT_ATTEMPTS times
                limit = self._storage.retry.attempts.limit(Failure.HUNG) \
                    if isinstance(exc, ReadTimeoutError) else self._storage.max_attempts
                if failures >= limit:
                    raise self._storage._describe(self._key)(exc, classify(exc), failures) from exc
                _log.info("%s: %s: stream broke at byte %d, resuming",
                          self._storage.name, self._key, self._pos)
                self._storage.backoff(failures - 1)
                self._reopen()
                continue
            self._pos += len(data)
            return data

    def _reopen(self) -> None:
        with contextlib.suppress(Exception):
            self._body.close()
        if self._pos >= self._size:
            self._body = io.BytesIO(b"")
            return
        storage = self._storage
        response = storage.call(self._key, lambda: storage.client.get_object(
            Bucket=storage.bucket, Key=storage.full_key(self._key),
            Range=f"bytes={self._pos}-", IfMatch=self._etag))
        self._body = response["Body"]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                self._body.close()


class S3Storage(RetriedRequests, Storage):
    """A bucket and prefix in one region; safe to share between threads (one boto3 client)."""

    kind = "s3"
    keeps_metadata = True

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        region: str = "us-east-1",
        client: S3Client | None = None,
        endpoint_url: str | None = None,
        profile: str | None = None,
        sse_kms_key_id: str | None = None,
        multipart_threshold: int = MAX_PART,
        part_size: int = 512 * 1024**2,
        max_attempts: int = 8,
        copy_mode: str = "auto",
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_keys: int = 1000,
        backoff_base: float = 0.25,
        backoff_cap: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if not bucket:
            raise BadInput("an s3 location needs a bucket: s3://bucket/prefix")
        prefix = prefix.strip("/")
        self.name = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        validate_prefix(self.name, prefix)
        if not MIN_PART <= part_size <= MAX_PART:
            raise BadInput(f"{self.name}: part_size must be between 5 MiB and 5 GiB")
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.region = region
        self.endpoint_url = endpoint_url
        self.sse_kms_key_id = sse_kms_key_id
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.max_attempts = max(1, max_attempts)
        self.copy_mode = copy_mode
        #: False once the service showed it computes no checksum on CopyObject
        self._copy_checksums = True
        self.max_keys = max(1, min(max_keys, 1000))
        self.retry = Retry(self.name, (ClientError, BotoCoreError), classify,
                           Attempts(self.max_attempts, CONNECT_ATTEMPTS, TIMEOUT_ATTEMPTS),
                           Backoff(backoff_base, backoff_cap, sleep, jitter), _log)
        #: (connect, read) timeouts in seconds of the client this storage built
        self.timeouts = (CONNECT_TIMEOUT if connect_timeout is None else connect_timeout,
                         READ_TIMEOUT if read_timeout is None else read_timeout)
        REDACTIONS.install(NOISY_LOGGERS)
        self._session: boto3.session.Session | None = None
        self.client: S3Client = client if client is not None else self._make_client(
            region, endpoint_url, profile, *self.timeouts)
        #: listings without botocore's per-call cost (engine.storage.s3_wire): made at the
        #: first listing; False where botocore sends them (a client given, a proxy, ...)
        self._wire: Wire | bool | None = None if client is None else False

    def _make_client(self, region: str, endpoint_url: str | None, profile: str | None,
                     connect_timeout: float, read_timeout: float) -> S3Client:
        extra: dict[str, Any] = {}
        if endpoint_url:
            # S3-compatible services and emulators rarely resolve bucket subdomains.
            extra["s3"] = {"addressing_style": "path"}
        config = Config(
            region_name=region,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"total_max_attempts": 1, "mode": "standard"},  # we retry, see call()
            max_pool_connections=POOL_CONNECTIONS,
            # moto returns wrong CRCs on copies; integrity is checked with MD5/SHA-256 here.
            response_checksum_validation="when_required",
            request_checksum_calculation="when_required",
            user_agent_extra="btar",
            **extra,
        )
        try:
            session = boto3.session.Session(profile_name=profile) if profile \
                else boto3.session.Session()
        except ProfileNotFound:
            raise BadInput(f"{self.name}: AWS profile {profile!r} is not configured") from None
        self._session = session
        return session.client("s3", region_name=region, endpoint_url=endpoint_url,
                              config=config)

    def _wire_path(self) -> Wire | None:
        """The lean listing path, or None where botocore must send (see s3_wire)."""
        if self._wire is None:
            assert self._session is not None
            session = self._session
            self._wire = Wire.for_client(
                self.client, self.bucket, session.get_credentials(),
                session._session.get_config_variable("ca_bundle"),
                path_style=bool(self.endpoint_url), connect_timeout=self.timeouts[0],
                read_timeout=self.timeouts[1], pool_size=POOL_CONNECTIONS) or False
        return self._wire if isinstance(self._wire, Wire) else None

    def _lean(self, lean: Callable[[Wire], _T], botocore: Callable[[], _T]) -> _T:
        """A request on the lean path where it applies, else (or after a redirect, from
        then on) through botocore."""
        wire = self._wire_path()
        if wire is not None:
            try:
                return lean(wire)
            except WireDeclined:
                self._wire = False
        return botocore()

    def copy_object(self, **params: Any) -> Any:
        """CopyObject into this bucket (botocore's parameters and answer)."""
        return self._lean(lambda wire: wire.copy_object(params),
                          lambda: self.client.copy_object(**params))

    @classmethod
    def from_location(
        cls,
        location: S3Location,
        region_id: str,
        *,
        client: S3Client | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> S3Storage:
        """Open ``s3://bucket/prefix``; the region is ``location.region`` or comes from the btar
        region id (``aws-eu-west-1`` -> ``eu-west-1``)."""
        parts = urlsplit(location.url)
        if parts.scheme != "s3" or not parts.hostname:
            raise BadInput(f"{location.display()}: an s3 location is s3://bucket/prefix")
        region = location.region
        if region is None:
            if not region_id.startswith("aws-") or len(region_id) <= 4:
                raise BadInput(f"{location.display()}: {region_id} is not an AWS region id; "
                               "set region in the location")
            region = region_id[4:]
        return cls(
            parts.netloc,
            unquote(parts.path),
            region=region,
            client=client,
            endpoint_url=location.endpoint_url,
            profile=location.profile,
            sse_kms_key_id=location.sse_kms_key_id,
            multipart_threshold=location.multipart_threshold,
            part_size=location.part_size,
            max_attempts=location.max_attempts,
            copy_mode=location.copy_mode,
            connect_timeout=connect_timeout,
            read_timeout=location.read_timeout if read_timeout is None else read_timeout,
            sleep=sleep,
            jitter=jitter,
        )

    def __repr__(self) -> str:
        return f"S3Storage({self.name!r}, region={self.region!r})"

    # --- retries and errors -----------------------------------------------------------------

    def _describe(self, key: str) -> Describe:
        """How a request about ``key`` that failed for good is reported: one line that never
        holds a credential."""
        return lambda exc, failure, attempts: describe(
            exc, failure, attempts, location=self.name, bucket=self.bucket, key=key,
            read_timeout=self.timeouts[1])

    def _sse(self) -> dict[str, Any]:
        if self.sse_kms_key_id:
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.sse_kms_key_id}
        return {}

    # --- the Storage protocol ---------------------------------------------------------------

    def list_page(self, prefix: str = "", start_after: str | None = None,
                  limit: int = 1000) -> ListPage:
        validate_prefix(self.name, prefix)
        if limit < 1:
            raise ValueError("limit must be at least 1")
        base: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix + prefix}
        if start_after is not None:
            base["StartAfter"] = self.prefix + start_after
        objects: list[ObjectInfo] = []
        last: str | None = None
        token: str | None = None
        truncated = False
        while len(objects) < limit:
            params = dict(base, MaxKeys=min(self.max_keys, limit - len(objects)))
            if token is not None:
                params["ContinuationToken"] = token

            def page(p: dict[str, Any] = params) -> Any:
                return self._lean(lambda wire: wire.list_objects_v2(p),
                                  lambda: self.client.list_objects_v2(**p))

            response = self.call("", page)
            for item in response.get("Contents", []):
                key = item["Key"][len(self.prefix):]
                last = key
                if key.endswith("/"):
                    continue  # a "folder" placeholder made by consoles, not an object
                objects.append(ObjectInfo(key=key, size=item["Size"],
                                          last_modified=utc(item["LastModified"])))
            truncated = bool(response.get("IsTruncated"))
            token = response.get("NextContinuationToken")
            if not truncated or token is None:
                truncated = False
                break
        return ListPage(tuple(objects), last if truncated else None)

    def _head(self, key: str, *, checksums: bool = False) -> Any:
        """HeadObject; with ``checksums``, the object's stored full-object checksums too."""
        full = self.full_key(key)
        extra: dict[str, Any] = {"ChecksumMode": "ENABLED"} if checksums else {}
        return self.call(key, lambda: self.client.head_object(Bucket=self.bucket, Key=full,
                                                              **extra))

    def stat(self, key: str) -> ObjectInfo:
        return _described(key, self._head(key))

    def _head_or_missing(self, key: str) -> Any:
        """HeadObject with checksums; a 404 (a HEAD answer has no body to tell a missing
        object from a missing bucket) asks whether the bucket exists, as a copy's would."""
        try:
            return self._head(key, checksums=True)
        except ObjectNotFound:
            try:
                self.call(key, lambda: self.client.head_bucket(Bucket=self.bucket))
            except (ObjectNotFound, LocationMissing):
                raise LocationMissing(self.name, key,
                                      f"bucket {self.bucket} does not exist") from None
            except StorageError:
                pass  # the object's absence is what is known
            raise

    def open_read(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]:
        full = self.full_key(key)
        response = self.call(key, lambda: self.client.get_object(Bucket=self.bucket, Key=full))
        return closing_stream(_Reader(self, key, response))

    def open_described(self, key: str) -> contextlib.AbstractContextManager[
            tuple[BinaryIO, ObjectInfo]]:
        # GetObject answers with the metadata and the ETag: no HeadObject needed.
        full = self.full_key(key)
        response = self.call(key, lambda: self.client.get_object(Bucket=self.bucket, Key=full))
        return closing_described(_Reader(self, key, response), _described(key, response))

    def _read_part(self, stream: BinaryIO, digest: Any, buffer: io.BytesIO) -> int:
        """Fill ``buffer`` with up to one part of ``stream``; returns its length."""
        buffer.seek(0)
        buffer.truncate()
        filled = 0
        while filled < self.part_size:
            chunk = stream.read(min(CHUNK_SIZE, self.part_size - filled))
            if not chunk:
                break
            digest.update(chunk)
            buffer.write(chunk)
            filled += len(chunk)
        return filled

    def write(self, key: str, data: BinaryIO | bytes, *, sha256: str | None = None,
              meta: ObjectMeta | None = None) -> ObjectInfo:
        full = self.full_key(key)
        stream: BinaryIO = io.BytesIO(data) if isinstance(data, bytes) else data
        digest = hashlib.sha256()
        buffer = io.BytesIO()
        size = self._read_part(stream, digest, buffer)
        if size < self.part_size and size <= self.multipart_threshold:
            check_sha256(self.name, key, sha256, digest.hexdigest())
            md5 = _md5_b64(buffer)

            def put() -> Any:
                buffer.seek(0)
                return self.client.put_object(Bucket=self.bucket, Key=full, Body=buffer,
                                              ContentMD5=md5, **self._sse(), **_meta_args(meta))

            self.call(key, put)
            total = size
        else:
            total = self._multipart_write(key, full, stream, digest, buffer, size, sha256, meta)
        head = self._head(key)
        if head["ContentLength"] != total:
            raise StorageError(self.name, key, f"stored {head['ContentLength']} bytes, "
                               f"sent {total}")
        return ObjectInfo(key=key, size=total, last_modified=utc(head["LastModified"]),
                          sha256=digest.hexdigest())

    def _multipart_write(self, key: str, full: str, stream: BinaryIO, digest: Any,
                         buffer: io.BytesIO, size: int, sha256: str | None,
                         meta: ObjectMeta | None) -> int:
        """Upload parts as they are read; complete only once the SHA-256 matched."""
        created = self.call(key, lambda: self.client.create_multipart_upload(
            Bucket=self.bucket, Key=full, **self._sse(), **_meta_args(meta)))
        upload_id = created["UploadId"]
        parts: list[CompletedPartTypeDef] = []
        total = 0
        try:
            while size:
                number = len(parts) + 1
                if number > MAX_PARTS:
                    raise StorageError(self.name, key, f"more than {MAX_PARTS} parts of "
                                       f"{self.part_size} bytes; raise part_size")
                md5 = _md5_b64(buffer)

                def upload(n: int = number, m: str = md5) -> Any:
                    buffer.seek(0)
                    return self.client.upload_part(Bucket=self.bucket, Key=full,
                                                   UploadId=upload_id, PartNumber=n,
                                                   Body=buffer, ContentMD5=m)

                response = self.call(key, upload)
                parts.append({"PartNumber": number, "ETag": response["ETag"]})
                total += size
                size = self._read_part(stream, digest, buffer)
            if not parts:  # only reachable for an empty object over a threshold of 0
                raise StorageError(self.name, key, "nothing to upload")
            check_sha256(self.name, key, sha256, digest.hexdigest())
            self.call(key, lambda: self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=full, UploadId=upload_id,
                MultipartUpload={"Parts": parts}))
        except BaseException:
            self._abort(key, full, upload_id)
            raise
        return total

    def _abort(self, key: str, full: str, upload_id: str) -> None:
        try:
            self.call(key, lambda: self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=full, UploadId=upload_id))
        except StorageError as exc:
            # the parts stay invisible; a bucket lifecycle rule cleans them up
            _log.warning("%s: %s: could not abort multipart upload: %s", self.name, key, exc)

    def delete(self, key: str) -> None:
        full = self.full_key(key)
        with contextlib.suppress(ObjectNotFound):
            self.call(key, lambda: self.client.delete_object(Bucket=self.bucket, Key=full))

    # --- server-side copy -------------------------------------------------------------------

    def copy_from(self, source: Storage, source_key: str, key: str, *,
                  sha256: str | None = None, size: int | None = None,
                  digest: Digest | None = None) -> CopyReport:
        """Server-side copy from another S3Storage of the same service (CopyObject, or
        UploadPartCopy above ``multipart_threshold``); other sources, or copy_mode "stream",
        stream the bytes through this process. A server-side copy does not hash the bytes:
        ``sha256`` is not checked here, the report says what was verified. Metadata, content
        type and encoding go with the copy (MetadataDirective COPY)."""
        if not isinstance(source, S3Storage) or self.copy_mode != "auto" \
                or source.endpoint_url != self.endpoint_url:
            return super().copy_from(source, source_key, key, sha256=sha256, size=size,
                                     digest=digest)
        try:
            if sha256 is None:
                return copy_unrecorded(self, source, source_key, key, size, digest)
            return copy_recorded(self, source, source_key, key, size)
        except LocationMissing as error:
            if error.location == f"s3://{source.bucket}" != f"s3://{self.bucket}":
                # the source's bucket is gone, not this one: a fault of the source's side
                raise LocationMissing(source.name, source_key,
                                      f"bucket {source.bucket} does not exist") from None
            raise

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


def _described(key: str, answer: Any) -> ObjectInfo:
    """What a HeadObject or GetObject answer says of an object: its size, metadata and the
    digests S3 stored (a single-part MD5 ETag; full-object checksums when asked for)."""
    digests: list[Digest] = []
    if answer.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
        for name in ("sha256", "sha1"):
            found = from_base64(name, answer.get(f"Checksum{name.upper()}"))
            if found is not None:
                digests.append(found)
    # an object encrypted with a customer key (SSE-C) has an ETag that is no MD5 either
    if _md5_etag(answer.get("ETag"), answer.get("ServerSideEncryption")) \
            and not answer.get("SSECustomerAlgorithm"):
        digests.append(Digest("md5", _etag_hex(answer["ETag"])))
    return ObjectInfo(key=key, size=answer["ContentLength"],
                      last_modified=utc(answer["LastModified"]), digests=tuple(digests),
                      meta=_meta_of(answer))


def _md5_b64(buffer: io.BytesIO) -> str:
    with buffer.getbuffer() as view:  # a live view would stop the buffer from resizing
        digest = hashlib.md5(view, usedforsecurity=False)
    return base64.b64encode(digest.digest()).decode("ascii")

"""Azure Blob Storage backend (azure-storage-blob): one container plus prefix per region.

Writes stage blocks and commit the block list only after the running SHA-256 was checked, so a
bad upload never becomes visible. Copies between two Azure locations are server-side: Copy Blob
from a short-lived read SAS of the source, polled until done, then checked by Content-MD5
(engine.storage.azure_copy).

How a failure ends up (after the retries of ``_call``, engine.storage.retry; what azure-core's
errors mean is in engine.storage.azure_errors):

- ContainerNotFound: LocationMissing ("the container does not exist");
- 401/403 (AuthenticationFailed, AuthorizationFailure...) or a credential that cannot get a
  token: AccessDenied, not retried, the reason says to check the key or SAS token;
- ServerBusy, 503, 429: Throttled after ``max_attempts``; other 5xx: StorageError ("the
  service kept answering 500 after N attempts");
- refused connections, DNS failures, dropped connections: Unreachable after
  UNREACHABLE_ATTEMPTS; an endpoint that accepts and never answers: Unreachable after
  TIMEOUT_ATTEMPTS read timeouts;
- CannotVerifyCopySource: StorageError about the copy source (its SAS, its network rules or
  the object itself), which is no fault of the destination.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import io
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, Literal, TypeVar
from urllib.parse import unquote, urlsplit

from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import (
    AzureError,
)
from azure.storage.blob import (
    BlobBlock,
    BlobClient,
    BlobProperties,
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    UserDelegationKey,
    generate_blob_sas,
)

from engine.errors import (
    ObjectNotFound,
    StorageError,
)
from engine.model import Digest, ObjectInfo, ObjectMeta
from engine.storage.azure_copy import (
    MAX_BLOCKS,
    VERIFIED_BY_SERVICE,
    copy_blob,
    copy_by_blocks,
    digests_of,
    info_of,
    md5_of,
    read_back,
    settings_of,
    when_of,
)
from engine.storage.azure_errors import NOISY_LOGGERS, REDACTIONS, classify, describe, scrub
from engine.storage.base import (
    CHUNK_SIZE,
    CopyReport,
    ListPage,
    Storage,
    check_sha256,
    validate_key,
    validate_prefix,
)
from engine.storage.locations import AzureLocation
from engine.storage.retry import Attempts, Backoff, Describe, Retry, utc

T = TypeVar("T")
_log = logging.getLogger(__name__)

GIB = 1024**3
MIB = 1024**2
#: Default block size of a streamed write: the most a write holds in memory at first.
DEFAULT_BLOCK_SIZE = 4 * MIB
#: A block blob has at most MAX_BLOCKS blocks of at most 4000 MiB each.
MAX_BLOCK_SIZE = 4000 * MIB
#: Blocks double in size after every this many, so a stream of unknown length never runs out of
#: blocks (4 MiB blocks alone would stop at 195 GiB); memory stays one block.
BLOCKS_PER_SIZE_STEP = 5_000
#: Range size of a block-wise server-side copy (Put Block From URL).
DEFAULT_COPY_BLOCK_SIZE = 100 * MIB
#: Fixed part of the server-side copy timeout, on top of copy_timeout_per_gib.
COPY_TIMEOUT_FIXED = 60.0
#: Listing with startFrom needs this service version; older pinned versions scan and filter.
START_FROM_API_VERSION = "2026-02-06"
#: Tries of a request whose endpoint cannot be reached at all (refused, DNS) or drops the
#: connection: an outage should surface within seconds.
UNREACHABLE_ATTEMPTS = 3
#: Tries of a request whatever the failure (throttling, 5xx), by default.
MAX_ATTEMPTS = 8
#: Seconds to wait for a TCP connection: the SDK's default. A reachable endpoint accepts in
#: milliseconds; one that drops packets is Unreachable after UNREACHABLE_ATTEMPTS of them.
CONNECT_TIMEOUT = 20.0
#: Seconds to wait for the next bytes of an answer: the SDK's default. Copies of any size are
#: asynchronous (Copy Blob) or carry their own longer timeout (Put Block From URL), so a
#: silence this long means the endpoint hangs.
READ_TIMEOUT = 60.0
#: Tries of a request that got no answer within READ_TIMEOUT: one retry for a single lost
#: answer, so an endpoint that accepts connections and never answers is Unreachable after
#: about 2 x READ_TIMEOUT (2 minutes), not MAX_ATTEMPTS x READ_TIMEOUT.
TIMEOUT_ATTEMPTS = 2
#: Copy statuses of a blob that is not (yet) a complete object.
_INCOMPLETE_COPY = frozenset({"pending", "failed", "aborted"})

CopyMode = Literal["auto", "stream"]


class AzureStorage(Storage):
    """Blobs under ``prefix`` in one container. Thread-safe: the SDK clients are."""

    kind = "azure"
    keeps_metadata = True

    def __init__(
        self,
        container: ContainerClient,
        *,
        prefix: str = "",
        name: str | None = None,
        encryption_scope: str | None = None,
        copy_mode: CopyMode = "auto",
        copy_timeout_per_gib: float = 600.0,
        block_size: int = DEFAULT_BLOCK_SIZE,
        copy_block_size: int = DEFAULT_COPY_BLOCK_SIZE,
        max_attempts: int = MAX_ATTEMPTS,
        read_timeout: float = READ_TIMEOUT,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        poll_interval: float = 0.25,
        poll_interval_max: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        """Wrap a ContainerClient (built by ``from_location``, or injected by tests).

        ``sleep``, ``clock`` and ``jitter`` drive retries and copy polling, so tests need no real
        waiting. ``block_size`` bounds the memory of a write; ``max_attempts`` counts tries of one
        request against throttling, transient errors and unreachable endpoints.
        """
        if not 1 <= block_size <= MAX_BLOCK_SIZE:
            raise ValueError("block_size must be between 1 byte and 4000 MiB")
        if not 1 <= copy_block_size <= MAX_BLOCK_SIZE:
            raise ValueError("copy_block_size must be between 1 byte and 4000 MiB")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if prefix:
            validate_prefix(f"az://{container.container_name}", prefix)
            prefix = prefix.rstrip("/") + "/"
        self._container = container
        self._prefix = prefix
        self._account = container.account_name or ""
        self.name = name or f"az://{self._account}/{container.container_name}/{prefix}".rstrip("/")
        self.encryption_scope = encryption_scope
        self.copy_mode: CopyMode = copy_mode
        self.copy_timeout_per_gib = copy_timeout_per_gib
        self.block_size = block_size
        self.copy_block_size = copy_block_size
        self.max_attempts = max_attempts
        #: the client's read timeout in seconds (for messages)
        self.read_timeout = read_timeout
        self.retry = Retry(self.name, (AzureError,), classify,
                           Attempts(max_attempts, UNREACHABLE_ATTEMPTS, TIMEOUT_ATTEMPTS),
                           Backoff(backoff_base, backoff_cap, sleep, jitter), _log, chain=False)
        self._poll_interval = poll_interval
        self._poll_interval_max = poll_interval_max
        self._sleep = sleep
        self._clock = clock
        self._delegation: tuple[UserDelegationKey, datetime] | None = None
        self._delegation_lock = threading.Lock()
        REDACTIONS.install(NOISY_LOGGERS)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_location(
        cls,
        location: AzureLocation,
        region_id: str,
        *,
        block_size: int = DEFAULT_BLOCK_SIZE,
        max_attempts: int | None = None,
        connection_timeout: float | None = None,
        read_timeout: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> AzureStorage:
        """Open ``az://account/container/prefix`` with the credential the location names.

        Credential order: the shared key in ``account_key_env``, the SAS token in
        ``sas_token_env``, else azure-identity's DefaultAzureCredential when installed.
        ``region_id`` is not needed: an Azure account lives in one region.
        """
        del region_id
        display = location.display()
        parts = urlsplit(location.url)
        account = parts.hostname or ""
        container_name, _, prefix = unquote(parts.path).lstrip("/").partition("/")
        if not account or not container_name:
            raise StorageError(display, "", "an Azure location is az://account/container/prefix")
        account_url = location.account_url or f"https://{account}.blob.core.windows.net"
        credential = _credential(location, account, display)
        read_timeout = read_timeout or location.read_timeout or READ_TIMEOUT
        max_attempts = max_attempts or location.max_attempts
        options: dict[str, Any] = {
            # Retries are ours (injectable sleep, typed errors); the SDK's would sleep for real.
            "retry_total": 0,
            "connection_timeout": CONNECT_TIMEOUT if connection_timeout is None
            else connection_timeout,
            "read_timeout": read_timeout,
            # Bound what one download request or single upload holds in memory.
            "max_single_get_size": block_size,
            "max_chunk_get_size": block_size,
            "max_single_put_size": block_size,
            "max_block_size": block_size,
        }
        if location.api_version:
            options["api_version"] = location.api_version
        try:
            container = ContainerClient(account_url, container_name, credential=credential,
                                        **options)
        except ValueError as exc:
            raise StorageError(display, "", f"cannot open the container: {scrub(str(exc))}") \
                from None
        return cls(
            container,
            prefix=prefix,
            name=display.rstrip("/"),
            encryption_scope=location.encryption_scope,
            copy_mode=location.copy_mode,
            copy_timeout_per_gib=location.copy_timeout_per_gib,
            block_size=block_size,
            max_attempts=MAX_ATTEMPTS if max_attempts is None else max_attempts,
            read_timeout=read_timeout,
            sleep=sleep,
        )

    def __repr__(self) -> str:
        return f"AzureStorage({self.name!r})"

    def close(self) -> None:
        """Close the HTTP session of the container client."""
        self._container.close()

    # -- helpers -----------------------------------------------------------------------------

    def _blob(self, key: str) -> BlobClient:
        return self._container.get_blob_client(self._prefix + key)

    def _describe(self, what: str, key: str) -> Describe:
        """How ``what`` on ``key`` that failed for good is reported."""
        return lambda exc, failure, attempts: describe(
            exc, failure, attempts, location=self.name, key=key, what=what,
            read_timeout=self.read_timeout)

    def _call(self, what: str, key: str, action: Callable[[], T]) -> T:
        """Run one request, retrying throttling, transient errors and unreachable endpoints
        with exponential backoff and jitter; map what remains to engine errors."""
        return self.retry.run(key, action, self._describe(what, key))

    def _error(self, what: str, key: str, exc: AzureError) -> StorageError:
        return self._describe(what, key)(exc, classify(exc), 1)

    def _properties(self, key: str) -> BlobProperties:
        blob = self._blob(key)
        props = self._call("stat", key, blob.get_blob_properties)
        if props.copy.status in _INCOMPLETE_COPY:
            # The destination of a copy in progress, failed or aborted is not an object yet.
            raise ObjectNotFound(self.name, key, f"no such object (copy {props.copy.status})")
        return props

    # -- the Storage protocol ----------------------------------------------------------------

    def list_page(self, prefix: str = "", start_after: str | None = None,
                  limit: int = 1000) -> ListPage:
        validate_prefix(self.name, prefix)
        if limit < 1:
            raise ValueError("limit must be at least 1")
        options: dict[str, Any] = {"results_per_page": min(limit + 1, 5000)}
        if start_after is not None and start_after > prefix \
                and str(self._container.api_version) >= START_FROM_API_VERSION:
            options["start_from"] = self._prefix + start_after  # inclusive: skipped below
        full_prefix = self._prefix + prefix

        def collect() -> list[ObjectInfo]:
            found: list[ObjectInfo] = []
            pages = self._container.list_blobs(name_starts_with=full_prefix or None,
                                               include=["copy"], **options)
            for props in pages:
                key = props.name[len(self._prefix):]
                # Filter even with startFrom: older services ignore or lack it.
                if start_after is not None and key <= start_after:
                    continue
                if props.copy is not None and props.copy.status in _INCOMPLETE_COPY:
                    continue
                # the listing carries Content-MD5 (when the writer set one) at no extra cost
                found.append(ObjectInfo(key, props.size, utc(props.last_modified),
                                        digests=digests_of(props)))
                if len(found) > limit:
                    break
            return found

        found = self._call("list", "", collect)
        chosen = tuple(found[:limit])
        more = len(found) > limit
        return ListPage(chosen, chosen[-1].key if more else None)

    def stat(self, key: str) -> ObjectInfo:
        validate_key(self.name, key)
        return info_of(key, self._properties(key))

    @contextlib.contextmanager
    def _open(self, key: str) -> Iterator[tuple[BinaryIO, ObjectInfo]]:
        validate_key(self.name, key)
        blob = self._blob(key)
        # decompress=False: a blob stored with Content-Encoding gzip (Barman, pghoard) is
        # read as stored; the SDK would otherwise hand over other bytes than were hashed
        downloader = self._call("read", key, lambda: blob.download_blob(max_concurrency=1,
                                                                         decompress=False))
        if downloader.properties.copy.status in _INCOMPLETE_COPY:
            raise ObjectNotFound(self.name, key, "no such object (copy in progress)")
        raw = _DownloadReader(downloader.chunks(),
                              lambda exc: self._error("read", key, exc))
        with io.BufferedReader(raw, CHUNK_SIZE) as stream:
            yield stream, info_of(key, downloader.properties)

    @contextlib.contextmanager
    def _open_stream(self, key: str) -> Iterator[BinaryIO]:
        with self._open(key) as (stream, _):
            yield stream

    def open_read(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]:
        return self._open_stream(key)

    def open_described(self, key: str) -> contextlib.AbstractContextManager[
            tuple[BinaryIO, ObjectInfo]]:
        # the download's answer carries the properties: no Get Blob Properties needed
        return self._open(key)

    def write(self, key: str, data: BinaryIO | bytes, *, sha256: str | None = None,
              meta: ObjectMeta | None = None) -> ObjectInfo:
        validate_key(self.name, key)
        metadata = meta.as_dict if meta and meta.metadata else None
        stream: BinaryIO = io.BytesIO(data) if isinstance(data, bytes) else data
        sha = hashlib.sha256()
        md5 = hashlib.md5(usedforsecurity=False)
        blob = self._blob(key)
        scope = self.encryption_scope
        first = _read_full(stream, self.block_size)
        sha.update(first)
        md5.update(first)
        if len(first) < self.block_size:
            # Everything fits one request: check the hash, then a single Put Blob.
            check_sha256(self.name, key, sha256, sha.hexdigest())
            settings = settings_of(meta, md5.digest())
            result = self._call("write", key, lambda: blob.upload_blob(
                first, overwrite=True, content_settings=settings, validate_content=True,
                max_concurrency=1, encryption_scope=scope, metadata=metadata))
            return ObjectInfo(key, len(first), when_of(result), sha.hexdigest())
        # Staged blocks stay invisible until the block list is committed, which happens only
        # after the SHA-256 of everything staged was checked.
        run = uuid.uuid4().hex
        block_ids: list[str] = []
        size = 0
        chunk = first
        while chunk:
            if len(block_ids) >= MAX_BLOCKS:
                raise StorageError(self.name, key, "object too large for one block blob")
            block_id = f"{run}-{len(block_ids):06d}"
            self._call("write", key, functools.partial(
                blob.stage_block, block_id, chunk, length=len(chunk), validate_content=True,
                encryption_scope=scope))
            block_ids.append(block_id)
            size += len(chunk)
            chunk = _read_full(stream, self._block_size_for(len(block_ids)))
            sha.update(chunk)
            md5.update(chunk)
        check_sha256(self.name, key, sha256, sha.hexdigest())
        settings = settings_of(meta, md5.digest())
        blocks = [BlobBlock(block_id=block_id) for block_id in block_ids]
        result = self._call("write", key, lambda: blob.commit_block_list(
            blocks, content_settings=settings, encryption_scope=scope, metadata=metadata))
        return ObjectInfo(key, size, when_of(result), sha.hexdigest())

    def _block_size_for(self, index: int) -> int:
        return min(MAX_BLOCK_SIZE, self.block_size << (index // BLOCKS_PER_SIZE_STEP))

    def delete(self, key: str) -> None:
        validate_key(self.name, key)
        blob = self._blob(key)
        with contextlib.suppress(ObjectNotFound):
            self._call("delete", key, lambda: blob.delete_blob(delete_snapshots="include"))

    # -- copies ------------------------------------------------------------------------------

    def copy_from(self, source: Storage, source_key: str, key: str, *,
                  sha256: str | None = None, size: int | None = None,
                  digest: Digest | None = None) -> CopyReport:
        """Server-side copy from another Azure location when copy_mode is "auto"; otherwise
        (or from another backend kind) stream the bytes through this process. Either way the
        copy keeps the blob's metadata (names as Azure spells them), content type and
        encoding; the report carries the copy's Content-MD5 where the source has one."""
        validate_key(source.name, source_key)
        validate_key(self.name, key)
        if not isinstance(source, AzureStorage) or self.copy_mode != "auto":
            return super().copy_from(source, source_key, key, sha256=sha256, size=size,
                                     digest=digest)
        src = source._properties(source_key)
        timeout = COPY_TIMEOUT_FIXED + self.copy_timeout_per_gib * src.size / GIB
        # The SAS outlives the copy timeout so a slow copy is abandoned by us, not by the SAS.
        url = source._read_url(source_key, timedelta(seconds=timeout + 3600))
        if self.encryption_scope:
            # Copy Blob (asynchronous) cannot set an encryption scope; Put Block From URL can.
            report = copy_by_blocks(self, url, src, key, timeout)
        else:
            report = copy_blob(self, url, src, key, timeout)
        if sha256 is not None or report.verified_by == VERIFIED_BY_SERVICE:
            return report
        return read_back(self, key, report, md5_of(src), digest)

    def _read_url(self, key: str, valid_for: timedelta) -> str:
        """The blob's URL with a read-only SAS that another account's copy can use."""
        blob = self._blob(key)
        url = blob.url
        if urlsplit(url).query:
            return url  # the client already authenticates with a SAS token
        credential = self._container.credential
        now = datetime.now(UTC)
        common: dict[str, Any] = {
            "account_name": self._account,
            "container_name": self._container.container_name,
            "blob_name": blob.blob_name,
            "permission": BlobSasPermissions(read=True),
            "start": now - timedelta(minutes=5),  # tolerate clock skew
            "expiry": now + valid_for,
        }
        account_key = getattr(credential, "account_key", None)
        if isinstance(account_key, str):
            sas = generate_blob_sas(account_key=account_key, **common)
        elif hasattr(credential, "get_token"):
            sas = generate_blob_sas(user_delegation_key=self._delegation_key(now + valid_for),
                                    **common)
        else:
            return url  # anonymous access to a public container
        return f"{url}?{sas}"

    def _delegation_key(self, needed_until: datetime) -> UserDelegationKey:
        """A user delegation key (Entra ID credentials), reused while it stays valid."""
        with self._delegation_lock:
            if self._delegation is not None and self._delegation[1] >= needed_until:
                return self._delegation[0]
            now = datetime.now(UTC)
            expiry = max(needed_until, now + timedelta(hours=12))
            expiry = min(expiry, now + timedelta(days=7))  # the service's maximum
            endpoint = self._container.primary_endpoint
            service = BlobServiceClient(endpoint[: endpoint.rindex("/")],
                                        credential=self._container.credential)
            key = self._call("delegation key", "", lambda: service.get_user_delegation_key(
                now - timedelta(minutes=5), expiry))
            self._delegation = (key, expiry)
            return key


class _DownloadReader(io.RawIOBase):
    """A raw stream over the downloader's chunk iterator, with SDK errors mapped."""

    def __init__(self, chunks: Iterator[bytes],
                 map_error: Callable[[AzureError], StorageError]) -> None:
        super().__init__()
        self._chunks = chunks
        self._map_error = map_error
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = memoryview(next(self._chunks))
            except StopIteration:
                return 0
            except AzureError as exc:
                raise self._map_error(exc) from None
        view = memoryview(buffer).cast("B")
        count = min(len(view), len(self._pending))
        view[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


def _credential(location: AzureLocation, account: str, display: str) -> Any:
    """The credential the location names; never put a value into a message."""
    if location.account_key_env:
        key = os.environ.get(location.account_key_env, "").strip()
        if not key:
            raise StorageError(display, "", f"account_key_env names {location.account_key_env},"
                               " which is not set in the environment")
        try:
            base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError):
            raise StorageError(display, "", f"the value of {location.account_key_env} is not a "
                               "base64 storage account key") from None
        return AzureNamedKeyCredential(account, key)
    if location.sas_token_env:
        sas = os.environ.get(location.sas_token_env, "").strip().lstrip("?")
        if not sas:
            raise StorageError(display, "", f"sas_token_env names {location.sas_token_env},"
                               " which is not set in the environment")
        return sas
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise StorageError(
            display, "", "no credential: set account_key_env or sas_token_env in the location "
            "(the name of an environment variable), or install azure-identity to use "
            "DefaultAzureCredential") from None
    return DefaultAzureCredential()


def _read_full(stream: BinaryIO, size: int) -> bytes:
    """Read ``size`` bytes unless the stream ends first (streams may return short reads)."""
    first = stream.read(size)
    if len(first) == size or not first:
        return first
    parts = [first]
    have = len(first)
    while have < size:
        more = stream.read(size - have)
        if not more:
            break
        parts.append(more)
        have += len(more)
    return b"".join(parts)

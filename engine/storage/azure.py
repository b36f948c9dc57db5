"""Azure Blob Storage backend (azure-storage-blob): one container plus prefix per region.

Writes stage blocks and commit the block list only after the running SHA-256 was checked, so a
bad upload never becomes visible. Copies between two Azure locations are server-side: Copy Blob
from a short-lived read SAS of the source, polled until done, then checked by Content-MD5.

How a failure ends up (after the retries of ``_call``):

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
import dataclasses
import functools
import hashlib
import io
import logging
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, Literal, TypeVar
from urllib.parse import unquote, urlsplit

from azure.core import MatchConditions
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.storage.blob import (
    BlobBlock,
    BlobClient,
    BlobProperties,
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    ContentSettings,
    UserDelegationKey,
    generate_blob_sas,
)

from engine.errors import (
    AccessDenied,
    ChecksumMismatch,
    LocationMissing,
    ObjectNotFound,
    StorageError,
    Throttled,
    Unreachable,
)
from engine.model import Digest, ObjectInfo, ObjectMeta
from engine.storage.base import (
    CHUNK_SIZE,
    Backoff,
    CopyReport,
    ListPage,
    Storage,
    check_sha256,
    validate_key,
    validate_prefix,
)
from engine.storage.locations import AzureLocation

T = TypeVar("T")

GIB = 1024**3
MIB = 1024**2
#: Default block size of a streamed write: the most a write holds in memory at first.
DEFAULT_BLOCK_SIZE = 4 * MIB
#: A block blob has at most 50,000 blocks of at most 4000 MiB each.
MAX_BLOCKS = 50_000
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
        self._retry = Backoff(backoff_base, backoff_cap, sleep, jitter)
        self._poll_interval = poll_interval
        self._poll_interval_max = poll_interval_max
        self._sleep = sleep
        self._clock = clock
        self._delegation: tuple[UserDelegationKey, datetime] | None = None
        self._delegation_lock = threading.Lock()
        _redact_transport_logs()

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
            raise StorageError(display, "", f"cannot open the container: {_scrub(str(exc))}") \
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

    def _call(self, what: str, key: str, action: Callable[[], T]) -> T:
        """Run one request, retrying throttling, transient errors and unreachable endpoints
        with exponential backoff and jitter; map what remains to engine errors."""
        failures: dict[str, int] = {}  # by kind
        while True:
            try:
                return action()
            except AzureError as exc:
                kind = _classify(exc)
                failures[kind] = failures.get(kind, 0) + 1
                attempt = sum(failures.values())
                if failures[kind] < self._attempts_for(kind) and attempt < self.max_attempts:
                    self._retry.wait(attempt - 1)
                    continue
                raise self._error(what, key, exc, kind, attempt) from None

    def _attempts_for(self, kind: str) -> int:
        """How many failures of this kind a request may meet before it gives up (never more
        than max_attempts in all)."""
        if kind in ("throttled", "transient"):
            return self.max_attempts
        if kind == "unreachable":
            # A dead endpoint gets a few tries only: an outage should surface quickly.
            return min(self.max_attempts, UNREACHABLE_ATTEMPTS)
        if kind == "timeout":
            return min(self.max_attempts, TIMEOUT_ATTEMPTS)
        return 1

    def _error(self, what: str, key: str, exc: AzureError, kind: str | None = None,
               attempts: int = 1) -> StorageError:
        kind = kind or _classify(exc)
        detail = _describe(exc)
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        if kind == "not-found":
            return ObjectNotFound(self.name, key, "no such object")
        if kind == "no-container":
            # The location is unusable until someone creates it, as S3's missing bucket.
            return LocationMissing(self.name, key,
                                   f"{what} failed: the container does not exist")
        if kind == "denied":
            return AccessDenied(self.name, key, f"{what} failed: access denied: check the "
                                "account key or SAS token of this location (account_key_env, "
                                f"sas_token_env) and its permissions; {detail}")
        if kind == "unreachable":
            how = "cannot connect" if isinstance(exc, ServiceRequestError) \
                else "the connection dropped"
            return Unreachable(self.name, key, f"{what} failed: {how}{tries}: {detail}")
        if kind == "timeout":
            return Unreachable(self.name, key, f"{what} failed: no answer within "
                               f"{self.read_timeout:g} s{tries}: {detail}")
        if kind == "throttled":
            return Throttled(self.name, key, f"{what} throttled by the service{tries}: {detail}")
        if kind == "copy-source":
            return StorageError(self.name, key, f"{what} failed: the service could not read "
                                "the copy source (its SAS, its network rules, or the object "
                                f"itself): {detail}")
        if kind == "transient" and isinstance(exc, HttpResponseError) and exc.status_code:
            verb = "kept answering" if attempts > 1 else "answered"
            return StorageError(self.name, key, f"{what} failed: the service {verb} "
                                f"{exc.status_code}{tries}: {detail}")
        error = StorageError(self.name, key, f"{what} failed{tries}: {detail}")
        if kind == "refused":
            error.retryable = False
        return error

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
                found.append(ObjectInfo(key, props.size, _utc(props.last_modified),
                                        digests=_digests_of(props)))
                if len(found) > limit:
                    break
            return found

        found = self._call("list", "", collect)
        chosen = tuple(found[:limit])
        more = len(found) > limit
        return ListPage(chosen, chosen[-1].key if more else None)

    def stat(self, key: str) -> ObjectInfo:
        validate_key(self.name, key)
        return _info_of(key, self._properties(key))

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
            yield stream, _info_of(key, downloader.properties)

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
            settings = _settings(meta, md5.digest())
            result = self._call("write", key, lambda: blob.upload_blob(
                first, overwrite=True, content_settings=settings, validate_content=True,
                max_concurrency=1, encryption_scope=scope, metadata=metadata))
            return ObjectInfo(key, len(first), _when(result), sha.hexdigest())
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
        settings = _settings(meta, md5.digest())
        blocks = [BlobBlock(block_id=block_id) for block_id in block_ids]
        result = self._call("write", key, lambda: blob.commit_block_list(
            blocks, content_settings=settings, encryption_scope=scope, metadata=metadata))
        return ObjectInfo(key, size, _when(result), sha.hexdigest())

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
            report = self._copy_by_blocks(url, src, key, timeout)
        else:
            report = self._copy_blob(url, src, key, timeout)
        if sha256 is not None or report.verified_by == "content-md5-checked-by-service":
            return report
        return self._read_back(key, report, _md5(src), digest)

    def _read_back(self, key: str, report: CopyReport, source_md5: bytes | None,
                   digest: Digest | None) -> CopyReport:
        """Copy Blob carries the source's Content-MD5 over as a property, it does not
        compute it: equal values prove the copy finished, not its bytes. An object whose
        layout records no SHA-256 is therefore read back once here, hashing what the
        comparisons need: the MD5 against the source's Content-MD5 (computed when the source
        was uploaded), a layout's digest, and a SHA-256 for later downloads."""
        wanted = ["sha256", "md5"] + ([digest.algorithm] if digest is not None else [])
        found = {d.algorithm: d for d in self.digests_of(key, list(dict.fromkeys(wanted)))}
        sha = found.pop("sha256")
        if source_md5 is None:
            # engine.transfer compares this SHA-256 of the copy with the source's, read there
            return dataclasses.replace(report, sha256=sha.value, verified_by="sha256-read-back",
                                       identical_to_source=False,
                                       digests=tuple(found.values()))
        if found["md5"].value != source_md5.hex():
            self._discard(self._blob(key), key)
            raise ChecksumMismatch(self.name, key, source_md5.hex(), found["md5"].value,
                                   algorithm="md5", against="the source's Content-MD5")
        return dataclasses.replace(report, sha256=sha.value, identical_to_source=True,
                                   verified_by="md5-read-back-equals-source-content-md5",
                                   digests=tuple(found.values()))

    def _copy_blob(self, url: str, src: BlobProperties, key: str, timeout: float) -> CopyReport:
        blob = self._blob(key)
        started = self._call("copy", key, lambda: blob.start_copy_from_url(
            url, source_etag=src.etag, source_match_condition=MatchConditions.IfNotModified))
        copy_id = str(started["copy_id"])
        deadline = self._clock() + timeout
        delay = self._poll_interval
        props = self._call("copy", key, blob.get_blob_properties)
        status = "pending"
        while True:
            if props.copy.id != copy_id:
                raise StorageError(self.name, key, "another copy to this key replaced ours")
            status = str(props.copy.status)
            if status != "pending":
                break
            if self._clock() >= deadline:
                self._abandon(blob, key, copy_id)
                raise StorageError(
                    self.name, key,
                    f"server-side copy did not finish within {timeout:.0f} s "
                    f"({props.copy.progress or '?'} bytes); aborted")
            self._sleep(delay)
            delay = min(delay * 2, self._poll_interval_max)
            props = self._call("copy", key, blob.get_blob_properties)
        if status != "success":
            self._discard(blob, key)
            reason = _scrub(str(props.copy.status_description or ""))[:200]
            raise StorageError(self.name, key, f"server-side copy {status}: {reason}")
        if props.size != src.size:
            self._discard(blob, key)
            raise StorageError(self.name, key,
                               f"the copy has {props.size} bytes, the source {src.size}")
        info = ObjectInfo(key, props.size, _utc(props.last_modified))
        source_md5 = _md5(src)
        if source_md5 is None:
            return CopyReport(info=info, method="server-side", sha256=None, verified_by=None)
        if _md5(props) != source_md5:
            self._discard(blob, key)
            raise StorageError(self.name, key, "the copy's Content-MD5 differs from the source's")
        return CopyReport(info=info, method="server-side", sha256=None,
                          verified_by="content-md5-equals-source", identical_to_source=True,
                          digests=(Digest("md5", source_md5.hex()),))

    def _copy_by_blocks(self, url: str, src: BlobProperties, key: str,
                        timeout: float) -> CopyReport:
        """Put Block From URL per range, then commit with the encryption scope. A one-block
        copy of a source with Content-MD5 has the service check the MD5 of the bytes it read."""
        blob = self._blob(key)
        scope = self.encryption_scope
        source_md5 = _md5(src)
        ranges = [(offset, min(self.copy_block_size, src.size - offset))
                  for offset in range(0, src.size, self.copy_block_size)]
        if len(ranges) > MAX_BLOCKS:
            raise StorageError(self.name, key, "object too large for one block blob")
        checked = source_md5 is not None and len(ranges) == 1
        run = uuid.uuid4().hex
        block_ids: list[str] = []
        per_block = max(60.0, timeout * self.copy_block_size / max(src.size, 1))
        for offset, length in ranges:
            block_id = f"{run}-{len(block_ids):06d}"
            self._call("copy", key, functools.partial(
                blob.stage_block_from_url, block_id, url, source_offset=offset,
                source_length=length, source_content_md5=source_md5 if checked else None,
                encryption_scope=scope, read_timeout=per_block))
            block_ids.append(block_id)
        # Put Block From URL copies bytes only: what the blob says of itself goes along here.
        settings = _settings(_info_of(key, src).meta, source_md5)
        blocks = [BlobBlock(block_id=block_id) for block_id in block_ids]
        result = self._call("copy", key, lambda: blob.commit_block_list(
            blocks, content_settings=settings, encryption_scope=scope,
            metadata=dict(src.metadata) if src.metadata else None))
        info = ObjectInfo(key, src.size, _when(result))
        if checked and source_md5 is not None:
            return CopyReport(info=info, method="server-side", sha256=None,
                              verified_by="content-md5-checked-by-service",
                              identical_to_source=True,
                              digests=(Digest("md5", source_md5.hex()),))
        return CopyReport(info=info, method="server-side", sha256=None, verified_by=None)

    def _abandon(self, blob: BlobClient, key: str, copy_id: str) -> None:
        with contextlib.suppress(StorageError):
            self._call("abort copy", key, lambda: blob.abort_copy(copy_id))
        self._discard(blob, key)

    def _discard(self, blob: BlobClient, key: str) -> None:
        # An aborted or failed copy leaves an empty blob behind; it must not pass for an object.
        with contextlib.suppress(StorageError):
            self._call("delete", key, lambda: blob.delete_blob(delete_snapshots="include"))

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


class _RedactSignatures(logging.Filter):
    """urllib3 logs request lines at DEBUG, and with SAS authentication those carry the SAS
    signature in the query string: blank it before any handler sees the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "sig=" in message.lower():
            record.msg = _SIG.sub(r"\1<redacted>", message)
            record.args = ()
        return True


def _redact_transport_logs() -> None:
    transport = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _RedactSignatures) for f in transport.filters):
        transport.addFilter(_RedactSignatures())


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


def _classify(exc: AzureError) -> str:
    if isinstance(exc, ServiceRequestError):
        return "unreachable"  # refused, DNS, TLS: the request never reached the service
    if isinstance(exc, ServiceResponseTimeoutError):
        return "timeout"  # connected, and no answer came
    if isinstance(exc, ServiceResponseError):
        return "unreachable"  # the connection dropped mid-response
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or 0
        code = _error_code(exc)
        if status in (429, 503) or code == "ServerBusy":
            return "throttled"
        if code == "ContainerNotFound":
            return "no-container"
        if code == "CannotVerifyCopySource":
            # About the source URL or its SAS (Azurite: a source on another host), not a
            # missing or forbidden destination.
            return "copy-source"
        if status in (401, 403) or isinstance(exc, ClientAuthenticationError):
            return "denied"
        if status == 404:
            return "not-found"
        if status in (408, 500, 502, 504):
            return "transient"
        if 400 <= status < 500:
            return "refused"
    if isinstance(exc, ClientAuthenticationError):
        return "denied"  # a credential (azure-identity) that cannot get a token
    return "other"


_QUERY = re.compile(r"\?[^\s'\"<>]*")
_SIG = re.compile(r"(?i)(sig=)[^&\s'\"<>]+")


def _scrub(text: str) -> str:
    """Drop URL query strings and signatures, where SAS tokens travel."""
    return _SIG.sub(r"\1<redacted>", _QUERY.sub("?<redacted>", text))


def _describe(exc: AzureError) -> str:
    parts: list[str] = []
    if isinstance(exc, HttpResponseError):
        if exc.status_code:
            parts.append(f"HTTP {exc.status_code}")
        if code := _error_code(exc):
            parts.append(code)
    lines = str(exc.message or type(exc).__name__).strip().splitlines()
    first = lines[0] if lines else type(exc).__name__
    parts.append(_scrub(first)[:200])
    return " ".join(parts)


def _error_code(exc: HttpResponseError) -> str:
    code = getattr(exc, "error_code", None)
    return str(getattr(code, "value", code) or "")


def _when(result: dict[str, Any]) -> datetime:
    moment = result.get("last_modified")
    return _utc(moment) if isinstance(moment, datetime) else datetime.now(UTC)


def _digests_of(props: BlobProperties) -> tuple[Digest, ...]:
    md5 = _md5(props)
    return (Digest("md5", md5.hex()),) if md5 is not None and len(md5) == 16 else ()


def _info_of(key: str, props: BlobProperties) -> ObjectInfo:
    settings = props.content_settings
    return ObjectInfo(key, props.size, _utc(props.last_modified), digests=_digests_of(props),
                      meta=ObjectMeta.of(dict(getattr(props, "metadata", None) or {}),
                                         settings.content_type,
                                         getattr(settings, "content_encoding", None)))


def _settings(meta: ObjectMeta | None, md5: bytes | None) -> ContentSettings:
    """Content settings of a new blob: its Content-MD5 and what ``meta`` says."""
    return ContentSettings(content_md5=bytearray(md5) if md5 is not None else None,
                           content_type=meta.content_type or None if meta else None,
                           content_encoding=meta.content_encoding or None if meta else None)


def _md5(props: BlobProperties) -> bytes | None:
    value = props.content_settings.content_md5
    return bytes(value) if value else None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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

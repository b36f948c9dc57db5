"""Reads and writes of GCS objects: reads pinned to one generation and checked by CRC32C, the
digests of what is sent, what the service says it stored, and resumable upload sessions whose
last chunk, the one that makes the object visible, goes only once the running SHA-256 matched."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO

import google_crc32c
from google.api_core import exceptions as api_exceptions

from engine.errors import StorageError
from engine.model import ObjectMeta
from engine.storage.base import CHUNK_SIZE, check_sha256
from engine.storage.gcs_errors import SDK_ERRORS, redact
from engine.storage.retry import Failure, utc

if TYPE_CHECKING:
    from engine.storage.gcs import GcsStorage

_log = logging.getLogger("engine.storage.gcs")  # the backend's log, as before the split

# untyped callables of typed packages, held as Any so that mypy --strict accepts the calls
Crc32c: Any = google_crc32c.Checksum
_from_http_status: Any = api_exceptions.from_http_status
OCTET = "application/octet-stream"


def read_exact(stream: BinaryIO, size: int) -> bytes:
    """Read ``size`` bytes unless the stream ends first (streams may return short reads)."""
    pieces: list[bytes] = []
    wanted = size
    while wanted > 0:
        piece = stream.read(min(wanted, CHUNK_SIZE))
        if not piece:
            break
        pieces.append(piece)
        wanted -= len(piece)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


class UploadHashes:
    """SHA-256 for btar, MD5 and CRC32C to compare with what the service stored."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.crc32c = Crc32c()
        self.size = 0

    def update(self, data: bytes) -> None:
        self.sha256.update(data)
        self.md5.update(data)
        self.crc32c.update(data)
        self.size += len(data)

    def md5_b64(self) -> str:
        return base64.b64encode(self.md5.digest()).decode("ascii")

    def crc32c_b64(self) -> str:
        return base64.b64encode(self.crc32c.digest()).decode("ascii")


@dataclass(frozen=True)
class Stored:
    """What the service reports about an object it stored."""

    size: int
    md5_hash: str | None
    crc32c: str | None
    generation: int | None
    updated: datetime

    @classmethod
    def of_blob(cls, blob: Any) -> Stored:
        generation = blob.generation
        return cls(int(blob.size or 0), blob.md5_hash, blob.crc32c,
                   int(generation) if generation is not None else None, utc(blob.updated))

    @classmethod
    def of_resource(cls, resource: dict[str, Any]) -> Stored:
        generation = resource.get("generation")
        return cls(int(resource.get("size", 0)), resource.get("md5Hash"), resource.get("crc32c"),
                   int(generation) if generation is not None else None,
                   _parse_time(resource.get("updated")))


def _parse_time(text: str | None) -> datetime:
    """An RFC 3339 time of the JSON API (up to nanoseconds, which datetime does not keep)."""
    if not text:
        return datetime.now(UTC)
    match = re.fullmatch(r"([^.]+?)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    if not match:
        return datetime.now(UTC)
    whole, fraction, zone = match.groups()
    micro = f".{fraction[:6]:0<6}" if fraction else ""
    return utc(datetime.fromisoformat(whole + micro + zone.replace("Z", "+00:00")))


class Reader:
    """Reads one generation of an object in ranged requests of ``chunk`` bytes (a retry resumes
    at the next byte; an overwrite mid-read is ObjectNotFound, never mixed bytes) and checks
    the CRC32C of everything read against the one the service stored."""

    def __init__(self, storage: GcsStorage, key: str, blob: Any) -> None:
        self._storage = storage
        self._key = key
        self._blob = storage.bucket.blob(blob.name, generation=blob.generation)
        self._size: int = int(blob.size or 0)
        self._expected_crc: str | None = blob.crc32c
        self._crc = Crc32c()
        self._pos = 0
        self._buffer = b""
        self._offset = 0
        self.closed = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("read from a closed object stream")
        if size is None or size < 0:
            pieces = []
            while piece := self.read(self._storage.read_chunk_size):
                pieces.append(piece)
            return b"".join(pieces)
        if self._offset >= len(self._buffer):
            self._fill()
        data = self._buffer[self._offset:self._offset + size]
        self._offset += len(data)
        return data

    def _fill(self) -> None:
        self._buffer, self._offset = b"", 0
        if self._pos >= self._size:
            return
        storage = self._storage
        start = self._pos
        end = min(start + storage.read_chunk_size, self._size) - 1
        data: bytes = storage.call(self._key, lambda: self._blob.download_as_bytes(
            start=start, end=end, raw_download=True, checksum=None, retry=None,
            timeout=storage.timeout))
        if not data:
            raise StorageError(storage.name, self._key, f"object ended at byte {start} of "
                               f"{self._size}")
        self._crc.update(data)
        self._pos += len(data)
        self._buffer = data
        if self._pos >= self._size and self._expected_crc is not None:
            actual = base64.b64encode(self._crc.digest()).decode("ascii")
            if actual != self._expected_crc:
                raise StorageError(storage.name, self._key, f"read bytes have CRC32C {actual}, "
                                   f"the service stored {self._expected_crc}")

    def close(self) -> None:
        self.closed = True
        self._buffer = b""


def upload_resumable(storage: GcsStorage, key: str, full: str, stream: BinaryIO,
                     buffer: bytes, hashes: UploadHashes, sha256: str | None,
                     meta: ObjectMeta | None) -> Stored:
    """Send chunks as they are read, keeping one byte of look-ahead to know which chunk is
    the last; the last is sent only after the SHA-256 check. At most two chunks in memory."""
    blob = storage._new_blob(full, meta)
    content_type = (meta.content_type if meta else "") or OCTET
    url: str = storage.call(key, lambda: blob.create_resumable_upload_session(
        content_type=content_type, size=None, checksum=None, retry=None,
        timeout=storage.timeout))
    chunk = storage.upload_chunk_size
    offset = 0
    try:
        while len(buffer) > chunk:
            _send_chunk(storage, key, url, buffer[:chunk], offset, None)
            offset += chunk
            rest = buffer[chunk:]
            more = read_exact(stream, chunk + 1 - len(rest))
            hashes.update(more)
            buffer = rest + more
        check_sha256(storage.name, key, sha256, hashes.sha256.hexdigest())
        goog_hash = f"crc32c={hashes.crc32c_b64()},md5={hashes.md5_b64()}"
        resource = _send_chunk(storage, key, url, buffer, offset, offset + len(buffer),
                               goog_hash)
    except BaseException:
        _cancel_session(storage, key, url)
        raise
    return Stored.of_resource(resource)


def _send_chunk(storage: GcsStorage, key: str, url: str, data: bytes, start: int,
                total: int | None, goog_hash: str | None = None) -> Any:
    """PUT one chunk (the last one when ``total`` is given, with X-Goog-Hash so the service
    checks the whole object). After a failure, ask the session how much it kept and send the
    rest. Returns the object resource for the last chunk, else None."""
    end = start + len(data)
    persisted = start
    failures = 0
    tries: dict[Failure, int] = {}
    while True:
        failed = False
        try:
            answer = _session_put(storage, url, data[persisted - start:], persisted, end,
                                  total, goog_hash)
        except SDK_ERRORS as exc:
            failures += 1
            failed = True
            storage.retry.after_failure(exc, key, tries, storage._describe(key))
            answer = storage.call(key, lambda: _session_put(storage, url, b"", None, None,
                                                             total, None))
        if isinstance(answer, dict):
            if total is None:
                raise StorageError(storage.name, key, "upload session finished before the "
                                   "last chunk was sent")
            return answer
        if answer < start or answer > end:
            raise StorageError(storage.name, key, f"upload session holds {answer} bytes, "
                               f"expected {start} to {end}")
        if answer == end and total is None:
            return None
        if answer <= persisted and not failed:  # no progress: do not loop forever
            failures += 1
            if failures >= storage.max_attempts:
                raise StorageError(storage.name, key, f"upload session stuck at byte {answer}")
        persisted = answer


def _session_put(storage: GcsStorage, url: str, body: bytes, first: int | None,
                 end: int | None, total: int | None,
                 goog_hash: str | None) -> int | dict[str, Any]:
    """One PUT to an upload session: a chunk, or with ``first`` None a status query.
    Returns the number of bytes the session holds, or the finished object resource."""
    size = "*" if total is None else str(total)
    if first is None or end is None or first == end:
        content_range = f"bytes */{size}"
    else:
        content_range = f"bytes {first}-{end - 1}/{size}"
    headers = {"Content-Range": content_range}
    if goog_hash is not None:
        headers["X-Goog-Hash"] = goog_hash
    response = storage._upload_http.put(url, data=body, headers=headers, timeout=storage.timeout)
    status = int(response.status_code)
    if status == 308:
        match = re.fullmatch(r"bytes=0-(\d+)", response.headers.get("Range", "") or "")
        return int(match.group(1)) + 1 if match else 0
    if status in (200, 201):
        resource: dict[str, Any] = response.json()
        return resource
    raise _from_http_status(status, f"upload session answered {status}")


def _cancel_session(storage: GcsStorage, key: str, url: str) -> None:
    """Drop an unfinished upload; its chunks never become an object (GCS answers 499)."""
    try:
        storage._upload_http.delete(url, timeout=storage.timeout)
    except Exception as exc:  # the session expires by itself within a week
        _log.warning("%s: %s: could not cancel an upload session: %s", storage.name, key,
                     redact(f"{type(exc).__name__}: {exc}"))

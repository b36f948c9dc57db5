"""The storage protocol every backend implements, and the key rules they share.

A ``Storage`` is one backup location (a folder, a bucket plus prefix, a container plus prefix).
Keys are relative to that location, use ``/`` as separator and never escape it.
"""

from __future__ import annotations

import contextlib
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol, cast

from engine.errors import ChecksumMismatch, InvalidKey
from engine.model import Digest, ObjectInfo, ObjectMeta
from engine.storage.digests import Hashes, hash_stream, pick

#: Bytes moved per read when streaming; large enough for throughput, small enough for memory.
CHUNK_SIZE = 1024 * 1024
#: Prefix of in-progress files that backends may keep beside real objects; never a valid key.
TEMP_MARKER = ".btar-tmp-"


@dataclass(frozen=True)
class ListPage:
    """One page of a listing, keys in ascending order. ``next_start_after`` is None at the end.

    ``stable_infos``: the backend hands out the same ObjectInfo for a key until the object
    changes (the memory backend), so a full listing finds what did not change since the last
    one by identity, at little cost, and reuses the work it did on it (engine.listing)."""

    objects: tuple[ObjectInfo, ...]
    next_start_after: str | None
    stable_infos: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class CopyReport:
    """What a copy did: the destination object, and the SHA-256 of the bytes it holds if the
    copy could establish it (streamed copies hash on the way; server-side copies usually can't).
    """

    info: ObjectInfo
    method: str  # "stream", "server-side" or "kernel" (a local copy made by the kernel)
    sha256: str | None
    #: how the copy's integrity was established, e.g. "sha256-streamed" or "md5-equals-source"
    verified_by: str | None
    #: True when a provider checksum of the copy equals that of the source object, which proves
    #: the bytes identical without reading them back
    identical_to_source: bool = False
    #: digests of the copy's bytes besides ``sha256``: hashed on the way (a streamed copy) or
    #: the provider's own checksums of the copy (S3 ChecksumSHA1, GCS MD5/CRC32C, Azure
    #: Content-MD5), for verification and for later downloads
    digests: tuple[Digest, ...] = ()


#: Digests a source's own stored checksum may be compared in, strongest first.
SOURCE_DIGESTS = ("sha256", "sha1", "md5", "crc32c")


def stored_digest(info: ObjectInfo) -> Digest | None:
    """The strongest checksum the provider stored for an object (from a stat or a read)."""
    for algorithm in SOURCE_DIGESTS:
        found = pick(info.digests, algorithm)
        if found is not None:
            return found
    return None


class VerifyingStream:
    """Passes a source's bytes to a write and hashes them; at the end of the stream, before
    the write can make anything visible, raises ChecksumMismatch unless every digest in
    ``checks`` matched (``against`` names what each was: the layout's, the source's)."""

    def __init__(self, raw: BinaryIO, location: str, key: str,
                 checks: Sequence[tuple[Digest, str]]) -> None:
        self._raw = raw
        self._location = location
        self._key = key
        self._checks = checks
        self.hashes = Hashes(d.algorithm for d, _ in checks)
        self._checked = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        whole = size is None or size < 0
        data = self._raw.read(-1 if size is None or size < 0 else size)
        self.hashes.update(data)
        if whole or not data:
            self.check()
        return data

    def check(self) -> None:
        if self._checked:
            return
        self._checked = True
        found = {d.algorithm: d for d in self.hashes.digests()}
        for expected, against in self._checks:
            actual = found[expected.algorithm]
            if actual != expected:
                raise ChecksumMismatch(self._location, self._key, expected.value, actual.value,
                                       algorithm=expected.algorithm, against=against)


def validate_key(location: str, key: str) -> str:
    """Return ``key`` if it stays inside its location, else raise InvalidKey."""
    if not key:
        raise InvalidKey(location, key, "empty key")
    if "\x00" in key:
        raise InvalidKey(location, repr(key), "key contains a NUL byte")
    if key.startswith("/") or "\\" in key or (len(key) > 1 and key[1] == ":"):
        raise InvalidKey(location, key, "absolute keys are not allowed")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise InvalidKey(location, key, "key has an empty, '.' or '..' segment")
        if part.startswith(TEMP_MARKER):
            raise InvalidKey(location, key, f"segments starting with {TEMP_MARKER} are reserved")
    return key


def validate_prefix(location: str, prefix: str) -> str:
    """A listing prefix: empty, or a key-like string that may end with '/'."""
    if prefix:
        validate_key(location, prefix.rstrip("/") or "x")
    return prefix


class HashingReader:
    """Wraps a binary stream and hashes what is read through it."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._hash.update(data)
        self.size += len(data)
        return data

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class Closable(Protocol):
    """A stream of a backend's own making: file-like enough to read, and closed once."""

    def close(self) -> None: ...


@contextlib.contextmanager
def closing_stream(reader: Closable) -> Iterator[BinaryIO]:
    """``reader`` as the binary stream ``open_read`` hands out, closed on leaving."""
    try:
        yield cast(BinaryIO, reader)
    finally:
        reader.close()


@contextlib.contextmanager
def closing_described(reader: Closable,
                      info: ObjectInfo) -> Iterator[tuple[BinaryIO, ObjectInfo]]:
    """``reader`` and what is known of its object, as ``open_described`` hands them out."""
    try:
        yield cast(BinaryIO, reader), info
    finally:
        reader.close()


def check_sha256(location: str, key: str, expected: str | None, actual: str) -> None:
    """Raise ChecksumMismatch when an expected SHA-256 is given and differs."""
    if expected is not None and expected != actual:
        raise ChecksumMismatch(location, key, expected, actual)


class Storage(ABC):
    """A backup location. Implementations must be safe to call from several threads."""

    #: A display name for messages and logs; never contains a credential.
    name: str
    #: Backend kind, e.g. "local", "memory", "s3"; server-side copy needs equal kinds.
    kind: str
    #: Whether objects here carry user metadata, a content type and encoding (ObjectMeta)
    #: that a copy must keep; a folder on a local disk does not.
    keeps_metadata: bool = False

    @abstractmethod
    def list_page(self, prefix: str = "", start_after: str | None = None,
                  limit: int = 1000) -> ListPage:
        """List up to ``limit`` objects whose key starts with ``prefix`` and sorts after
        ``start_after``, in ascending key order."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Describe one object or raise ObjectNotFound."""

    @abstractmethod
    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        """Open an object for streaming reads; raises ObjectNotFound."""

    @abstractmethod
    def write(self, key: str, data: BinaryIO | bytes, *, sha256: str | None = None,
              meta: ObjectMeta | None = None) -> ObjectInfo:
        """Store an object, visible only once complete. With ``sha256``, the bytes must hash to
        it or nothing becomes visible and ChecksumMismatch is raised. ``meta`` is stored with
        it where the backend keeps metadata. The returned info carries the SHA-256 of the
        bytes stored."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove an object; deleting a missing object is not an error."""

    def iter_objects(self, prefix: str = "", start_after: str | None = None,
                     page_size: int = 1000) -> Iterator[ObjectInfo]:
        """Every object under ``prefix``, following pagination."""
        cursor = start_after
        while True:
            page = self.list_page(prefix, cursor, page_size)
            yield from page.objects
            if page.next_start_after is None:
                return
            cursor = page.next_start_after

    def read_bytes(self, key: str) -> bytes:
        """The whole object; for small objects such as manifests."""
        with self.open_read(key) as stream:
            return stream.read()

    def open_described(self, key: str) -> AbstractContextManager[tuple[BinaryIO, ObjectInfo]]:
        """Open an object for reading together with what a stat says of it (its metadata and
        the provider's checksums of the bytes being read). Backends whose read answer carries
        both override this to spare the stat."""
        return self._described(key)

    @contextlib.contextmanager
    def _described(self, key: str) -> Iterator[tuple[BinaryIO, ObjectInfo]]:
        info = self.stat(key)
        with self.open_read(key) as stream:
            yield stream, info

    def copy_from(self, source: Storage, source_key: str, key: str, *,
                  sha256: str | None = None, size: int | None = None,
                  digest: Digest | None = None) -> CopyReport:
        """Copy ``source_key`` of ``source`` here as ``key`` (``size``: its expected size,
        which spares a server-side copy a lookup), keeping its metadata. This default streams
        the bytes through this process and hashes them; backends override it with a
        server-side copy where the provider can do one.

        Without ``sha256``, the bytes are checked on the way against ``digest`` (what the
        layout records) and against the source's own stored checksum where the provider
        has one, so a copy that differs never becomes visible."""
        if sha256 is not None and not (source.keeps_metadata and self.keeps_metadata):
            # btar's own layouts between plain stores: the original path, one read.
            with source.open_read(source_key) as stream:
                info = self.write(key, stream, sha256=sha256)
            return CopyReport(info=info, method="stream", sha256=info.sha256,
                              verified_by="sha256-streamed")
        with source.open_described(source_key) as (stream, described):
            checks: list[tuple[Digest, str]] = []
            stored = stored_digest(described) if sha256 is None else None
            if sha256 is None and digest is not None:
                checks.append((digest, "the recorded"))
            if stored is not None:
                checks.append((stored, "the source's stored"))
            verifying = VerifyingStream(stream, self.name, key, checks)
            meta = described.meta if self.keeps_metadata else None
            info = self.write(key, verifying, sha256=sha256, meta=meta)  # type: ignore[arg-type]
            try:
                verifying.check()  # a writer that stopped at the expected size saw no end
            except ChecksumMismatch:
                self.delete(key)  # this copy's own bytes, never the source's
                raise
        hashed = verifying.hashes.digests()
        if sha256 is not None:
            how = "sha256-streamed"
        else:
            how = "+".join([f"{digest.algorithm}-streamed"] if digest is not None else []) \
                or "sha256-streamed"
            if stored is not None:
                how += f"+{stored.algorithm}-equals-source"
        return CopyReport(info=info, method="stream", sha256=info.sha256, verified_by=how,
                          identical_to_source=stored is not None, digests=hashed)

    def sha256_of(self, key: str) -> str:
        """Read an object back and hash it (the verification of last resort)."""
        digest = hashlib.sha256()
        with self.open_read(key) as stream:
            while chunk := stream.read(CHUNK_SIZE):
                digest.update(chunk)
        return digest.hexdigest()

    def digests_of(self, key: str, algorithms: Sequence[str]) -> tuple[Digest, ...]:
        """Read an object back once and compute each digest of ``algorithms``."""
        with self.open_read(key) as stream:
            return hash_stream(stream, algorithms)

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release clients and connections."""

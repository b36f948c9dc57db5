"""Computing digests of object bytes, several algorithms in one pass.

A copy of an object that records no SHA-256 is verified with whichever digest the layout or
the provider knows (engine.transfer); these helpers compute them as bytes stream past, so
that one read serves every algorithm needed.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from typing import Any, BinaryIO, Protocol

from engine.model import DIGEST_ALGORITHMS, Digest

#: Bytes per read when hashing a stream (the storage backends' CHUNK_SIZE).
_CHUNK = 1024 * 1024


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


def _new(algorithm: str) -> _Hasher:
    if algorithm == "crc32c":
        # google-crc32c is a dependency of google-cloud-storage (the only provider that
        # reports CRC32C); imported here so that nothing else pays for it.
        import google_crc32c

        make: Any = google_crc32c.Checksum
        checksum: _Hasher = make()
        return checksum
    if algorithm not in DIGEST_ALGORITHMS:
        raise ValueError(f"unknown digest algorithm {algorithm!r}")
    return hashlib.new(algorithm, usedforsecurity=algorithm in ("sha256", "sha1"))


class Hashes:
    """Several digests of the same bytes, updated together."""

    def __init__(self, algorithms: Iterable[str]) -> None:
        self._hashers = {a: _new(a) for a in dict.fromkeys(algorithms)}
        self.size = 0

    def update(self, data: bytes) -> None:
        for hasher in self._hashers.values():
            hasher.update(data)
        self.size += len(data)

    def digests(self) -> tuple[Digest, ...]:
        return tuple(Digest(a, h.digest().hex()) for a, h in self._hashers.items())


class HashingStream:
    """A read-only stream that hashes what passes through it (a streamed copy hashes the
    source's bytes on their way to the destination)."""

    def __init__(self, raw: BinaryIO, hashes: Hashes) -> None:
        self._raw = raw
        self.hashes = hashes

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        data = self._raw.read(-1 if size is None else size)
        self.hashes.update(data)
        return data


def hash_stream(stream: BinaryIO, algorithms: Iterable[str]) -> tuple[Digest, ...]:
    hashes = Hashes(algorithms)
    while chunk := stream.read(_CHUNK):
        hashes.update(chunk)
    return hashes.digests()


def from_base64(algorithm: str, value: str | None) -> Digest | None:
    """A provider checksum as the provider sends it (base64 of the raw digest) as a Digest;
    None when absent or malformed."""
    if not value:
        return None
    try:
        return Digest(algorithm, base64.b64decode(value, validate=True).hex())
    except ValueError:
        return None


def pick(digests: Iterable[Digest], algorithm: str) -> Digest | None:
    return next((d for d in digests if d.algorithm == algorithm), None)


def common(ours: Iterable[Digest], theirs: Iterable[Digest]) -> tuple[Digest, Digest] | None:
    """The first pair of digests of one algorithm, ours first (the strongest algorithm in
    DIGEST_ALGORITHMS order)."""
    mine = {d.algorithm: d for d in ours}
    other = {d.algorithm: d for d in theirs}
    for algorithm in DIGEST_ALGORITHMS:
        if algorithm in mine and algorithm in other:
            return mine[algorithm], other[algorithm]
    return None

"""Carrying out one copy between two storages, shared by every driver."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

from engine.effects import CopyResult, CopyTask, FetchResult, FetchTask
from engine.errors import ChecksumMismatch, ObjectNotFound, StorageError, Throttled, Unreachable
from engine.storage.base import CHUNK_SIZE, Storage


def _kind(error: StorageError) -> str:
    if isinstance(error, Unreachable):
        return "unreachable"
    if isinstance(error, ObjectNotFound):
        return "missing"
    if isinstance(error, Throttled):
        return "throttled"
    if isinstance(error, ChecksumMismatch):
        return "mismatch"
    return "other"


def execute_copy(source: Storage, destination: Storage, task: CopyTask) -> CopyResult:
    """Copy one object and establish what its destination bytes hash to. Errors come back as
    a failed result (never raised) so that one bad object does not sink a batch."""
    side = "destination"
    try:
        # With the expected hash, a streamed copy whose bytes differ never becomes visible.
        report = destination.copy_from(source, task.key, task.key, sha256=task.sha256)
        sha256, verified_by = report.sha256, report.verified_by or ""
        if sha256 is None and not report.identical_to_source:
            # Nothing proved the copy's bytes: read them back (the verification of last resort).
            sha256, verified_by = destination.sha256_of(task.key), "sha256-read-back"
        return CopyResult(task=task, ok=True, method=report.method, sha256=sha256,
                          identical_to_source=report.identical_to_source,
                          verified_by=verified_by)
    except StorageError as error:
        if error.location == source.name:
            side = "source"
        return CopyResult(task=task, ok=False, error=str(error), error_kind=_kind(error),
                          failed_side=side)


def _local_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def execute_fetch(source: Storage, task: FetchTask) -> FetchResult:
    """Download one object to a local file, verified; a file already there and whole is kept.
    The file appears under its name only once its bytes verified."""
    path = Path(task.path)
    try:
        if path.is_file() and path.stat().st_size == task.size \
                and _local_sha256(path) == task.sha256:
            return FetchResult(task, ok=True, skipped=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.parent / f".{path.name}.{uuid.uuid4().hex}.part"
        digest = hashlib.sha256()
        try:
            with source.open_read(task.key) as stream, temp.open("wb") as out:
                while chunk := stream.read(CHUNK_SIZE):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != task.sha256:
                return FetchResult(task, ok=False, error=(
                    f"{task.key}: sha256 {digest.hexdigest()} does not match the recorded "
                    f"{task.sha256}"))
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)
        return FetchResult(task, ok=True)
    except StorageError as error:
        return FetchResult(task, ok=False, error=str(error))
    except OSError as error:
        return FetchResult(task, ok=False, error=f"{path}: {error.strerror}")

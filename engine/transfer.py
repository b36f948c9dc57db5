"""Carrying out one copy between two storages, shared by every driver."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

from engine.effects import CopyResult, CopyTask, FetchResult, FetchTask
from engine.errors import ChecksumMismatch, ObjectNotFound, StorageError, Throttled, Unreachable
from engine.storage.base import CHUNK_SIZE, Storage


def error_kind(error: StorageError) -> str:
    """The kind a failed copy reports for a storage error."""
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
        report = destination.copy_from(source, task.key, task.key, sha256=task.sha256,
                                       size=task.size)
        sha256, verified_by = report.sha256, report.verified_by or ""
        if sha256 is None:
            # A provider checksum equal to the source's proves the copy equals the source, not
            # that the source holds what the primary recorded (a manifest and its payload can
            # disagree): only the SHA-256 of the copy's bytes proves that. Read them back.
            sha256 = destination.sha256_of(task.key)
            verified_by = f"{verified_by}+sha256-read-back" if verified_by \
                else "sha256-read-back"
        return CopyResult(task=task, ok=True, method=report.method, sha256=sha256,
                          identical_to_source=report.identical_to_source,
                          verified_by=verified_by)
    except StorageError as error:
        if error.location == source.name:
            side = "source"
        return CopyResult(task=task, ok=False, error=str(error), error_kind=error_kind(error),
                          failed_side=side, fault=error.fault, reason=error.message)


def _private_folders(folder: Path) -> None:
    """Create ``folder`` and its missing parents readable by the owner only (0700); folders
    that exist keep their mode."""
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for created in reversed(missing):
        try:
            created.mkdir(mode=0o700)
        except FileExistsError:
            continue  # made meanwhile by another fetch of the same batch
        created.chmod(0o700)


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
        _private_folders(path.parent)
        temp = path.parent / f".{path.name}.{uuid.uuid4().hex}.part"
        digest = hashlib.sha256()
        try:
            # Restored data is the database's: owner-only, whatever the umask.
            with source.open_read(task.key) as stream, \
                    os.fdopen(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600),
                              "wb") as out:
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

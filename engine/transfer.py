"""Carrying out one copy between two storages, shared by every driver."""

from __future__ import annotations

from engine.effects import CopyResult, CopyTask
from engine.errors import ChecksumMismatch, ObjectNotFound, StorageError, Throttled, Unreachable
from engine.storage.base import Storage


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

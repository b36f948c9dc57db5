"""Carrying out one copy between two storages, shared by every driver."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from engine.effects import CopyResult, CopyTask, ErrorKind, FetchResult, FetchTask, Side
from engine.errors import ChecksumMismatch, ObjectNotFound, StorageError, Throttled, Unreachable
from engine.model import DIGEST_ALGORITHMS, Digest
from engine.storage.base import CHUNK_SIZE, CopyReport, Storage
from engine.storage.digests import Hashes


def error_kind(error: StorageError) -> ErrorKind:
    """The kind a failed copy reports for a storage error."""
    if isinstance(error, Unreachable):
        return ErrorKind.UNREACHABLE
    if isinstance(error, ObjectNotFound):
        return ErrorKind.MISSING
    if isinstance(error, Throttled):
        return ErrorKind.THROTTLED
    if isinstance(error, ChecksumMismatch):
        return ErrorKind.MISMATCH
    return ErrorKind.OTHER


def execute_copy(source: Storage, destination: Storage, task: CopyTask) -> CopyResult:
    """Copy one object and establish what its destination bytes hash to. Errors come back as
    a failed result (never raised) so that one bad object does not sink a batch."""
    side = Side.DESTINATION
    try:
        # With the expected hash, a streamed copy whose bytes differ never becomes visible.
        report = destination.copy_from(source, task.key, task.key, sha256=task.sha256,
                                       size=task.size, digest=task.digest)
        if task.sha256 is None:
            try:
                return _verify_without_sha256(source, destination, task, report)
            except StorageError:
                # the copy landed but could not be verified (a side stopped answering while
                # it was read): it must not stay under its real key
                with contextlib.suppress(StorageError):
                    destination.delete(task.key)
                raise
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
            side = Side.SOURCE
        elif error.location == destination.name:
            side = Side.DESTINATION
        return CopyResult(task=task, ok=False, error=str(error), error_kind=error_kind(error),
                          failed_side=side, fault=error.fault, reason=error.message)


def _verify_without_sha256(source: Storage, destination: Storage, task: CopyTask,
                           report: CopyReport) -> CopyResult:
    """Verify a copy of an object whose layout records no SHA-256: against the digest it
    records (read back when the copy did not establish that digest), or, with none, against
    the source's own bytes: a provider checksum of the copy equal to the source's, else a
    SHA-256 of the source read in its region compared with the copy's. A copy that fails is
    removed from the destination and comes back failed; one that passes records every digest
    of its bytes that is known, for later downloads."""
    digests = {d.algorithm: d for d in report.digests}
    if report.sha256 is not None:
        digests["sha256"] = Digest("sha256", report.sha256)
    how = [report.verified_by] if report.verified_by else []
    identical = report.identical_to_source
    if report.info.size != task.size:
        return _refuse(destination, task, report, f"the copy holds {report.info.size} bytes, "
                       f"the item lists {task.size}")
    expected = task.digest
    if expected is not None:
        if expected.algorithm not in digests:
            wanted = [expected.algorithm] + (["sha256"] if "sha256" not in digests else [])
            digests.update((d.algorithm, d) for d in destination.digests_of(task.key, wanted))
            how.append(f"{expected.algorithm}-read-back")
        if digests[expected.algorithm] != expected:
            return _refuse(destination, task, report, f"{expected.algorithm} "
                           f"{digests[expected.algorithm].value} does not match the recorded "
                           f"{expected.value}")
    elif not identical:
        # Nothing recorded and no provider checksum compared with the source's: a read in
        # each region. A SHA-256 the provider computed of a server-side copy stands for the
        # destination's read; a streamed copy's hash is only of what was sent, so that copy
        # is read back too.
        copy_sha = digests.get("sha256") if report.method == "server-side" else None
        if copy_sha is None:
            copy_sha = Digest("sha256", destination.sha256_of(task.key))
            digests["sha256"] = copy_sha
            how.append("sha256-read-back")
        source_sha = Digest("sha256", source.sha256_of(task.key))
        how.append("sha256-of-source-read")
        if source_sha != copy_sha:
            return _refuse(destination, task, report, f"the copy's sha256 {copy_sha.value} "
                           f"differs from the source's {source_sha.value}")
        identical = True
    sha = digests.pop("sha256", None)
    return CopyResult(task=task, ok=True, method=report.method,
                      sha256=sha.value if sha is not None else None,
                      identical_to_source=identical, verified_by="+".join(how),
                      digests=tuple(digests[a] for a in DIGEST_ALGORITHMS if a in digests),
                      # proven equal to the source's bytes: the source's SHA-256 too
                      source_sha256=sha.value if sha is not None and identical else None)


def _refuse(destination: Storage, task: CopyTask, report: CopyReport,
            problem: str) -> CopyResult:
    """A copy that does not verify is removed (the destination's copy only, never the
    source) and reported as a mismatch."""
    message = f"{destination.name}: {task.key}: {problem}; the copy was removed"
    try:
        destination.delete(task.key)
    except StorageError as failure:
        message = f"{destination.name}: {task.key}: {problem}; removing the copy failed: " \
                  f"{failure.message}"
    return CopyResult(task=task, ok=False, method=report.method, error=message,
                      error_kind=ErrorKind.MISMATCH, failed_side=Side.DESTINATION,
                      fault=ChecksumMismatch.fault, reason=problem)


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


def _local_digest(path: Path, algorithm: str) -> Digest:
    hashes = Hashes([algorithm])
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            hashes.update(chunk)
    return hashes.digests()[0]


def execute_fetch(source: Storage, task: FetchTask) -> FetchResult:
    """Download one object to a local file, verified against the digest the catalog records
    for the copy (its SHA-256, else the digest its copy established); a file already there
    and whole is kept. The file appears under its name only once its bytes verified."""
    path = Path(task.path)
    expected = task.expected
    if expected is None:
        # Never hand a restore bytes nothing can vouch for.
        return FetchResult(task, ok=False, error=(
            f"{task.key}: the catalog records no digest of this copy, so a download of it "
            "cannot be verified; copy the object again with this version of btar"))
    try:
        if path.is_file() and path.stat().st_size == task.size \
                and _local_digest(path, expected.algorithm) == expected:
            return FetchResult(task, ok=True, skipped=True)
        _private_folders(path.parent)
        temp = path.parent / f".{path.name}.{uuid.uuid4().hex}.part"
        digest = Hashes([expected.algorithm])
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
            [actual] = digest.digests()
            if actual != expected:
                return FetchResult(task, ok=False, error=(
                    f"{task.key}: {expected.algorithm} {actual.value} does not match the "
                    f"recorded {expected.value}"))
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)
        return FetchResult(task, ok=True)
    except StorageError as error:
        return FetchResult(task, ok=False, error=str(error))
    except OSError as error:
        return FetchResult(task, ok=False, error=f"{path}: {error.strerror}")

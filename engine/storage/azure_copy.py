"""Server-side copies between two Azure locations, and how each is verified.

Copy Blob (asynchronous, from a short-lived read SAS of the source) is polled until done and
checked by Content-MD5; with an encryption scope, Put Block From URL copies range by range.
Copy Blob carries the source's Content-MD5 over without computing it, so an object whose layout
records no SHA-256 is read back once. Also what a blob's properties say of it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from azure.core import MatchConditions
from azure.storage.blob import BlobBlock, BlobClient, BlobProperties, ContentSettings

from engine.errors import ChecksumMismatch, StorageError
from engine.model import Digest, ObjectInfo, ObjectMeta
from engine.storage.azure_errors import scrub
from engine.storage.base import CopyReport
from engine.storage.retry import utc

if TYPE_CHECKING:
    from engine.storage.azure import AzureStorage

#: A block blob has at most 50,000 blocks.
MAX_BLOCKS = 50_000
#: ``verified_by`` of a one-block copy whose MD5 the service checked as it read the source
VERIFIED_BY_SERVICE = "content-md5-checked-by-service"


def read_back(dest: AzureStorage, key: str, report: CopyReport, source_md5: bytes | None,
              digest: Digest | None) -> CopyReport:
    """Copy Blob carries the source's Content-MD5 over as a property, it does not
    compute it: equal values prove the copy finished, not its bytes. An object whose
    layout records no SHA-256 is therefore read back once here, hashing what the
    comparisons need: the MD5 against the source's Content-MD5 (computed when the source
    was uploaded), a layout's digest, and a SHA-256 for later downloads."""
    wanted = ["sha256", "md5"] + ([digest.algorithm] if digest is not None else [])
    found = {d.algorithm: d for d in dest.digests_of(key, list(dict.fromkeys(wanted)))}
    sha = found.pop("sha256")
    if source_md5 is None:
        # engine.transfer compares this SHA-256 of the copy with the source's, read there
        return dataclasses.replace(report, sha256=sha.value, verified_by="sha256-read-back",
                                   identical_to_source=False,
                                   digests=tuple(found.values()))
    if found["md5"].value != source_md5.hex():
        _discard(dest, dest._blob(key), key)
        raise ChecksumMismatch(dest.name, key, source_md5.hex(), found["md5"].value,
                               algorithm="md5", against="the source's Content-MD5")
    return dataclasses.replace(report, sha256=sha.value, identical_to_source=True,
                               verified_by="md5-read-back-equals-source-content-md5",
                               digests=tuple(found.values()))


def copy_blob(dest: AzureStorage, url: str, src: BlobProperties, key: str,
              timeout: float) -> CopyReport:
    """Copy Blob from the source's read URL, polled until done (or abandoned after
    ``timeout``), then compared by Content-MD5 with the source."""
    blob = dest._blob(key)
    started = dest._call("copy", key, lambda: blob.start_copy_from_url(
        url, source_etag=src.etag, source_match_condition=MatchConditions.IfNotModified))
    copy_id = str(started["copy_id"])
    deadline = dest._clock() + timeout
    delay = dest._poll_interval
    props = dest._call("copy", key, blob.get_blob_properties)
    status = "pending"
    while True:
        if props.copy.id != copy_id:
            raise StorageError(dest.name, key, "another copy to this key replaced ours")
        status = str(props.copy.status)
        if status != "pending":
            break
        if dest._clock() >= deadline:
            _abandon(dest, blob, key, copy_id)
            raise StorageError(
                dest.name, key,
                f"server-side copy did not finish within {timeout:.0f} s "
                f"({props.copy.progress or '?'} bytes); aborted")
        dest._sleep(delay)
        delay = min(delay * 2, dest._poll_interval_max)
        props = dest._call("copy", key, blob.get_blob_properties)
    if status != "success":
        _discard(dest, blob, key)
        reason = scrub(str(props.copy.status_description or ""))[:200]
        raise StorageError(dest.name, key, f"server-side copy {status}: {reason}")
    if props.size != src.size:
        _discard(dest, blob, key)
        raise StorageError(dest.name, key,
                           f"the copy has {props.size} bytes, the source {src.size}")
    info = ObjectInfo(key, props.size, utc(props.last_modified))
    source_md5 = md5_of(src)
    if source_md5 is None:
        return CopyReport(info=info, method="server-side", sha256=None, verified_by=None)
    if md5_of(props) != source_md5:
        _discard(dest, blob, key)
        raise StorageError(dest.name, key, "the copy's Content-MD5 differs from the source's")
    return CopyReport(info=info, method="server-side", sha256=None,
                      verified_by="content-md5-equals-source", identical_to_source=True,
                      digests=(Digest("md5", source_md5.hex()),))


def copy_by_blocks(dest: AzureStorage, url: str, src: BlobProperties, key: str,
                   timeout: float) -> CopyReport:
    """Put Block From URL per range, then commit with the encryption scope. A one-block
    copy of a source with Content-MD5 has the service check the MD5 of the bytes it read."""
    blob = dest._blob(key)
    scope = dest.encryption_scope
    source_md5 = md5_of(src)
    ranges = [(offset, min(dest.copy_block_size, src.size - offset))
              for offset in range(0, src.size, dest.copy_block_size)]
    if len(ranges) > MAX_BLOCKS:
        raise StorageError(dest.name, key, "object too large for one block blob")
    checked = source_md5 is not None and len(ranges) == 1
    run = uuid.uuid4().hex
    block_ids: list[str] = []
    per_block = max(60.0, timeout * dest.copy_block_size / max(src.size, 1))
    for offset, length in ranges:
        block_id = f"{run}-{len(block_ids):06d}"
        dest._call("copy", key, functools.partial(
            blob.stage_block_from_url, block_id, url, source_offset=offset,
            source_length=length, source_content_md5=source_md5 if checked else None,
            encryption_scope=scope, read_timeout=per_block))
        block_ids.append(block_id)
    # Put Block From URL copies bytes only: what the blob says of itself goes along here.
    settings = settings_of(info_of(key, src).meta, source_md5)
    blocks = [BlobBlock(block_id=block_id) for block_id in block_ids]
    result = dest._call("copy", key, lambda: blob.commit_block_list(
        blocks, content_settings=settings, encryption_scope=scope,
        metadata=dict(src.metadata) if src.metadata else None))
    info = ObjectInfo(key, src.size, when_of(result))
    if checked and source_md5 is not None:
        return CopyReport(info=info, method="server-side", sha256=None,
                          verified_by=VERIFIED_BY_SERVICE, identical_to_source=True,
                          digests=(Digest("md5", source_md5.hex()),))
    return CopyReport(info=info, method="server-side", sha256=None, verified_by=None)


def _abandon(dest: AzureStorage, blob: BlobClient, key: str, copy_id: str) -> None:
    with contextlib.suppress(StorageError):
        dest._call("abort copy", key, lambda: blob.abort_copy(copy_id))
    _discard(dest, blob, key)


def _discard(dest: AzureStorage, blob: BlobClient, key: str) -> None:
    # An aborted or failed copy leaves an empty blob behind; it must not pass for an object.
    with contextlib.suppress(StorageError):
        dest._call("delete", key, lambda: blob.delete_blob(delete_snapshots="include"))


def when_of(result: dict[str, Any]) -> datetime:
    """When an upload or commit answer says the blob was last modified."""
    moment = result.get("last_modified")
    return utc(moment) if isinstance(moment, datetime) else datetime.now(UTC)


def digests_of(props: BlobProperties) -> tuple[Digest, ...]:
    """The blob's Content-MD5, when its writer set one."""
    md5 = md5_of(props)
    return (Digest("md5", md5.hex()),) if md5 is not None and len(md5) == 16 else ()


def info_of(key: str, props: BlobProperties) -> ObjectInfo:
    """What a blob's properties say of it: size, time, Content-MD5, metadata."""
    settings = props.content_settings
    return ObjectInfo(key, props.size, utc(props.last_modified), digests=digests_of(props),
                      meta=ObjectMeta.of(dict(getattr(props, "metadata", None) or {}),
                                         settings.content_type,
                                         getattr(settings, "content_encoding", None)))


def settings_of(meta: ObjectMeta | None, md5: bytes | None) -> ContentSettings:
    """Content settings of a new blob: its Content-MD5 and what ``meta`` says."""
    return ContentSettings(content_md5=bytearray(md5) if md5 is not None else None,
                           content_type=meta.content_type or None if meta else None,
                           content_encoding=meta.content_encoding or None if meta else None)


def md5_of(props: BlobProperties) -> bytes | None:
    value = props.content_settings.content_md5
    return bytes(value) if value else None

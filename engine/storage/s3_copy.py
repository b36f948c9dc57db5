"""Server-side copies between two S3 locations, and how each is verified.

A copy of an object whose SHA-256 the layout records is one CopyObject asking S3 for the
SHA-256 of the copy (engine.transfer compares it with the record). One whose layout records
another digest (pgBackRest's SHA-1 ``rck``) asks for that digest instead. One whose layout
records nothing is pinned to the source's ETag and compared with the source's own stored
checksum or MD5 ETag; failing both, engine.transfer reads the source once in its region.
See docs/verification.md for the costs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from engine.errors import ChecksumMismatch, StorageError
from engine.model import Digest, ObjectInfo, ObjectMeta
from engine.storage.base import CopyReport
from engine.storage.digests import from_base64, pick
from engine.storage.retry import utc

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, CopySourceTypeDef

    from engine.storage.s3 import S3Storage

#: S3 limits: at most 10,000 parts, each but the last at least 5 MiB, at most 5 GiB.
MAX_PARTS = 10_000
MIN_PART = 5 * 1024**2
MAX_PART = 5 * 1024**3
#: ``verified_by`` of a single CopyObject whose MD5 ETag equals the source's.
VERIFIED_ETAG_MD5 = "etag-md5-equals-source"
#: the SHA-256 S3 computed of the copy's bytes (CopyObject with ChecksumAlgorithm)
VERIFIED_S3_SHA256 = "s3-checksum-sha256"
#: S3's checksum algorithms btar asks a copy for, by digest algorithm: full-object digests
#: that are comparable with a layout's or the source's own (S3's CRCs are left out: moto
#: answers a CRC32C request with a CRC32, and btar's layouts record none of them)
_COPY_CHECKSUMS = {"sha256": "SHA256", "sha1": "SHA1"}
#: error codes of S3-compatible services that do not compute checksums on copy
_NO_CHECKSUM_CODES = ("InvalidArgument", "NotImplemented", "InvalidRequest")


_MD5_ETAG = re.compile(r'"?[0-9a-fA-F]{32}"?')


def _md5_etag(etag: str | None, encryption: str | None) -> bool:
    """Whether an ETag is the MD5 of the bytes: single-part, not SSE-KMS / DSSE-KMS / SSE-C."""
    if etag is None or not _MD5_ETAG.fullmatch(etag):
        return False
    return encryption is None or encryption == "AES256"


def _etag_hex(etag: str) -> str:
    return etag.strip('"').lower()


def _meta_of(answer: Any) -> ObjectMeta:
    """The metadata, content type and encoding of a HeadObject or GetObject answer."""
    return ObjectMeta.of(answer.get("Metadata"), answer.get("ContentType"),
                         answer.get("ContentEncoding"))


def _meta_args(meta: ObjectMeta | None) -> dict[str, Any]:
    """PutObject / CreateMultipartUpload arguments that store ``meta``."""
    if not meta:
        return {}
    args: dict[str, Any] = {}
    if meta.metadata:
        args["Metadata"] = meta.as_dict
    if meta.content_type:
        args["ContentType"] = meta.content_type
    if meta.content_encoding:
        args["ContentEncoding"] = meta.content_encoding
    return args


def copy_recorded(dest: S3Storage, source: S3Storage, source_key: str, key: str,
                  size: int | None) -> CopyReport:
    """A copy of an object whose layout records its SHA-256: with a known size, one
    CopyObject asking S3 for the copy's SHA-256; otherwise a lookup, then CopyObject pinned
    to the source's ETag (MD5 ETags compared) or, above ``multipart_threshold``, UploadPartCopy
    (the copy is read back by engine.transfer)."""
    full = dest.full_key(key)
    copy_source: CopySourceTypeDef = {"Bucket": source.bucket,
                                      "Key": source.full_key(source_key)}
    if size is not None and size <= dest.multipart_threshold and dest._copy_checksums:
        # One request: S3 hashes the copy itself, so no lookup, no read-back.
        report = _copy_checksummed(dest, key, full, copy_source, size)
        if report is not None:
            return report
    head = source._head(source_key)
    if head["ContentLength"] <= dest.multipart_threshold:
        return _copy_single(dest, key, full, copy_source, head)
    return _copy_multipart(dest, key, full, copy_source, head)


def copy_unrecorded(dest: S3Storage, source: S3Storage, source_key: str, key: str,
                    size: int | None, digest: Digest | None) -> CopyReport:
    """A copy of an object whose layout records no SHA-256. With a recorded SHA-1 (or
    SHA-256) S3 computes that digest of the copy, which engine.transfer compares with
    the record: one request. Otherwise the copy is pinned to the source's ETag and its
    checksum compared with the source's own stored full-object checksum, or with its MD5
    ETag; failing both, the report carries the copy's SHA-256 and engine.transfer reads
    the source once in its own region to compare."""
    full = dest.full_key(key)
    copy_source: CopySourceTypeDef = {"Bucket": source.bucket,
                                      "Key": source.full_key(source_key)}
    algorithm = _COPY_CHECKSUMS.get(digest.algorithm) if digest is not None else None
    if algorithm is not None and size is not None and size <= dest.multipart_threshold \
            and dest._copy_checksums:
        report = _copy_checksummed(dest, key, full, copy_source, size, algorithm)
        if report is not None:
            return report
    head = source._head_or_missing(source_key)
    if head["ContentLength"] > dest.multipart_threshold:
        return _copy_multipart(dest, key, full, copy_source, head)
    stored = next((d for d in (from_base64("sha256", head.get("ChecksumSHA256")),
                               from_base64("sha1", head.get("ChecksumSHA1")))
                   if d is not None), None) \
        if head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT" else None
    report = None
    if dest._copy_checksums:
        report = _copy_checksummed(
            dest, key, full, copy_source, head["ContentLength"],
            _COPY_CHECKSUMS[stored.algorithm] if stored is not None else "SHA256",
            if_match=head["ETag"])
    if report is None:
        return _copy_single(dest, key, full, copy_source, head)
    if stored is not None:
        mine = pick(report.digests, stored.algorithm) or (
            Digest("sha256", report.sha256) if report.sha256 else None)
        if mine is not None and mine.algorithm == stored.algorithm:
            if mine != stored:
                _remove_bad_copy(dest, key, stored, mine, "the source's stored")
            return dataclasses.replace(report, identical_to_source=True,
                                       verified_by=f"s3-{stored.algorithm}-equals-source")
    copy_md5 = pick(report.digests, "md5")
    if copy_md5 is not None and _md5_etag(head["ETag"], head.get("ServerSideEncryption")):
        source_md5 = Digest("md5", _etag_hex(head["ETag"]))
        if copy_md5 != source_md5:
            _remove_bad_copy(dest, key, source_md5, copy_md5, "the source's ETag")
        return dataclasses.replace(report, identical_to_source=True,
                                   verified_by=f"{report.verified_by}+{VERIFIED_ETAG_MD5}")
    return report


def _remove_bad_copy(dest: S3Storage, key: str, expected: Digest, actual: Digest,
                     against: str) -> None:
    """Two digests of what must be the same bytes (If-Match pinned the source) differ:
    the copy goes, and the copy fails."""
    with contextlib.suppress(StorageError):
        dest.delete(key)
    raise ChecksumMismatch(dest.name, key, expected.value, actual.value,
                           algorithm=expected.algorithm, against=against)


def _copy_checksummed(dest: S3Storage, key: str, full: str, copy_source: CopySourceTypeDef,
                      size: int, algorithm: str = "SHA256",
                      if_match: str | None = None) -> CopyReport | None:
    """CopyObject asking S3 for a digest of the copy's bytes (a full-object checksum,
    since a copy up to 5 GiB is one part), pinned to the source's ETag when given. None
    when the provider computes no such checksum; the caller then copies the older way."""
    pin: dict[str, Any] = {"CopySourceIfMatch": if_match} if if_match else {}

    def copy() -> Any:
        try:
            return dest.copy_object(
                Bucket=dest.bucket, Key=full, CopySource=copy_source,
                MetadataDirective="COPY", ChecksumAlgorithm=algorithm,
                **pin, **dest._sse())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _NO_CHECKSUM_CODES:
                return None  # an S3-compatible service without checksums
            raise

    response = dest.call(key, copy)
    result = response["CopyObjectResult"] if response else {}
    checksum = result.get(f"Checksum{algorithm}")
    if not checksum:
        dest._copy_checksums = False
        return None
    name = algorithm.lower()
    value = from_base64(name, checksum)
    if value is None:
        raise StorageError(dest.name, key, f"the copy's {algorithm} checksum {checksum!r} "
                           "is not base64 of a digest")
    etag = str(result.get("ETag") or "")
    comparable = _md5_etag(etag, response.get("ServerSideEncryption")) \
        and not dest.sse_kms_key_id
    info = ObjectInfo(key=key, size=size,
                      last_modified=utc(result.get("LastModified", datetime.now(UTC))),
                      digests=(Digest("md5", _etag_hex(etag)),) if comparable else ())
    if name == "sha256":
        return CopyReport(info=info, method="server-side", sha256=value.value,
                          verified_by=VERIFIED_S3_SHA256, digests=info.digests)
    return CopyReport(info=info, method="server-side", sha256=None,
                      verified_by=f"s3-checksum-{name}", digests=(value, *info.digests))


def _copy_single(dest: S3Storage, key: str, full: str, copy_source: CopySourceTypeDef,
                 head: Any) -> CopyReport:
    source_etag: str = head["ETag"]
    response = dest.call(key, lambda: dest.copy_object(
        Bucket=dest.bucket, Key=full, CopySource=copy_source,
        CopySourceIfMatch=source_etag, MetadataDirective="COPY",
        **dest._sse()))
    result = response["CopyObjectResult"]
    etag = result.get("ETag")
    info = ObjectInfo(key=key, size=head["ContentLength"],
                      last_modified=utc(result.get("LastModified", datetime.now(UTC))))
    comparable = (_md5_etag(source_etag, head.get("ServerSideEncryption"))
                  and _md5_etag(etag, response.get("ServerSideEncryption"))
                  and not dest.sse_kms_key_id)
    if not comparable:
        return CopyReport(info=info, method="server-side", sha256=None, verified_by=None)
    if etag != source_etag:
        # Two MD5s of what must be the same bytes (If-Match pinned the source) differ.
        with contextlib.suppress(StorageError):
            dest.delete(key)
        raise StorageError(dest.name, key, f"server-side copy holds MD5 {etag}, the source "
                           f"{source_etag}; the copy was removed")
    return CopyReport(info=info, method="server-side", sha256=None,
                      verified_by=VERIFIED_ETAG_MD5, identical_to_source=True,
                      digests=(Digest("md5", _etag_hex(etag)),))


def _copy_multipart(dest: S3Storage, key: str, full: str, copy_source: CopySourceTypeDef,
                    head: Any) -> CopyReport:
    size: int = head["ContentLength"]
    source_etag: str = head["ETag"]
    part = min(MAX_PART, max(dest.part_size, math.ceil(size / MAX_PARTS)))
    extra: dict[str, Any] = dict(dest._sse())
    # UploadPartCopy copies bytes only: what the object says of itself goes along here.
    extra.update(_meta_args(_meta_of(head)))
    created = dest.call(key, lambda: dest.client.create_multipart_upload(
        Bucket=dest.bucket, Key=full, **extra))
    upload_id = created["UploadId"]
    parts: list[CompletedPartTypeDef] = []
    try:
        for number, offset in enumerate(range(0, size, part), start=1):
            last = min(offset + part, size) - 1

            def copy_part(n: int = number, a: int = offset, b: int = last) -> Any:
                return dest.client.upload_part_copy(
                    Bucket=dest.bucket, Key=full, UploadId=upload_id, PartNumber=n,
                    CopySource=copy_source, CopySourceRange=f"bytes={a}-{b}",
                    CopySourceIfMatch=source_etag)

            response = dest.call(key, copy_part)
            parts.append({"PartNumber": number,
                          "ETag": response["CopyPartResult"]["ETag"]})
        dest.call(key, lambda: dest.client.complete_multipart_upload(
            Bucket=dest.bucket, Key=full, UploadId=upload_id,
            MultipartUpload={"Parts": parts}))
    except BaseException:
        dest._abort(key, full, upload_id)
        raise
    stored = dest._head(key)
    if stored["ContentLength"] != size:
        raise StorageError(dest.name, key, f"multipart copy holds {stored['ContentLength']} "
                           f"bytes, the source {size}")
    info = ObjectInfo(key=key, size=size, last_modified=utc(stored["LastModified"]))
    # A multipart ETag is no MD5 of the bytes: the engine reads the copy back to verify it.
    return CopyReport(info=info, method="server-side", sha256=None, verified_by=None)

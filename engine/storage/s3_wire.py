"""ListObjectsV2 without botocore's per-call machinery.

A replicator lists each service's primary a few times a minute. Through botocore one empty
listing costs about 1.8 ms of CPU (its event hooks, endpoint rules, request and response
objects), and each listed object another 0.14 ms (dateutil parses LastModified): at a
thousand services that was most of btar's CPU. Here a listing is signed (Signature Version 4)
and sent on keep-alive connections of the standard library (engine.storage.http_connections),
and its XML is read with ElementTree.

botocore stays the reference: the credentials are its (refreshed as it refreshes them), the
endpoint is the one its client resolved, and errors are raised as its exception types, so
engine.storage.s3_errors classifies both paths alike (the CA bundle is its too). What this
path does not do as botocore would (a proxy, a redirect to another region) is left to botocore:
``Wire.for_client`` answers None when the path does not apply, and a redirect raises
:class:`WireDeclined` so that the caller asks botocore, which follows it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit
from xml.etree import ElementTree

from botocore.credentials import Credentials
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from engine.storage.http_connections import Answer, ConnectError, Connections, ExchangeError

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
#: environment settings under which botocore would send otherwise (proxies)
BOTOCORE_ONLY_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY",
                     "all_proxy")
#: CopyObject parameters (botocore's names) sent as headers
COPY_HEADERS = {"MetadataDirective": "x-amz-metadata-directive",
                "ChecksumAlgorithm": "x-amz-checksum-algorithm",
                "CopySourceIfMatch": "x-amz-copy-source-if-match",
                "ServerSideEncryption": "x-amz-server-side-encryption",
                "SSEKMSKeyId": "x-amz-server-side-encryption-aws-kms-key-id"}
#: answers that mean "ask again elsewhere", which botocore's S3 redirector handles
REDIRECT_CODES = frozenset({"PermanentRedirect", "TemporaryRedirect",
                            "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"})


class WireDeclined(Exception):
    """This request is botocore's to make (a redirect to another region)."""


#: a text of SigV4's unreserved characters only, which URI-encoding leaves as it is
_UNRESERVED = re.compile(r"[A-Za-z0-9\-_.~]*\Z").match


def _encode(text: str) -> str:
    """URI-encode as SigV4 wants it: every byte but the unreserved characters."""
    # Most query values are unreserved already ("2", "url", "1000"): no quote() for those.
    return text if _UNRESERVED(text) else quote(text, safe="-_.~")


def canonical_query(query: Mapping[str, str]) -> str:
    """A query string as SigV4 signs it (and as it is sent): names sorted, all encoded."""
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(query.items()))


class Wire:
    """Signed ListObjectsV2 requests to one bucket, on a pool of keep-alive connections."""

    def __init__(self, endpoint_url: str, bucket: str, region: str, credentials: Credentials,
                 *, path_style: bool, connect_timeout: float, read_timeout: float,
                 pool_size: int, ca_certs: str | None) -> None:
        parts = urlsplit(endpoint_url)
        if path_style:
            self._host, self._path = parts.netloc, "/" + _encode(bucket)
        else:
            self._host, self._path = f"{bucket}.{parts.netloc}", "/"
        self._base = f"{parts.scheme}://{self._host}{self._path}"
        self._region = region
        self._credentials = credentials
        self._scope_tail = f"/{region}/s3/aws4_request"
        #: the signing key of the day (and secret) last used
        self._keys: dict[tuple[str, str], bytes] = {}
        self._connections = Connections(parts.scheme, self._host,
                                        connect_timeout=connect_timeout,
                                        read_timeout=read_timeout, kept=pool_size,
                                        ca_certs=ca_certs if parts.scheme == "https" else None)

    @classmethod
    def for_client(cls, client: Any, bucket: str, credentials: Credentials | None,
                   ca_bundle: str | None, *, path_style: bool, connect_timeout: float,
                   read_timeout: float, pool_size: int) -> Wire | None:
        """The path for ``client``'s bucket, or None where botocore must send (no
        credentials, a proxy, a bucket name that is no host name). ``ca_bundle``: the
        session's (AWS_CA_BUNDLE or the config file's ca_bundle), else botocore's default."""
        if credentials is None or any(os.environ.get(name) for name in BOTOCORE_ONLY_ENV):
            return None
        s3_config = client.meta.config.s3 or {}
        if client.meta.config.proxies or s3_config.get("use_accelerate_endpoint") \
                or s3_config.get("use_dualstack_endpoint"):
            return None
        if not path_style and ("." in bucket or bucket.lower() != bucket):
            return None
        from botocore.httpsession import get_cert_path

        return cls(client.meta.endpoint_url, bucket, client.meta.region_name, credentials,
                   path_style=path_style, connect_timeout=connect_timeout,
                   read_timeout=read_timeout, pool_size=pool_size,
                   ca_certs=ca_bundle or get_cert_path(True))

    # -- signing -----------------------------------------------------------------------------

    def _signing_key(self, secret: str, day: str) -> bytes:
        found = self._keys.get((secret, day))
        if found is None:
            key = ("AWS4" + secret).encode()
            for part in (day, self._region, "s3", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys = {(secret, day): key}  # one day's key; a new day replaces it
            found = key
        return found

    def signed_headers(self, method: str, query: Mapping[str, str] | str, now: datetime, *,
                       key: str | None = None,
                       extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The headers of a signed request without a body (SigV4, header-based), to the
        bucket or to its object ``key``; ``query``: its parameters, or their
        canonical_query; ``extra`` headers (x-amz-*) are signed too."""
        frozen = self._credentials.get_frozen_credentials()
        assert frozen.secret_key is not None, "resolved credentials have a secret"
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        headers = {"host": self._host, "x-amz-content-sha256": EMPTY_SHA256,
                   "x-amz-date": stamp}
        if extra:
            headers.update(extra)
        if frozen.token:
            headers["x-amz-security-token"] = frozen.token
        names = sorted(headers)
        canonical = "\n".join((
            method,
            self._object_path(key) if key is not None else self._path,
            query if isinstance(query, str) else canonical_query(query),
            "".join(f"{name}:{headers[name].strip()}\n" for name in names),
            ";".join(names),
            EMPTY_SHA256,
        ))
        scope = day + self._scope_tail
        to_sign = "\n".join(("AWS4-HMAC-SHA256", stamp, scope,
                             hashlib.sha256(canonical.encode()).hexdigest()))
        signature = hmac.new(self._signing_key(frozen.secret_key, day), to_sign.encode(),
                             hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={frozen.access_key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}")
        return headers

    def _object_path(self, key: str) -> str:
        """An object's path: S3 encodes each byte of the key once, '/' kept."""
        return self._path.rstrip("/") + "/" + quote(key, safe="/-_.~")

    # -- requests ----------------------------------------------------------------------------

    def list_objects_v2(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """ListObjectsV2 with botocore's parameter names; answers the fields btar reads
        (Contents: Key, Size, LastModified; IsTruncated; NextContinuationToken) as botocore
        would, keys decoded."""
        query = {"list-type": "2", "encoding-type": "url", "prefix": params.get("Prefix", ""),
                 "max-keys": str(params.get("MaxKeys", 1000))}
        if params.get("StartAfter") is not None:
            query["start-after"] = params["StartAfter"]
        if params.get("ContinuationToken") is not None:
            query["continuation-token"] = params["ContinuationToken"]
        return parse_listing(self._send("GET", query, "ListObjectsV2").body)

    def copy_object(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """CopyObject within this bucket's endpoint, with botocore's parameter names (Key,
        CopySource {Bucket, Key}, MetadataDirective, ChecksumAlgorithm, CopySourceIfMatch,
        ServerSideEncryption, SSEKMSKeyId); answers CopyObjectResult (ETag, LastModified,
        Checksum*) and ServerSideEncryption as botocore would."""
        source = params["CopySource"]
        extra = {"x-amz-copy-source":
                 f"/{source['Bucket']}/{quote(source['Key'], safe='/-_.~')}"}
        for name, header in COPY_HEADERS.items():
            if params.get(name) is not None:
                extra[header] = str(params[name])
        answer = self._send("PUT", {}, "CopyObject", key=params["Key"], extra=extra)
        root = ElementTree.fromstring(answer.body)
        if _local(root.tag) == "Error":
            # A copy can fail after S3 sent 200 (it answers while it copies): botocore reads
            # this as a server error, and so do we.
            raise _error(500, answer.body, answer.headers, "CopyObject")
        result: dict[str, Any] = {_local(child.tag): child.text or "" for child in root}
        if "LastModified" in result:
            result["LastModified"] = _timestamp(result["LastModified"])
        copied: dict[str, Any] = {"CopyObjectResult": result}
        encryption = answer.headers.get("x-amz-server-side-encryption")
        if encryption:
            copied["ServerSideEncryption"] = encryption
        return copied

    def _send(self, method: str, query: Mapping[str, str], operation: str, *,
              key: str | None = None,
              extra: Mapping[str, str] | None = None) -> Answer:
        """A signed request without a body; its answer when 200 (botocore's errors else)."""
        encoded = canonical_query(query)
        headers = self.signed_headers(method, encoded, datetime.now(UTC), key=key, extra=extra)
        target = self._path if key is None else self._object_path(key)
        if encoded:
            target += "?" + encoded
        try:
            answer = self._connections.request(method, target, headers)
        except ConnectError as error:
            if error.timed_out:
                raise ConnectTimeoutError(endpoint_url=self._base, error=error) from error
            raise EndpointConnectionError(endpoint_url=self._base, error=error) from error
        except ExchangeError as error:
            if error.timed_out:
                raise ReadTimeoutError(endpoint_url=self._base, error=error) from error
            raise EndpointConnectionError(endpoint_url=self._base, error=error) from error
        if answer.status == 200:
            return answer
        raise _error(answer.status, answer.body, answer.headers, operation)


def _error(status: int, body: bytes, headers: dict[str, str], operation: str) -> Exception:
    """botocore's ClientError for an error answer (or WireDeclined for a redirect)."""
    code, message = str(status), ""
    if body:
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            pass
        else:
            code = root.findtext("Code") or code
            message = root.findtext("Message") or ""
    if 300 <= status < 400 or code in REDIRECT_CODES:
        return WireDeclined(f"{operation}: {status} {code}")
    answer: Any = {"Error": {"Code": code, "Message": message},
                   "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers}}
    return ClientError(answer, operation)


def _local(tag: str) -> str:
    """An XML tag without its namespace."""
    return tag.rpartition("}")[2]


def parse_listing(body: bytes) -> dict[str, Any]:
    """A ListObjectsV2 answer (encoding-type url) as botocore would parse its btar fields."""
    root = ElementTree.fromstring(body)
    tag = root.tag
    ns = tag[:tag.index("}") + 1] if tag.startswith("{") else ""
    key_tag, size_tag, time_tag = ns + "Key", ns + "Size", ns + "LastModified"
    contents = []
    for entry in root.iterfind(ns + "Contents"):
        contents.append({
            "Key": unquote_plus(entry.findtext(key_tag) or ""),
            "Size": int(entry.findtext(size_tag) or 0),
            "LastModified": _timestamp(entry.findtext(time_tag) or ""),
        })
    answer: dict[str, Any] = {"Contents": contents,
                              "IsTruncated": root.findtext(ns + "IsTruncated") == "true"}
    token = root.findtext(ns + "NextContinuationToken")
    if token is not None:
        answer["NextContinuationToken"] = token
    return answer


def _timestamp(text: str) -> datetime:
    """An S3 time (ISO 8601 in UTC, ``2026-12-06T19:15:16.000Z``)."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

"""What S3's answers and botocore's exceptions mean: their Failure, the error they end in
and its wording, and the credential material botocore may log."""

from __future__ import annotations

import re

from botocore.exceptions import (
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from engine.errors import AccessDenied, LocationMissing, ObjectNotFound, StorageError
from engine.storage.retry import Failure, RedactingFilter, typed_error, worded

_THROTTLE_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "RequestThrottledException", "RequestLimitExceeded", "TooManyRequests",
    "TooManyRequestsException", "BandwidthLimitExceeded", "ServiceUnavailable", "503", "429",
})
_TRANSIENT_CODES = frozenset({
    "InternalError", "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete",
    "500", "502", "504",
})
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
#: the credentials are wrong, expired or lack a permission; retrying cannot help
_DENIED_CODES = frozenset({
    "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken",
    "ExpiredToken", "TokenRefreshRequired", "InvalidClientTokenId", "AllAccessDisabled",
    "AccountProblem", "InvalidSecurity", "UnrecognizedClientException", "RequestTimeTooSkewed",
})
#: codes S3 gives a 401/403 without a body (HEAD requests)
_BARE_DENIED_CODES = frozenset({"", "401", "403", "Forbidden", "Unauthorized"})
_NO_CREDENTIALS = (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)


def _status(exc: ClientError) -> int:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return int(status) if isinstance(status, int) else 0


def classify(exc: BaseException) -> Failure:
    """What a botocore error means for retrying it."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = _status(exc)
        if code in _THROTTLE_CODES or status in (429, 503):
            return Failure.THROTTLED
        if code in _TRANSIENT_CODES or status in (500, 502, 504):
            return Failure.SERVER_ERROR
        if code in _DENIED_CODES or (status in (401, 403) and code in _BARE_DENIED_CODES):
            return Failure.DENIED
        return Failure.FINAL
    if isinstance(exc, ReadTimeoutError):
        return Failure.HUNG  # connected, and no answer came
    if isinstance(exc, BotoConnectionError | HTTPClientError | IncompleteReadError):
        return Failure.UNREACHABLE
    if isinstance(exc, _NO_CREDENTIALS):
        return Failure.DENIED
    return Failure.FINAL


# --- keeping credentials out of logs and messages -------------------------------------------
# botocore logs signed request headers at DEBUG: the access key id (Authorization: Credential=)
# and, with temporary credentials, the session token itself (a secret).
REDACTIONS = RedactingFilter((
    (re.compile(r"(Credential=)[^/\s,'\"]+"), r"\1<redacted>"),
    (re.compile(r"(?i)(x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?)[^'\"\s,}&]+"),
     r"\1<redacted>"),
    (re.compile(r"(?i)(X-Amz-Credential=)[^&\s'\"]+"), r"\1<redacted>"),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{12,}\b"), "<redacted-key-id>"),
))
#: loggers of botocore that print signed requests or canonical requests
NOISY_LOGGERS = ("botocore.endpoint", "botocore.auth", "botocore.awsrequest",
                  "botocore.httpsession", "botocore.parsers", "urllib3.connectionpool")


def redact(text: str) -> str:
    """Remove AWS credential material (key ids, session tokens) from a message."""
    return REDACTIONS.redact(text)


def describe(exc: BaseException, failure: Failure, attempts: int, *, location: str,
             bucket: str, key: str, read_timeout: float) -> StorageError:
    """The engine error of a botocore error (the last of ``attempts``); the message is one
    line and never holds a credential."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "")) or "unknown"
        message = " ".join(str(error.get("Message", "")).split())
        detail = redact(f"{exc.operation_name} failed: {code}: {message}")[:300]
        if code in _NOT_FOUND_CODES:
            return ObjectNotFound(location, key, "no such object")
        if code == "NoSuchBucket":
            named = str(error.get("BucketName") or bucket)
            where = location if named == bucket else f"s3://{named}"
            return LocationMissing(where, key, f"bucket {named} does not exist")
        if failure is Failure.DENIED:
            if code == "RequestTimeTooSkewed":
                return AccessDenied(location, key, "the service refuses requests signed "
                                    f"with this machine's clock: check the clock; {detail}")
            return AccessDenied(location, key, "access denied: check the AWS credentials "
                                "of this location (profile, environment or role) and the "
                                f"bucket policy; {detail}")
        return typed_error(failure, location, key,
                           worded(failure, attempts, detail, read_timeout, _status(exc)))
    detail = redact(" ".join(f"{type(exc).__name__}: {exc}".split()))[:300]
    if failure is Failure.DENIED:
        return AccessDenied(location, key, "no usable AWS credentials: check the profile, "
                            f"environment or role of this location; {detail}")
    return typed_error(failure, location, key, worded(failure, attempts, detail, read_timeout))

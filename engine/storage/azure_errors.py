"""What Azure's answers and azure-core's exceptions mean: their Failure, the error they end in
and its wording, and where SAS tokens travel (URL query strings) so that they are scrubbed."""

from __future__ import annotations

import re

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)

from engine.errors import ObjectNotFound, StorageError
from engine.storage.retry import Failure, RedactingFilter, after_attempts, answered, typed_error


def classify(exc: BaseException) -> Failure:
    """What an azure-core error means for retrying it."""
    if isinstance(exc, ServiceRequestError):
        return Failure.UNREACHABLE  # refused, DNS, TLS: the request never reached the service
    if isinstance(exc, ServiceResponseTimeoutError):
        return Failure.HUNG  # connected, and no answer came
    if isinstance(exc, ServiceResponseError):
        return Failure.UNREACHABLE  # the connection dropped mid-response
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or 0
        code = _error_code(exc)
        if status in (429, 503) or code == "ServerBusy":
            return Failure.THROTTLED
        if code == "ContainerNotFound":
            # The location is unusable until someone creates it, as S3's missing bucket.
            return Failure.MISSING
        if code == "CannotVerifyCopySource":
            # About the source URL or its SAS (Azurite: a source on another host), not a
            # missing or forbidden destination: worded by describe.
            return Failure.FINAL
        if status in (401, 403) or isinstance(exc, ClientAuthenticationError):
            return Failure.DENIED
        if status == 404:
            return Failure.NOT_FOUND
        if status in (408, 500, 502, 504):
            return Failure.SERVER_ERROR
        if 400 <= status < 500:
            return Failure.REJECTED
    if isinstance(exc, ClientAuthenticationError):
        return Failure.DENIED  # a credential (azure-identity) that cannot get a token
    return Failure.FINAL


def describe(exc: BaseException, failure: Failure, attempts: int, *, location: str, key: str,
             what: str, read_timeout: float) -> StorageError:
    """The engine error of an azure-core error (the last of ``attempts`` of ``what``)."""
    detail = _detail(exc)
    tries = after_attempts(attempts)
    if failure is Failure.NOT_FOUND:
        return ObjectNotFound(location, key, "no such object")
    if failure is Failure.MISSING:
        message = f"{what} failed: the container does not exist"
    elif failure is Failure.DENIED:
        message = (f"{what} failed: access denied: check the account key or SAS token of this "
                   "location (account_key_env, sas_token_env) and its permissions; "
                   f"{detail}")
    elif failure is Failure.UNREACHABLE:
        how = "cannot connect" if isinstance(exc, ServiceRequestError) \
            else "the connection dropped"
        message = f"{what} failed: {how}{tries}: {detail}"
    elif failure is Failure.HUNG:
        message = f"{what} failed: no answer within {read_timeout:g} s{tries}: {detail}"
    elif failure is Failure.THROTTLED:
        message = f"{what} throttled by the service{tries}: {detail}"
    elif isinstance(exc, HttpResponseError) and _error_code(exc) == "CannotVerifyCopySource":
        message = (f"{what} failed: the service could not read the copy source (its SAS, its "
                   f"network rules, or the object itself): {detail}")
    elif failure is Failure.SERVER_ERROR and isinstance(exc, HttpResponseError) \
            and exc.status_code:
        message = f"{what} failed: {answered(exc.status_code, attempts)}: {detail}"
    else:
        message = f"{what} failed{tries}: {detail}"
    return typed_error(failure, location, key, message)


_QUERY = re.compile(r"\?[^\s'\"<>]*")
_SIG = re.compile(r"(?i)(sig=)[^&\s'\"<>]+")
#: urllib3 logs request lines at DEBUG, and with SAS authentication those carry the SAS
#: signature in the query string: blank it before any handler sees the record
REDACTIONS = RedactingFilter(((_SIG, r"\1<redacted>"),))
NOISY_LOGGERS = ("urllib3.connectionpool",)
#: messages lose whole query strings, where SAS tokens travel, and any signature left
_SCRUB = RedactingFilter(((_QUERY, "?<redacted>"), (_SIG, r"\1<redacted>")))


def scrub(text: str) -> str:
    """Drop URL query strings and signatures, where SAS tokens travel."""
    return _SCRUB.redact(text)


def _detail(exc: BaseException) -> str:
    parts: list[str] = []
    if isinstance(exc, HttpResponseError):
        if exc.status_code:
            parts.append(f"HTTP {exc.status_code}")
        if code := _error_code(exc):
            parts.append(code)
    message = exc.message if isinstance(exc, AzureError) else str(exc)
    lines = str(message or type(exc).__name__).strip().splitlines()
    first = lines[0] if lines else type(exc).__name__
    parts.append(scrub(first)[:200])
    return " ".join(parts)


def _error_code(exc: HttpResponseError) -> str:
    code = getattr(exc, "error_code", None)
    return str(getattr(code, "value", code) or "")

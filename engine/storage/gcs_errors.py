"""What GCS's answers and the google-cloud-storage transport's exceptions mean: their
Failure, the error they end in and its wording, and the credential material they may log."""

from __future__ import annotations

import json
import re

import requests
import urllib3.exceptions
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions

from engine.errors import AccessDenied, ObjectNotFound, StorageError
from engine.storage.retry import Failure, RedactingFilter, typed_error, worded

try:  # google-cloud-storage 3.x took these over from google-resumable-media
    from google.cloud.storage.exceptions import DataCorruption, InvalidResponse
except ImportError:  # pragma: no cover - 2.x
    from google.resumable_media import DataCorruption, InvalidResponse


#: reasons of a 403 that asks to slow down (older Google APIs answer rate limits with 403)
_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})

#: Errors of the SDK and its transport that call() maps; anything else is a bug and propagates.
SDK_ERRORS: tuple[type[BaseException], ...] = (
    api_exceptions.GoogleAPIError, requests.RequestException, auth_exceptions.GoogleAuthError,
    InvalidResponse, DataCorruption, urllib3.exceptions.HTTPError,
)


def _status_of(exc: BaseException) -> int | None:
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        code = exc.code
        return int(code) if isinstance(code, int) else None
    if isinstance(exc, InvalidResponse | DataCorruption):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        return status if isinstance(status, int) else None
    return None


def _reasons_of(exc: BaseException) -> set[str]:
    """The ``reason`` fields of a JSON API error."""
    errors = getattr(exc, "errors", None) or []
    return {str(e.get("reason")) for e in errors if isinstance(e, dict) and e.get("reason")}


def _service_words(exc: BaseException) -> str:
    """The reason and message of a JSON API error ("rateLimitExceeded: The rate of ..."),
    from the parsed errors or, for uploads and downloads, from the body quoted in the
    message; "" when there are none."""
    errors = getattr(exc, "errors", None) or []
    if not errors:
        text = str(getattr(exc, "message", "") or "")
        start = text.find('{"error"')
        try:  # the body may be followed by more words
            error = json.JSONDecoder().raw_decode(text, start)[0].get("error", {}) \
                if start >= 0 else {}
        except (ValueError, AttributeError):
            error = {}
        errors = error.get("errors") or ([error] if error.get("message") else []) \
            if isinstance(error, dict) else []
    for error in errors:
        if isinstance(error, dict) and error.get("message"):
            reason = str(error.get("reason") or "")
            return f"{reason}: {error['message']}" if reason else str(error["message"])
    return ""


def classify(exc: BaseException) -> Failure:
    """What an SDK or transport error means for retrying it."""
    status = _status_of(exc)
    if status in (429, 503) or (status == 403 and _reasons_of(exc) & _RATE_LIMIT_REASONS):
        return Failure.THROTTLED
    if status in (408, 500, 502, 504) or isinstance(exc, DataCorruption):
        return Failure.SERVER_ERROR
    if status == 401 or (status == 403 and "retentionPolicyNotMet" not in _reasons_of(exc)):
        return Failure.DENIED
    if status == 404:
        return Failure.NOT_FOUND
    if status is not None:
        return Failure.FINAL
    # ConnectTimeout is a ConnectionError too: nobody answered the connect.
    if isinstance(exc, requests.ConnectionError | auth_exceptions.TransportError):
        return Failure.UNREACHABLE
    if isinstance(exc, requests.ReadTimeout | urllib3.exceptions.ReadTimeoutError):
        return Failure.HUNG  # connected, and no answer came
    if isinstance(exc, requests.RequestException | urllib3.exceptions.HTTPError):
        return Failure.BROKEN  # streams broken half-way
    if isinstance(exc, auth_exceptions.RefreshError | auth_exceptions.DefaultCredentialsError):
        return Failure.DENIED  # the credentials cannot get an access token
    return Failure.FINAL


# --- keeping credentials out of logs and messages -------------------------------------------
# An upload session URI authorises uploads by itself (its upload_id is a bearer capability), and
# urllib3 logs request lines at DEBUG; bearer tokens never reach our messages, but be sure.
REDACTIONS = RedactingFilter((
    (re.compile(r"(upload_id=)[^&\s'\"]+"), r"\1<redacted>"),
    (re.compile(r"(?i)(bearer\s+)[^\s'\",]+"), r"\1<redacted>"),
    (re.compile(r"\bya29\.[0-9A-Za-z_.\-]+"), "<redacted-token>"),
    (re.compile(r"(?i)((?:access_token|refresh_token|client_secret|private_key)['\"]?\s*[:=]\s*"
                r"['\"]?)[^'\"\s,}&]+"), r"\1<redacted>"),
))


def redact(text: str) -> str:
    """Remove Google credential material and upload session ids from a message."""
    return REDACTIONS.redact(text)


NOISY_LOGGERS = ("urllib3.connectionpool", "google.auth.transport.requests",
                 "google.cloud.storage")


def describe(exc: BaseException, failure: Failure, attempts: int, *, location: str, key: str,
             read_timeout: float) -> StorageError:
    """The engine error of an SDK or transport error (the last of ``attempts``)."""
    status = _status_of(exc)
    said = _service_words(exc)
    if said:  # the service's own words, without the request line
        detail = redact(f"HTTP {status} {said}")
    elif isinstance(exc, api_exceptions.GoogleAPICallError):
        detail = redact(f"HTTP {status}: {exc.message}")
    else:
        detail = redact(f"{type(exc).__name__}: {exc}")
    detail = " ".join(detail.split())[:300]
    if status == 404:
        return ObjectNotFound(location, key, "no such object")
    if failure is Failure.DENIED:
        return AccessDenied(location, key, "access denied: check the Google credentials of "
                            "this location (GOOGLE_APPLICATION_CREDENTIALS or the service "
                            f"account) and their permissions on the bucket; {detail}")
    return typed_error(failure, location, key,
                       worded(failure, attempts, detail, read_timeout, status))

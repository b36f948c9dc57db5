"""How the cloud backends retry a request, classify what went wrong and keep secrets out of
their SDKs' logs: one path for S3, GCS and Azure.

Each backend classifies its SDK's exceptions into a ``Failure`` and words the final error; the
loop here decides how often each kind of failure is tried (``Attempts``), waits between tries
(``Backoff``, with time and chance injected) and raises the typed StorageError the backend
words. A request that keeps failing for the same kind of reason gives up after that kind's
limit, and any request after ``Attempts.total`` failures in all.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import TypeVar

from engine.errors import (
    AccessDenied,
    LocationMissing,
    LocationUnusable,
    ObjectNotFound,
    StorageError,
    Throttled,
    Unreachable,
)
from engine.storage.base import validate_key

_T = TypeVar("_T")


class Failure(Enum):
    """What a failed request met, as far as retrying it is concerned."""

    #: the service asks to slow down (429, 503, SlowDown, ServerBusy)
    THROTTLED = "throttled"
    #: a server error that may pass (408, 500, 502, 504)
    SERVER_ERROR = "server error"
    #: a stream broke half-way through an answer
    BROKEN = "broken"
    #: no connection: refused, DNS, TLS, or dropped before an answer
    UNREACHABLE = "unreachable"
    #: connected, and no answer came within the read timeout
    HUNG = "hung"
    #: the object is not there
    NOT_FOUND = "not found"
    #: the bucket or container is not there
    MISSING = "missing location"
    #: the credentials are wrong, expired or lack a permission
    DENIED = "denied"
    #: the location answers but takes no writes
    UNUSABLE = "unusable"
    #: a request the service refuses (a 4xx): trying again cannot help
    REJECTED = "rejected"
    #: anything else: not retried
    FINAL = "final"


#: the typed error each failure ends in once its retries are spent
ERROR_TYPES: dict[Failure, type[StorageError]] = {
    Failure.THROTTLED: Throttled,
    Failure.SERVER_ERROR: StorageError,
    Failure.BROKEN: Unreachable,
    Failure.UNREACHABLE: Unreachable,
    Failure.HUNG: Unreachable,
    Failure.NOT_FOUND: ObjectNotFound,
    Failure.MISSING: LocationMissing,
    Failure.DENIED: AccessDenied,
    Failure.UNUSABLE: LocationUnusable,
    Failure.REJECTED: StorageError,
    Failure.FINAL: StorageError,
}


def typed_error(failure: Failure, location: str, key: str, message: str) -> StorageError:
    """The StorageError of ``failure`` with the backend's wording."""
    error = ERROR_TYPES[failure](location, key, message)
    if failure is Failure.REJECTED:
        error.retryable = False
    return error


def after_attempts(attempts: int) -> str:
    """" after N attempts" when a request was tried more than once, else ""."""
    return f" after {attempts} attempts" if attempts > 1 else ""


def answered(status: int, attempts: int) -> str:
    """How a server error reads: "the service kept answering 500 after 3 attempts"."""
    verb = "kept answering" if attempts > 1 else "answered"
    return f"the service {verb} {status}{after_attempts(attempts)}"


def worded(failure: Failure, attempts: int, detail: str, read_timeout: float,
           status: int | None = None) -> str:
    """The reason of a failure whose retries are spent, as S3 and GCS word it."""
    tries = after_attempts(attempts)
    if failure is Failure.THROTTLED:
        return f"still throttled{tries}: {detail}"
    if failure is Failure.HUNG:
        return f"no answer within {read_timeout:g} s{tries}: {detail}"
    if failure in (Failure.UNREACHABLE, Failure.BROKEN):
        return f"no answer{tries}: {detail}"
    if failure is Failure.SERVER_ERROR and status:
        return f"{answered(status, attempts)}: {detail}"
    return detail


@dataclass(frozen=True)
class Attempts:
    """How many failures of each kind a request may meet before it gives up."""

    #: tries of a request whatever the failures (throttling, server errors, broken streams)
    total: int
    #: tries of a request that cannot connect: an outage should surface within seconds
    unreachable: int = 3
    #: tries of a request that got no answer: one retry for a single lost answer, so a hanging
    #: endpoint is Unreachable after about two read timeouts, not ``total`` of them
    hung: int = 2

    def limit(self, failure: Failure) -> int:
        """Failures of this kind a request may meet (never more than ``total``)."""
        if failure in (Failure.THROTTLED, Failure.SERVER_ERROR, Failure.BROKEN):
            return self.total
        if failure is Failure.UNREACHABLE:
            return min(self.total, self.unreachable)
        if failure is Failure.HUNG:
            return min(self.total, self.hung)
        return 1


def backoff_delay(attempt: int, base: float, cap: float, jitter: float) -> float:
    """Seconds to wait before retry ``attempt + 1``: exponential, capped, the upper half
    jittered (``jitter`` in [0, 1)) so that many clients do not retry in step."""
    ceiling = min(cap, base * 2.0**attempt)
    return ceiling * (0.5 + 0.5 * jitter)


@dataclass(frozen=True)
class Backoff:
    """How a cloud backend waits before it retries a request. Time and chance come in
    through ``sleep`` and ``jitter`` so that tests neither wait nor depend on luck."""

    base: float
    cap: float
    sleep: Callable[[float], None]
    jitter: Callable[[], float]

    def delay(self, attempt: int) -> float:
        """Seconds before retry ``attempt + 1`` (see backoff_delay)."""
        return backoff_delay(attempt, self.base, self.cap, self.jitter())

    def wait(self, attempt: int) -> None:
        self.sleep(self.delay(attempt))


#: turns an SDK exception, its Failure and the number of tries into the error to raise
Describe = Callable[[BaseException, Failure, int], StorageError]


@dataclass(frozen=True)
class Retry:
    """The retry loop of one storage: which SDK errors it catches, how it classifies them,
    how often it tries and how long it waits."""

    #: the storage's display name, for the log
    name: str
    #: the SDK and transport errors to classify; anything else propagates untouched
    errors: tuple[type[BaseException], ...]
    classify: Callable[[BaseException], Failure]
    attempts: Attempts
    backoff: Backoff
    log: logging.Logger
    #: whether the raised error keeps the SDK's exception as its cause (Azure's may quote
    #: SAS-signed URLs, so it does not)
    chain: bool = True

    def run(self, key: str, operation: Callable[[], _T], describe: Describe) -> _T:
        """Run ``operation`` until it succeeds or a failure's retries are spent."""
        failures: dict[Failure, int] = {}
        while True:
            try:
                return operation()
            except self.errors as exc:
                self.after_failure(exc, key, failures, describe)

    def after_failure(self, exc: BaseException, key: str, failures: dict[Failure, int],
                      describe: Describe) -> None:
        """Wait before trying a failed request again, or raise its error. ``failures``
        counts the request's failures so far by kind."""
        failure = self.classify(exc)
        failures[failure] = failures.get(failure, 0) + 1
        total = sum(failures.values())
        if failures[failure] >= self.attempts.limit(failure) or total >= self.attempts.total:
            error = describe(exc, failure, total)
            if self.chain:
                raise error from exc
            raise error from None
        self.log.info("%s: %s: %s, retrying (attempt %d)", self.name, key or "-",
                      type(exc).__name__, total + 1)
        self.backoff.wait(total - 1)


# --- keeping credentials out of logs ----------------------------------------------------------

#: a pattern of credential material and what replaces it
Redaction = tuple[re.Pattern[str], str]


class RetriedRequests:
    """What S3 and GCS share around their requests: keys under the location's prefix, and
    every request through one Retry, whose final failure the backend words (_describe)."""

    name: str
    prefix: str
    retry: Retry

    def full_key(self, key: str) -> str:
        """The provider's name of a location-relative key (validated)."""
        return self.prefix + validate_key(self.name, key)

    def backoff(self, attempt: int) -> None:
        """Sleep before retry number ``attempt + 1``: exponential, capped, half jittered."""
        self.retry.backoff.wait(attempt)

    def _describe(self, key: str) -> Describe:
        raise NotImplementedError

    def call(self, key: str, operation: Callable[[], _T]) -> _T:
        """Run one request, retrying throttling, server errors, timeouts and broken
        connections as far as Retry allows."""
        return self.retry.run(key, operation, self._describe(key))


class RedactingFilter(logging.Filter):
    """Rewrites log records of SDK loggers so that no credential material in ``redactions``
    reaches a handler (signed request headers, tokens, SAS signatures, session ids)."""

    def __init__(self, redactions: Iterable[Redaction]) -> None:
        super().__init__()
        self.redactions = tuple(redactions)

    def redact(self, text: str) -> str:
        """``text`` with every credential it holds replaced."""
        for pattern, replacement in self.redactions:
            text = pattern.sub(replacement, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's problem, not ours
            return True
        cleaned = self.redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True

    def install(self, loggers: Iterable[str]) -> None:
        """Attach to the named loggers, once however many storages are opened."""
        for name in loggers:
            logger = logging.getLogger(name)
            if self not in logger.filters:
                logger.addFilter(self)


def utc(moment: datetime | None) -> datetime:
    """An SDK's time as an aware UTC datetime (naive times are UTC; none is now)."""
    if moment is None:
        return datetime.now(UTC)
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)

"""The cloud backends' one retry loop without an SDK: how often each kind of failure is tried,
how long it waits, which typed error it ends in, and the log redaction filter."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from engine.errors import (
    AccessDenied,
    LocationMissing,
    LocationUnusable,
    ObjectNotFound,
    StorageError,
    Throttled,
    Unreachable,
)
from engine.storage.retry import (
    ERROR_TYPES,
    Attempts,
    Backoff,
    Failure,
    RedactingFilter,
    Retry,
    typed_error,
    utc,
    worded,
)


class SdkError(Exception):
    """Stands for an SDK's exception; ``failure`` is what the backend would classify it as."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.value)
        self.failure = failure


def classify(exc: BaseException) -> Failure:
    assert isinstance(exc, SdkError)
    return exc.failure


def describe(exc: BaseException, failure: Failure, attempts: int) -> StorageError:
    return typed_error(failure, "cloud://b", "k", worded(failure, attempts, str(exc), 60.0, 503))


def make(total: int = 8, *, chain: bool = True) -> tuple[Retry, list[float]]:
    sleeps: list[float] = []
    retry = Retry("cloud://b", (SdkError,), classify, Attempts(total),
                  Backoff(0.25, 20.0, sleeps.append, lambda: 1.0),
                  logging.getLogger("test.retry"), chain=chain)
    return retry, sleeps


def failing(*failures: Failure, answer: str = "ok") -> tuple[Callable[[], str], list[int]]:
    """An operation that raises one SdkError per failure given, then answers."""
    calls: list[int] = []
    pending = list(failures)

    def operation() -> str:
        calls.append(1)
        if pending:
            raise SdkError(pending.pop(0))
        return answer

    return operation, calls


def test_a_request_succeeds_after_retries_with_exponential_backoff() -> None:
    retry, sleeps = make()
    operation, calls = failing(Failure.THROTTLED, Failure.SERVER_ERROR, Failure.UNREACHABLE)
    assert retry.run("k", operation, describe) == "ok"
    assert len(calls) == 4
    assert sleeps == [0.25, 0.5, 1.0]


@pytest.mark.parametrize(("failure", "tries", "error"), [
    (Failure.THROTTLED, 8, Throttled),
    (Failure.SERVER_ERROR, 8, StorageError),
    (Failure.BROKEN, 8, Unreachable),
    (Failure.UNREACHABLE, 3, Unreachable),  # an outage surfaces within seconds
    (Failure.HUNG, 2, Unreachable),  # a request with no answer is tried twice
    (Failure.NOT_FOUND, 1, ObjectNotFound),
    (Failure.MISSING, 1, LocationMissing),
    (Failure.DENIED, 1, AccessDenied),
    (Failure.UNUSABLE, 1, LocationUnusable),
    (Failure.REJECTED, 1, StorageError),
    (Failure.FINAL, 1, StorageError),
])
def test_each_kind_of_failure_is_tried_as_often_as_it_may_help(
        failure: Failure, tries: int, error: type[StorageError]) -> None:
    retry, sleeps = make()
    operation, calls = failing(*[failure] * 20)
    with pytest.raises(StorageError) as caught:
        retry.run("k", operation, describe)
    assert type(caught.value) is error
    assert len(calls) == tries
    assert len(sleeps) == tries - 1


def test_max_attempts_bounds_every_kind_and_their_sum() -> None:
    assert Attempts(2).limit(Failure.UNREACHABLE) == 2
    assert Attempts(1).limit(Failure.HUNG) == 1
    retry, _ = make(total=4)
    operation, calls = failing(Failure.HUNG, Failure.UNREACHABLE, Failure.UNREACHABLE,
                               Failure.THROTTLED, Failure.THROTTLED)
    with pytest.raises(Throttled, match="after 4 attempts"):
        retry.run("k", operation, describe)
    assert len(calls) == 4


def test_failures_are_counted_per_kind() -> None:
    """Two lost answers end a request even after other failures, one does not."""
    retry, _ = make()
    operation, calls = failing(Failure.HUNG, Failure.THROTTLED, Failure.HUNG)
    with pytest.raises(Unreachable, match="no answer within 60 s after 3 attempts"):
        retry.run("k", operation, describe)
    assert len(calls) == 3


def test_other_exceptions_are_not_caught() -> None:
    retry, sleeps = make()

    def broken() -> str:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        retry.run("k", broken, describe)
    assert sleeps == []


@pytest.mark.parametrize("chain", [True, False])
def test_the_sdk_error_is_kept_as_cause_only_when_asked(chain: bool) -> None:
    retry, _ = make(chain=chain)
    operation, _ = failing(Failure.FINAL)
    with pytest.raises(StorageError) as caught:
        retry.run("k", operation, describe)
    assert isinstance(caught.value.__cause__, SdkError) is chain
    assert caught.value.__suppress_context__ is True


def test_after_failure_lets_a_caller_keep_its_own_loop() -> None:
    retry, sleeps = make()
    failures: dict[Failure, int] = {}
    retry.after_failure(SdkError(Failure.HUNG), "k", failures, describe)
    assert failures == {Failure.HUNG: 1}
    with pytest.raises(Unreachable):
        retry.after_failure(SdkError(Failure.HUNG), "k", failures, describe)
    assert sleeps == [0.25]


def test_every_failure_has_a_typed_error_and_a_fault_class() -> None:
    assert set(ERROR_TYPES) == set(Failure)
    faults = {failure: typed_error(failure, "loc", "k", "m").fault for failure in Failure}
    assert faults[Failure.THROTTLED] == "throttled"
    assert faults[Failure.HUNG] == faults[Failure.UNREACHABLE] == "unreachable"
    assert faults[Failure.MISSING] == "missing"
    assert faults[Failure.DENIED] == "denied"
    assert faults[Failure.UNUSABLE] == "unusable"
    assert faults[Failure.SERVER_ERROR] == faults[Failure.FINAL] == "error"
    assert typed_error(Failure.REJECTED, "loc", "k", "m").retryable is False
    assert typed_error(Failure.FINAL, "loc", "k", "m").retryable is True


def test_wording_of_spent_retries() -> None:
    assert worded(Failure.THROTTLED, 3, "d", 60.0) == "still throttled after 3 attempts: d"
    assert worded(Failure.HUNG, 2, "d", 0.5) == "no answer within 0.5 s after 2 attempts: d"
    assert worded(Failure.BROKEN, 1, "d", 60.0) == "no answer: d"
    assert worded(Failure.SERVER_ERROR, 2, "d", 60.0, 500) == \
        "the service kept answering 500 after 2 attempts: d"
    assert worded(Failure.SERVER_ERROR, 1, "d", 60.0, 502) == "the service answered 502: d"
    assert worded(Failure.SERVER_ERROR, 2, "d", 60.0) == "d"
    assert worded(Failure.FINAL, 2, "d", 60.0) == "d"


def test_backoff_is_capped_and_jittered_in_its_upper_half() -> None:
    sleeps: list[float] = []
    backoff = Backoff(1.0, 4.0, sleeps.append, lambda: 0.0)
    for attempt in range(5):
        backoff.wait(attempt)
    assert sleeps == [0.5, 1.0, 2.0, 2.0, 2.0]
    assert Backoff(1.0, 4.0, sleeps.append, lambda: 1.0).delay(10) == 4.0


def test_the_redacting_filter_rewrites_records_and_installs_once(
        caplog: pytest.LogCaptureFixture) -> None:
    secrets = RedactingFilter(((re.compile(r"(token=)\w+"), r"\1<redacted>"),))
    name = "test.retry.sdk"
    secrets.install([name])
    secrets.install([name])
    logger = logging.getLogger(name)
    assert logger.filters.count(secrets) == 1
    try:
        with caplog.at_level(logging.DEBUG, logger=name):
            logger.debug("GET /o?token=%s&x=1", "s3cr3t")
            logger.debug("nothing to hide %d", 1)
    finally:
        logger.removeFilter(secrets)
    assert "s3cr3t" not in caplog.text
    assert "token=<redacted>&x=1" in caplog.text
    assert "nothing to hide 1" in caplog.text
    assert secrets.redact("a token=abc") == "a token=<redacted>"


def test_utc() -> None:
    assert utc(datetime(2026, 1, 2, 3)) == datetime(2026, 1, 2, 3, tzinfo=UTC)
    plus_one = datetime(2026, 1, 2, 4, tzinfo=timezone(timedelta(hours=1)))
    assert utc(plus_one) == datetime(2026, 1, 2, 3, tzinfo=UTC)
    assert utc(plus_one).tzinfo is UTC
    assert utc(None).tzinfo is UTC

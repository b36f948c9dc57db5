"""Effect requests: what the engine's procedures ask the outside world to do.

A procedure is a generator that yields these and receives their results; a driver (the real
runtime, or the simulator under SimPy's clock) carries them out. Failures of ``ListPage`` and
``ReadObject`` are thrown into the generator as StorageError; a copy or a fetch reports its
own failure in its result.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from engine.errors import StorageError
from engine.model import Digest
from engine.storage.base import ListPage as ListPageResult


@dataclass(frozen=True)
class Now:
    """-> datetime (UTC)"""


@dataclass(frozen=True)
class ListPage:
    """-> engine.storage.base.ListPage"""

    region: str
    prefix: str
    start_after: str | None = None
    limit: int = 1000


@dataclass(frozen=True)
class ReadObject:
    """-> bytes (small objects only: markers, manifests)"""

    region: str
    key: str


@dataclass(frozen=True)
class CopyTask:
    """Copy ``key`` from ``source`` to the same key in ``destination``, expecting ``sha256``
    or, when the layout records no SHA-256, ``digest`` (None too: verified against the
    source's own bytes, see engine.transfer)."""

    source: str
    destination: str
    key: str
    size: int
    sha256: str | None
    digest: Digest | None = None


@dataclass(frozen=True)
class StartCopy:
    """-> bool: the copy was started and runs beside the procedure (False: the driver is
    stopping and started nothing). Its result comes back through ``NextCompletions``."""

    task: CopyTask


@dataclass(frozen=True)
class NextCompletions:
    """-> Completions: waits until at least one copy finished, ``timeout`` seconds passed
    (None: no limit; with no copy in flight that returns at once) or a stop was asked."""

    timeout: float | None = None


class ErrorKind(StrEnum):
    """What went wrong with a failed copy (a StrEnum: journals and metrics see the value)."""

    UNREACHABLE = "unreachable"
    MISSING = "missing"
    THROTTLED = "throttled"
    MISMATCH = "mismatch"
    OTHER = "other"


class Side(StrEnum):
    """The side of a copy that failed."""

    SOURCE = "source"
    DESTINATION = "destination"


@dataclass(frozen=True)
class CopyResult:
    """What happened to one copy. ``sha256`` is the hash of the destination's bytes when it
    was established; ``identical_to_source`` when a digest of the source's bytes equal to one
    of the copy's proved equality; ``digests`` every other digest of the destination's bytes
    that the copy established (what a later download is verified against when no SHA-256
    is known); ``verified_by`` says how."""

    task: CopyTask
    ok: bool
    method: str = ""
    sha256: str | None = None
    identical_to_source: bool = False
    verified_by: str = ""
    digests: tuple[Digest, ...] = ()
    #: the SHA-256 of the source's bytes when a copy of an object without a recorded one
    #: established it (the source read in its region, or proven equal to the copy's): the
    #: catalog keeps it, so the object is never read there again
    source_sha256: str | None = None
    error: str = ""
    #: what went wrong, when not ok
    error_kind: ErrorKind | None = None
    #: which side failed, when not ok
    failed_side: Side | None = None
    #: the fault class of the side that failed (StorageError.fault), and what went wrong
    #: without the location and the key (StorageError.message), when known
    fault: str = ""
    reason: str = ""


@dataclass(frozen=True)
class StartRequest:
    """-> None: carry out ``request`` beside the procedure (so that a slow or dead location
    holds up only what waits for it); its outcome comes back through ``NextCompletions`` as
    a RequestDone with the same ``ticket``."""

    ticket: int
    request: ListPage | ReadObject | DeleteBatch


@dataclass(frozen=True)
class RequestDone:
    """The outcome of a started request: its result, or the StorageError it raised."""

    ticket: int
    result: Any = None
    error: StorageError | None = None


@dataclass(frozen=True)
class Completions:
    """Every copy and request that finished since the last look, in the order they
    finished."""

    results: tuple[CopyResult, ...]
    #: the driver was asked to stop: start nothing more, collect what is in flight
    stop_requested: bool = False
    requests: tuple[RequestDone, ...] = ()


@dataclass(frozen=True)
class FetchTask:
    """Download ``key`` of ``region`` to the local file ``path``, expecting ``sha256`` or,
    when none is recorded for the copy, ``digest``."""

    region: str
    key: str
    path: str
    size: int
    sha256: str | None
    digest: Digest | None = None

    @property
    def expected(self) -> Digest | None:
        return Digest("sha256", self.sha256) if self.sha256 is not None else self.digest


@dataclass(frozen=True)
class FetchBatch:
    """-> tuple[FetchResult, ...] in task order. A file already there with the right hash is
    not downloaded again (that is what makes an interrupted fork resumable)."""

    tasks: tuple[FetchTask, ...]


@dataclass(frozen=True)
class FetchResult:
    task: FetchTask
    ok: bool
    skipped: bool = False
    error: str = ""


@dataclass(frozen=True)
class DeleteBatch:
    """-> tuple[str, ...]: an error message per key ("" when deleted)."""

    region: str
    keys: tuple[str, ...]


Effect = (Now | ListPage | ReadObject | StartCopy | StartRequest | NextCompletions
          | FetchBatch | DeleteBatch)

#: A procedure: yields effects, receives their results, returns its outcome.
Procedure = Generator[Effect, Any, Any]

T = TypeVar("T")


def drive(procedure: Generator[Effect, Any, T], perform: Callable[[Effect], Any]) -> T:
    """Run ``procedure`` to its end, carrying out each effect with ``perform`` at once;
    a StorageError from ``perform`` is thrown back into the procedure, which decides."""
    result: Any = None
    error: StorageError | None = None
    while True:
        try:
            effect = procedure.throw(error) if error is not None else procedure.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        result, error = None, None
        try:
            result = perform(effect)
        except StorageError as failure:
            error = failure

__all__ = [
    "Completions", "CopyResult", "CopyTask", "DeleteBatch", "Effect", "ErrorKind", "FetchBatch",
    "FetchResult", "FetchTask", "ListPage", "ListPageResult", "NextCompletions", "Now",
    "Procedure", "ReadObject", "RequestDone", "Side", "StartCopy", "StartRequest", "datetime",
    "drive",
]

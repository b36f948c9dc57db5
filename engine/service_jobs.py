"""What the scheduler runs and reports: a service to replicate (its job), its state within a
run, the hooks a front listens on, and the pace of a service's listings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from engine.formats.base import BackupLayout
from engine.listing import FullListingMemo
from engine.model import Service
from engine.replication import PassOutcome
from engine.retention import RetentionPolicy


def next_wait(previous: float, busy: bool, *, busy_interval: float, interval: float,
              since_work: float | None = None) -> float:
    """Seconds before a service's next listing: soon after one that found work while work
    keeps coming (backups tend to come in streams, and an incremental listing costs a few
    requests), then twice as long after each idle one, up to ``interval``.

    ``since_work``: seconds since the listing before that found work (None: none did). Work
    that comes alone, more than ``interval`` after the last (a log segment a minute), starts
    no stream: listing it again at the busy pace would find nothing five times over, and the
    next listing at ``interval`` still meets the lag a poll interval promises."""
    if busy and (since_work is None or since_work <= interval):
        return min(busy_interval, interval)
    return min(interval, max(previous, busy_interval) * 2)


@dataclass(frozen=True)
class ServiceJob:
    """A service to replicate, with how its primary is read and its retention."""

    service: Service
    layout: BackupLayout
    retention: RetentionPolicy | None = None


@dataclass
class Hooks:
    """What the scheduler tells its front while it runs (logs, metrics, a simulator's
    journal). Called between effects, on the scheduler's own thread."""

    #: a service's listing cycle ended: what it discovered, copied, published, failed
    on_cycle: Callable[[PassOutcome], None] | None = None
    #: an item became available in a region: service, region, item, when, lag in seconds
    on_publish: Callable[[str, str, str, datetime, float], None] | None = None


@dataclass
class ServiceRun:
    """One service in a run: its job, what its current cycle did, when it is listed next."""

    job: ServiceJob
    outcome: PassOutcome
    next_listing: datetime | None = None
    wait: float = 0.0
    #: when a cycle last began after one that found work (see next_wait)
    worked_at: datetime | None = None
    #: the primary could not be read: its copies wait for the next listing
    primary_down: bool = False
    cycles: int = 0
    retention_due: bool = False
    #: the pages of its last full listing, for the next one to reuse
    listing_memo: FullListingMemo = field(default_factory=FullListingMemo)

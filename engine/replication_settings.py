"""The settings of replication, apart from the code that replicates: `btar status` reads them
(the base stream limit) without loading the layouts, listing and effects."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReplicationSettings:
    #: copies in flight at once, over every service and destination
    concurrency: int = 8
    #: streams base backups may hold at once (None: all but two, at least one), so that log
    #: segments always find a free stream
    base_streams: int | None = None
    #: attempts per object between two listings of its service, then the item is failed
    max_attempts: int = 3
    #: longest wait in seconds between two listings of a service (when idle)
    poll_interval: float = 10.0
    #: wait after a listing that found work; it doubles after each idle listing
    busy_poll_interval: float = 0.5
    list_page_size: int = 1000
    #: seconds between full listings of a primary; incremental listings in between
    full_listing_interval: float = 600.0
    #: seconds after which a listed key counts as settled (see engine.listing)
    listing_settle: float = 60.0
    #: seconds to wait after a batch the destination throttled, doubling while it goes on
    throttle_backoff: float = 1.0
    throttle_backoff_cap: float = 30.0

    @property
    def base_stream_limit(self) -> int:
        if self.base_streams is not None:
            return max(1, min(self.base_streams, self.concurrency))
        return max(1, self.concurrency - max(1, self.concurrency // 4))

"""Prometheus metrics of a running `btar sync` (prometheus-client, imported only when asked
for). Gauges are refreshed after every pass from the application API, in the sync's own
thread, so the HTTP thread never touches the catalog."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.api import Btar, PassOutcome
from engine.effects import ErrorKind
from engine.errors import FAULT_CLASSES
from engine.model import RegionState
from engine.runtime import CopyProgress


class SyncMetrics:
    """The metrics of one btar installation, on their own registry."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = CollectorRegistry()
        labels = ["service", "region"]
        self.lag = Gauge("btar_replication_lag_seconds", "Age of the oldest primary item not "
                         "yet published in the region", labels, registry=self.registry)
        self.window_start = Gauge("btar_window_start_timestamp_seconds",
                                  "Start of the region's restorable window", labels,
                                  registry=self.registry)
        self.window_end = Gauge("btar_window_end_timestamp_seconds",
                                "End of the region's restorable window", labels,
                                registry=self.registry)
        self.paused = Gauge("btar_region_paused", "1 when replication to the region is paused",
                            labels, registry=self.registry)
        self.fault = Gauge("btar_region_fault", "1 while the region fails for the service, "
                           "by fault class (unreachable, missing, denied, unusable, throttled, "
                           "error)", [*labels, "fault"], registry=self.registry)
        self.fault_since = Gauge("btar_region_fault_since_timestamp_seconds",
                                 "Since when the region fails for the service (0: it answers)",
                                 labels, registry=self.registry)
        self.staleness = Gauge("btar_primary_staleness_seconds", "Seconds since the primary "
                               "was last listed: what grows while it cannot be reached",
                               ["service"], registry=self.registry)
        self.last_sync = Gauge("btar_last_successful_sync_timestamp_seconds",
                               "When a pass for the service last ended without failures",
                               ["service"], registry=self.registry)
        self.objects = Counter("btar_objects_copied", "Objects copied and verified",
                               ["service"], registry=self.registry)
        self.bytes = Counter("btar_bytes_copied", "Bytes copied and verified", ["service"],
                             registry=self.registry)
        self.failures = Counter("btar_copy_failures", "Copies that failed, by reason",
                                ["reason"], registry=self.registry)
        self.unexpected = Counter("btar_unexpected_errors", "Listing cycles an unexpected "
                                  "error (a bug) ended early", ["service"],
                                  registry=self.registry)

    def observe_copy(self, progress: CopyProgress) -> None:
        """Count a failed copy by its reason (called for every finished copy)."""
        result = progress.last
        if result is None:
            return
        if not result.ok:
            self.failures.labels(result.error_kind or ErrorKind.OTHER).inc()
        elif result.task.sha256 is not None and result.sha256 is not None \
                and result.sha256 != result.task.sha256:
            self.failures.labels("checksum").inc()

    def observe_pass(self, outcome: PassOutcome, now: datetime) -> None:
        self.objects.labels(outcome.service).inc(outcome.copied_objects)
        self.bytes.labels(outcome.service).inc(outcome.copied_bytes)
        if outcome.unexpected:
            self.unexpected.labels(outcome.service).inc()
        if not (outcome.failed or outcome.paused or outcome.primary_error
                or outcome.unexpected):
            self.last_sync.labels(outcome.service).set(now.timestamp())

    def refresh(self, app: Btar) -> None:
        """Gauges from the current status of every service."""
        for status in app.status():
            for region in status.regions:
                labels = (status.name, region.region)
                if region.window.start is not None and region.window.end is not None:
                    self.window_start.labels(*labels).set(region.window.start.timestamp())
                    self.window_end.labels(*labels).set(region.window.end.timestamp())
                self.paused.labels(*labels).set(int(region.state == RegionState.PAUSED))
                fault = region.fault
                for kind in FAULT_CLASSES:
                    self.fault.labels(*labels, kind).set(int(fault is not None
                                                             and fault.kind == kind))
                self.fault_since.labels(*labels).set(fault.since.timestamp() if fault else 0)
                if region.region == status.additional_region \
                        and status.current_lag_seconds is not None:
                    self.lag.labels(*labels).set(status.current_lag_seconds)
            if status.staleness_seconds is not None:
                self.staleness.labels(status.name).set(status.staleness_seconds)

    def serve(self, port: int, address: str = "127.0.0.1") -> Any:
        """Serve /metrics over HTTP in a daemon thread; returns the server."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=address, registry=self.registry)
        return server

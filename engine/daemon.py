"""`btar sync` as a long-running service: one continuous replication run, a clean stop on
SIGTERM or SIGINT after the copies in flight, structured logs, optional Prometheus metrics."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from engine.api import Btar, PassOutcome
from engine.metrics import SyncMetrics
from engine.runtime import LiveDriver
from engine.service_jobs import Hooks


def log_outcome(logger: logging.Logger, outcome: PassOutcome) -> None:
    fields = {"service": outcome.service, "discovered": outcome.discovered,
              "published": len(outcome.published), "objects": outcome.copied_objects,
              "bytes": outcome.copied_bytes, "failed": len(outcome.failed)}
    if outcome.unexpected:
        logger.error("%s: %s", outcome.service, outcome.unexpected, extra=fields)
        logger.debug("%s: %s", outcome.service, outcome.unexpected_detail, extra=fields)
    if outcome.primary_error:
        logger.error("%s: primary unreachable: %s", outcome.service, outcome.primary_error,
                     extra=fields)
    for region, reason in sorted(outcome.paused.items()):
        logger.warning("%s: %s paused: %s", outcome.service, region, reason,
                       extra={**fields, "region": region})
    if outcome.failed:
        logger.warning("%s: %d items not published: %s", outcome.service,
                       len(outcome.failed), ", ".join(outcome.failed[:5]), extra=fields)
    if outcome.published or outcome.discovered:
        logger.info("%s: %d new in primary, %d published, %d objects copied",
                    outcome.service, outcome.discovered, len(outcome.published),
                    outcome.copied_objects, extra=fields)


def run_sync(app: Btar, names: Sequence[str], *, logger: logging.Logger,
             metrics: SyncMetrics | None = None,
             stop: threading.Event | None = None) -> list[PassOutcome]:
    """Replicate until a stop is asked (SIGTERM/SIGINT or ``stop``): each service is listed
    on its own pace (engine.scheduler) while copies of every service are in flight. Logs
    each listing cycle's outcome; returns the last outcome of each service."""
    stop = stop or threading.Event()
    driver = app.driver
    if isinstance(driver, LiveDriver):
        driver.stop_requested = stop
        if metrics is not None:
            driver.on_copy = metrics.observe_copy

    def ask_stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("%s received: stopping after the copies in flight",
                    signal.Signals(signum).name)
        stop.set()

    refreshed: list[float] = []

    def on_cycle(outcome: PassOutcome) -> None:
        log_outcome(logger, outcome)
        if metrics is None:
            return
        now = app.driver.now()
        metrics.observe_pass(outcome, now)
        # Gauges read every service's status: at most once per poll interval.
        if not refreshed or now.timestamp() - refreshed[0] >= app.poll_interval:
            refreshed[:] = [now.timestamp()]
            metrics.refresh(app)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, ask_stop)
    try:
        outcomes = app.driver.run(app.replication(list(names) or None, once=False,
                                                  hooks=Hooks(on_cycle=on_cycle)))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    logger.info("sync stopped")
    return outcomes

"""`btar sync` as a long-running service: passes on an interval, clean stop on SIGTERM or
SIGINT between copy batches, structured logs, optional Prometheus metrics."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from engine.api import Btar, PassOutcome
from engine.metrics import SyncMetrics
from engine.runtime import LiveDriver, StopRequested


def log_outcome(logger: logging.Logger, outcome: PassOutcome) -> None:
    fields = {"service": outcome.service, "discovered": outcome.discovered,
              "published": len(outcome.published), "objects": outcome.copied_objects,
              "bytes": outcome.copied_bytes, "failed": len(outcome.failed)}
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


def next_wait(previous: float, busy: bool, *, busy_interval: float, interval: float) -> float:
    """Seconds before the next pass: soon after a pass that found work (backups tend to come
    in streams, and an incremental pass costs a few listing requests), then twice as long
    after each idle pass, up to ``interval``."""
    if busy:
        return min(busy_interval, interval)
    return min(interval, max(previous, busy_interval) * 2)


def run_sync(app: Btar, names: Sequence[str], *, interval: float, once: bool,
             logger: logging.Logger, metrics: SyncMetrics | None = None,
             stop: threading.Event | None = None,
             busy_interval: float | None = None) -> list[PassOutcome]:
    """Run passes until ``once`` is done or a stop is asked (SIGTERM/SIGINT or ``stop``),
    waiting between them as ``next_wait`` says (``busy_interval`` defaults to
    ``interval``: a fixed pace). Returns the outcomes of the last pass."""
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

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, ask_stop)
    outcomes: list[PassOutcome] = []
    wait = interval
    try:
        while not stop.is_set():
            try:
                outcomes = app.sync(list(names) or None)
            except StopRequested:
                break
            now = app.driver.now()
            for outcome in outcomes:
                log_outcome(logger, outcome)
                if metrics is not None:
                    metrics.observe_pass(outcome, now)
            if metrics is not None:
                metrics.refresh(app)
            if once:
                break
            busy = any(o.discovered or o.published for o in outcomes)
            wait = next_wait(wait, busy, busy_interval=busy_interval or interval,
                             interval=interval)
            stop.wait(wait)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    logger.info("sync stopped" if stop.is_set() else "sync done")
    return outcomes

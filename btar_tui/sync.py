"""One sync of every replicable service, run in a thread worker, reporting as it goes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual.message import Message

from btar_tui.bridge import Bridge
from btar_tui.messages import CopyProgressed, StatusRefreshed, SyncFinished, SyncStarted
from btar_tui.views import read_status
from engine.api import Btar
from engine.errors import BtarError, SyncAlreadyRunning
from engine.model import REPLICABLE_TYPES
from engine.units import byte_size

#: at most one copy-progress message per this many seconds (and always the last one)
PROGRESS_EVERY = 0.1


def sync_all(bridge: Bridge, post: Callable[[Message], object]) -> None:
    """One replication pass per replicable service, holding the catalog's lock as `btar
    sync` does: while a `btar sync` daemon holds it, the daemon does the copying and this
    only says so. The bridge's lock is released between services so the screens can read
    the catalog while a long sync goes on, and the status is re-read after each service so
    the table follows the sync."""
    try:
        lock = bridge.call(lambda b: b.replication_lock())
    except SyncAlreadyRunning as running:
        who = f"pid {running.pid}" if running.pid else "another process"
        post(SyncFinished(f"not synced here: btar sync ({who}) replicates this catalog; "
                          "this screen manages and watches", []))
        return
    try:
        _sync_each(bridge, post)
    finally:
        if lock is not None:
            lock.release()


def _sync_each(bridge: Bridge, post: Callable[[Message], object]) -> None:
    names = bridge.call(lambda b: [s.name for s in b.services() if s.type in REPLICABLE_TYPES])
    published = copied = copied_bytes = faults = 0
    problems: list[str] = []
    for name in names:
        post(SyncStarted(name))
        try:
            outcomes = bridge.call(_pass_of(name), on_copy=_progress_poster(name, post))
        except BtarError as error:
            problems.append(f"{name}: {error}")
            continue
        for o in outcomes:
            published += len(o.published)
            copied += o.copied_objects
            copied_bytes += o.copied_bytes
            # Recorded as faults of their regions: the problems banner shows them.
            faults += bool(o.failed) + len(o.paused) + bool(o.primary_error)
        post(StatusRefreshed(*bridge.call(read_status)))
    post(SyncFinished(f"{len(names)} services, {published} items published, {copied} "
                      f"objects ({byte_size(copied_bytes)}) copied", problems, faults))


def _pass_of(name: str) -> Callable[[Btar], list[Any]]:
    def run(btar: Btar) -> list[Any]:
        return list(btar.sync([name]))

    return run


def _progress_poster(name: str, post: Callable[[Message], object]) -> Callable[[Any], None]:
    """LiveDriver.on_copy for one service: called in the copy pool's waiting loop, so it
    only posts a message, and not more often than the screen can use."""
    last = 0.0

    def on_copy(progress: Any) -> None:
        nonlocal last
        now = time.monotonic()
        if progress.done == progress.total or now - last >= PROGRESS_EVERY:
            last = now
            post(CopyProgressed(name, progress.done, progress.total, progress.bytes_done,
                                progress.bytes_total))

    return on_copy

"""A fault of one location is that location's state, never the end of the daemon: while a
region's folder is replaced by a file (a wrong path, an unmounted volume), or its disk is
full or read-only, the `btar sync` daemon keeps running, the services that do not use the
region keep replicating, the others say why they wait, and everything catches up once the
fault is mended."""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from btar_tui.demo_feed import DemoFeed
from engine.api import Btar
from engine.daemon import run_sync
from engine.demo import create_demo
from engine.model import ItemStatus

UNTOUCHED = "billing"  # google regions only
HIT = ("inventory", "orders")  # aws-eu-west-1 -> aws-eu-central-1


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[Path, Btar, Callable[[], int]]]:
    """A demo world with its producer and a running `btar sync` daemon (fast pace)."""
    config = create_demo(tmp_path / "world")
    app = Btar.open(str(config), exclusive=True)
    app.settings = dataclasses.replace(app.settings, poll_interval=0.3, busy_poll_interval=0.1)
    feed = DemoFeed(tmp_path / "world", interval=0.2)
    stop = threading.Event()
    failures: list[BaseException] = []

    def replicate() -> None:
        try:
            run_sync(app, [], logger=logging.getLogger("test"), stop=stop)
        except BaseException as error:  # the daemon must not die: the test says so
            failures.append(error)

    thread = threading.Thread(target=replicate, name="daemon")
    feed.start()
    thread.start()
    try:
        yield tmp_path / "world", app, lambda: len(failures)
    finally:
        stop.set()
        thread.join(30)
        feed.stop()
        app.close()
    assert not thread.is_alive()
    assert not failures, failures


def published(world: Path, service: str, region: str) -> int:
    app = Btar.open(str(world / "btar.toml"))
    try:
        return sum(1 for r in app.backups(service, region) if r.status == ItemStatus.AVAILABLE)
    finally:
        app.close()


def wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def state_of(world: Path, service: str) -> str:
    app = Btar.open(str(world / "btar.toml"))
    try:
        return app.status_of(service).state
    finally:
        app.close()


@pytest.mark.parametrize("broken", ["aws-eu-central-1", "aws-eu-west-1"])
def test_a_region_folder_replaced_by_a_file_stops_only_its_services(
        daemon: tuple[Path, Btar, Callable[[], int]], broken: str) -> None:
    world, _, died = daemon
    wait_for(lambda: all(state_of(world, s) == "in sync" for s in (UNTOUCHED, *HIT)))
    folder = world / "regions" / broken
    saved = world / f"saved-{broken}"
    shutil.move(folder, saved)
    folder.write_text("not a folder\n")
    try:
        before = published(world, UNTOUCHED, "google-europe-north1")
        wait_for(lambda: published(world, UNTOUCHED, "google-europe-north1") >= before + 5)
        if broken == "aws-eu-central-1":
            # The destination: paused, with the reason.
            wait_for(lambda: all(state_of(world, s).startswith("paused") for s in HIT))
            assert "a file stands where the location folder should be" in \
                state_of(world, "orders")
        else:
            # The primary: nothing new is known, nothing is lost; the reason is in the events.
            app = Btar.open(str(world / "btar.toml"))
            try:
                wait_for(lambda: any("cannot list the primary" in e.message
                                     for e in app.events(50, "orders")))
            finally:
                app.close()
        assert died() == 0
    finally:
        folder.unlink()
        shutil.move(saved, folder)
    # Mended: every service catches up by itself.
    wait_for(lambda: all(state_of(world, s) == "in sync" for s in (UNTOUCHED, *HIT)), 30)
    for service in HIT:
        primary = published(world, service, "aws-eu-west-1")
        wait_for(lambda service=service, primary=primary:
                 published(world, service, "aws-eu-central-1") >= primary, 30)


@pytest.mark.parametrize(("code", "reason"), [(errno.ENOSPC, "no space left on the device"),
                                              (errno.EROFS, "read-only file system")])
def test_a_full_or_read_only_destination_pauses_only_its_services(
        daemon: tuple[Path, Btar, Callable[[], int]], code: int, reason: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    world, app, died = daemon
    wait_for(lambda: all(state_of(world, s) == "in sync" for s in (UNTOUCHED, *HIT)))
    storage = app.storage("aws-eu-central-1")

    def refuse(temp: Path, key: str) -> Any:
        raise OSError(code, os.strerror(code), str(temp))

    monkeypatch.setattr(storage, "_create", refuse)
    before = published(world, UNTOUCHED, "google-europe-north1")
    wait_for(lambda: published(world, UNTOUCHED, "google-europe-north1") >= before + 5)
    wait_for(lambda: all(reason in state_of(world, s) for s in HIT))
    assert died() == 0
    monkeypatch.undo()
    wait_for(lambda: all(state_of(world, s) == "in sync" for s in (UNTOUCHED, *HIT)), 30)


def test_a_primary_that_hangs_holds_up_only_its_own_services(
        daemon: tuple[Path, Btar, Callable[[], int]], monkeypatch: pytest.MonkeyPatch) -> None:
    world, app, died = daemon
    wait_for(lambda: all(state_of(world, s) == "in sync" for s in (UNTOUCHED, *HIT)))
    storage = app.storage("aws-eu-west-1")
    real = storage.list_page
    release = threading.Event()

    def hang(*args: Any, **kwargs: Any) -> Any:
        release.wait(20)  # an endpoint that does not answer (for now)
        return real(*args, **kwargs)

    monkeypatch.setattr(storage, "list_page", hang)
    try:
        # Listings of the hung primary wait on their own: billing keeps up meanwhile.
        before = published(world, UNTOUCHED, "google-europe-north1")
        started = time.monotonic()
        wait_for(lambda: published(world, UNTOUCHED, "google-europe-north1") >= before + 5, 10)
        assert time.monotonic() - started < 10
        assert died() == 0
    finally:
        release.set()
    monkeypatch.undo()
    wait_for(lambda: all(state_of(world, s) == "in sync" for s in (UNTOUCHED, *HIT)), 30)

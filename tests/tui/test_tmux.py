"""Drive the real `btar tui` in a tmux terminal as a person would: enable the additional
region of a service, sync, and watch the copy complete."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.api import Btar
from engine.demo import create_demo

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed "
                                "(apt-get install -y tmux) so the real terminal cannot be driven")
TIMEOUT = 20.0


class Terminal:
    """One detached tmux session running a command, 100x30."""

    def __init__(self, command: str, cwd: Path) -> None:
        self.name = f"btar-tui-test-{uuid.uuid4().hex[:8]}"
        self._tmux("new-session", "-d", "-x", "100", "-y", "30", "-s", self.name, "-c",
                   str(cwd), command)

    def _tmux(self, *args: str) -> str:
        assert TMUX is not None
        done = subprocess.run([TMUX, *args], capture_output=True, text=True, check=True,
                              timeout=10)
        return done.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.name)

    def keys(self, *keys: str) -> None:
        for key in keys:
            self._tmux("send-keys", "-t", self.name, key)
            time.sleep(0.15)  # one key at a time, as typed

    def wait_for(self, check: Callable[[str], bool], what: str) -> str:
        deadline = time.monotonic() + TIMEOUT
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if check(text):
                return text
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; the screen shows:\n{text}")

    def kill(self) -> None:
        subprocess.run([str(TMUX), "kill-session", "-t", self.name], capture_output=True,
                       check=False, timeout=10)


def row(text: str, service: str) -> str:
    return next((line for line in text.splitlines() if line.strip().startswith(service)), "")


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    config = create_demo(tmp_path / "world")
    # Leave "orders" without an additional region, so there is one to enable.
    app = Btar.open(str(config), actor="test")
    try:
        app.disable("orders", keep=True, delete=False, confirmed=True)
    finally:
        app.close()
    command = shlex.join([sys.executable, "-m", "engine.cli", "--config", str(config), "tui"])
    session = Terminal(command, tmp_path)
    try:
        yield session
    finally:
        session.kill()


def test_enable_a_region_then_sync_until_in_sync(terminal: Terminal) -> None:
    screen = terminal.wait_for(lambda t: "disabled" in row(t, "orders"),
                               "the services screen with orders disabled")
    assert "unsupported" in row(screen, "sessions")
    terminal.keys("Down", "Down", "e")
    terminal.wait_for(lambda t: "Enable an additional backup region for orders" in t
                      and "aws-eu-central-1" in t, "the enable dialog")
    terminal.keys("Enter")
    terminal.wait_for(lambda t: "waiting for" in row(t, "orders"),
                      "orders enabled, waiting for its first sync")
    terminal.keys("s")
    screen = terminal.wait_for(lambda t: "in sync" in row(t, "orders"), "orders in sync")
    assert "aws-eu-north-1" in row(screen, "orders")  # the farthest usable region
    assert "last sync" in screen
    terminal.keys("q")


def test_a_failing_region_shows_its_state_banner_and_failed_items(tmp_path: Path) -> None:
    """A file where orders' log folder should be in the additional region: its segments
    cannot be written there. The row says failing, one banner line says where and why, and
    the detail lists the segments as failed with the reason."""
    config = create_demo(tmp_path / "world")
    blocked = tmp_path / "world" / "regions" / "aws-eu-central-1" / "orders" / "log"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("not a folder\n")
    command = shlex.join([sys.executable, "-m", "engine.cli", "--config", str(config), "tui"])
    terminal = Terminal(command, tmp_path)
    try:
        terminal.wait_for(lambda t: "waiting for" in row(t, "orders"),
                          "the services screen before the first sync")
        terminal.keys("s")
        screen = terminal.wait_for(lambda t: "failing" in row(t, "orders"), "orders failing")
        assert "in sync" in row(screen, "billing")
        terminal.wait_for(lambda t: "orders: aws-eu-central-1 (secondary) error since" in t,
                          "the banner line of the failing region")
        terminal.keys("Down", "Down", "Enter")
        # The reason may wrap: read the screen as one line.
        terminal.wait_for(lambda t: "failed" in t and "log/1/" in t
                          and "(secondary) error since" in " ".join(t.split())
                          and "a parent of this key is an object" in " ".join(t.split()),
                          "the detail with failed segments and the reason")
        terminal.keys("Escape", "q")
    finally:
        terminal.kill()

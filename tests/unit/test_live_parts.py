"""An opened installation makes its live driver and storages when first asked for: a command
that only reads the catalog reads the time without them (engine.api.live)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.api import Btar
from engine.runtime import LiveDriver

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


class _Clock:
    def __init__(self) -> None:
        self.moment = T0

    def now(self) -> datetime:
        return self.moment

    def sleep(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


def _config(tmp_path: Path) -> str:
    west = tmp_path / "west"
    west.mkdir()
    config = tmp_path / "btar.toml"
    config.write_text(f'[regions]\naws-eu-west-1 = "file://{west}"\n\n[[services]]\n'
                      'name = "orders"\ntype = "postgresql"\nregion = "aws-eu-west-1"\n')
    return str(config)


def test_the_time_is_the_clock_s_before_and_after_the_driver_is_made(tmp_path: Path) -> None:
    clock = _Clock()
    app = Btar.open(_config(tmp_path), clock=clock)
    try:
        assert app.now() == T0
        assert [s.as_of for s in app.status()] == [T0]
        driver = app.driver
        assert isinstance(driver, LiveDriver)
        assert driver is app.driver  # made once
        assert driver.clock is clock
        clock.moment = T0 + timedelta(minutes=1)
        assert app.now() == driver.now() == T0 + timedelta(minutes=1)
        assert app.storage("aws-eu-west-1") is app.storage("aws-eu-west-1")
    finally:
        app.close()


def test_a_driver_set_on_an_installation_is_the_one_it_reads_the_time_from(
        tmp_path: Path) -> None:
    app = Btar.open(_config(tmp_path), clock=_Clock())
    later = _Clock()
    later.moment = T0 + timedelta(hours=1)
    try:
        app.driver = LiveDriver(app.storage, clock=later)
        assert app.now() == T0 + timedelta(hours=1)
    finally:
        app.close()

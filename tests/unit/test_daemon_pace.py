"""How long `btar sync` waits between two listings of a service: soon after work, backing
off when idle (engine.service_jobs.next_wait)."""

from __future__ import annotations

from engine.service_jobs import next_wait


def pace(busy: list[bool], *, busy_interval: float = 0.5, interval: float = 10.0) -> list[float]:
    waits, wait = [], interval
    for found in busy:
        wait = next_wait(wait, found, busy_interval=busy_interval, interval=interval)
        waits.append(wait)
    return waits


def test_work_brings_the_next_pass_close_and_idleness_backs_off_to_the_interval() -> None:
    assert pace([True, False, False, False, False, False, False, True]) == \
        [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 0.5]


def test_a_busy_interval_longer_than_the_interval_is_capped() -> None:
    assert pace([True, False], busy_interval=30.0) == [10.0, 10.0]


def test_without_a_busy_interval_the_pace_is_fixed() -> None:
    assert pace([True, False, True], busy_interval=10.0) == [10.0, 10.0, 10.0]

"""How long `btar sync` waits between two listings of a service: soon after work, backing
off when idle (engine.service_jobs.next_wait)."""

from __future__ import annotations

from engine.service_jobs import next_wait


def pace(busy: list[bool], *, busy_interval: float = 0.5, interval: float = 10.0) -> list[float]:
    """The waits after listings that found work or not, each listing when the last wait
    said."""
    waits, wait, clock, worked_at = [], interval, 0.0, None
    for found in busy:
        since = None if worked_at is None else clock - worked_at
        wait = next_wait(wait, found, busy_interval=busy_interval, interval=interval,
                         since_work=since)
        worked_at = clock if found else worked_at
        waits.append(wait)
        clock += wait
    return waits


def test_work_brings_the_next_pass_close_and_idleness_backs_off_to_the_interval() -> None:
    assert pace([True, False, False, False, False, False, False, True, True]) == \
        [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 0.5]


def test_a_busy_interval_longer_than_the_interval_is_capped() -> None:
    assert pace([True, False], busy_interval=30.0) == [10.0, 10.0]


def test_without_a_busy_interval_the_pace_is_fixed() -> None:
    assert pace([True, False, True], busy_interval=10.0) == [10.0, 10.0, 10.0]


def test_work_that_comes_alone_starts_no_stream() -> None:
    """A log segment a minute: after the first, the pace stays at the interval (listing
    again 0.5, 1, 2, 4 and 8 s later found nothing each time)."""
    minute = [True] + [False] * 5
    assert pace(minute * 3) == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0] + [10.0] * 12


def test_a_stream_that_pauses_picks_up_the_pace_on_its_second_find() -> None:
    """Work within an interval of the last is a stream; after a longer pause, the second
    find says it goes on."""
    assert pace([True, True, False, False, False, False, False, False, True, True]) == \
        [0.5, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 0.5]

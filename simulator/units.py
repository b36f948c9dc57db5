"""Parsing of the human units a scenario file is written in: durations, sizes, rates, times.

Every parser raises ValueError with a sentence that says what was expected, because that
sentence is what a scenario author reads next to the file, line and key.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

# Shared with the engine's configuration; re-exported for the scenario parser.
from engine.units import DURATION_HINT as DURATION_HINT
from engine.units import parse_duration as parse_duration

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
                 "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}

SIZE_HINT = 'a size such as "16MB", "2GiB" or a number of bytes'
RATE_HINT = 'a rate such as "50MB/s", "1GiB/s" or a number of bytes per second'
TIME_HINT = ('a time: an offset from start such as "2h30m", or an ISO time with a zone such as '
             '"2026-11-02T03:00:00Z"')


def parse_size(value: object) -> int:
    """Bytes from a number or a string like "16MB" (decimal) or "2GiB" (binary)."""
    if isinstance(value, bool):
        raise ValueError(f"expected {SIZE_HINT}; got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"expected {SIZE_HINT} (not negative); got {value!r}")
        return int(value)
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            unit = (match[2] or "B").lower()
            return int(float(match[1]) * _SIZE_FACTORS[unit])
    raise ValueError(f"expected {SIZE_HINT}; got {value!r}")


def parse_rate(value: object) -> float:
    """Bytes per second from a number or a string like "50MB/s"."""
    if isinstance(value, str):
        text = value.strip()
        if not text.lower().endswith("/s"):
            raise ValueError(f"expected {RATE_HINT}; got {value!r}")
        try:
            rate = float(parse_size(text[:-2]))
        except ValueError:
            raise ValueError(f"expected {RATE_HINT}; got {value!r}") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        rate = float(value)
    else:
        raise ValueError(f"expected {RATE_HINT}; got {value!r}")
    if rate <= 0:
        raise ValueError(f"expected {RATE_HINT} above zero; got {value!r}")
    return rate


def parse_moment(value: object) -> float | datetime:
    """An offset from the start (seconds) or an absolute UTC-aware time."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"expected {TIME_HINT}; {value.isoformat()} has no zone (add Z)")
        return value
    if isinstance(value, str) and "T" in value:
        try:
            moment = datetime.fromisoformat(value.strip().replace("z", "Z"))
        except ValueError:
            raise ValueError(f"expected {TIME_HINT}; got {value!r}") from None
        if moment.tzinfo is None:
            raise ValueError(f"expected {TIME_HINT}; {value!r} has no zone (add Z)")
        return moment
    try:
        return parse_duration(value)
    except ValueError:
        raise ValueError(f"expected {TIME_HINT}; got {value!r}") from None


def format_duration(seconds: float) -> str:
    """Compact human form: 1d02:03:04, 02:03:04, or 12.5s."""
    if seconds < 60:
        return f"{seconds:.3g}s"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    text = str(timedelta(seconds=rest)).rjust(8, "0")
    return f"{days}d{text}" if days else text

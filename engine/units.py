"""Human units: durations such as "1h30m" in configuration and scenario files, and as status
lines write them; sizes in binary units, as every front shows them."""

from __future__ import annotations

import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0,
                     "w": 604800.0}

DURATION_HINT = 'a duration such as "90s", "5m", "1h30m", "250ms" or a number of seconds'


def short_duration(seconds: float | None) -> str:
    """A duration as status lines write it: "45s", "23m", "2.5h" ("-" when unknown)."""
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def byte_size(count: int) -> str:
    """Bytes with a binary unit: "512 B", "9.1 KiB", "1.5 GiB"."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"  # pragma: no cover - the loop always returns


def parse_duration(value: object) -> float:
    """Seconds from a number or a string like "1h30m"; ValueError says what was expected."""
    if isinstance(value, bool):
        raise ValueError(f"expected {DURATION_HINT}; got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"expected {DURATION_HINT} (not negative); got {value!r}")
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        if text and _DURATION_PART.sub("", text) == "":
            return sum(float(n) * _DURATION_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    raise ValueError(f"expected {DURATION_HINT}; got {value!r}")

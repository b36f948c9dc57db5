"""Printing results: JSON for scripts, aligned tables and short values for people."""

from __future__ import annotations

import argparse
import dataclasses
import json
from datetime import datetime
from enum import Enum
from typing import Any, TextIO

from engine.model import RestoreWindow, iso
from engine.units import short_duration


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums and datetimes as plain JSON values."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, RestoreWindow):
        return {"region": value.region, "role": value.role.value,
                "start": iso(value.start) if value.start else None,
                "end": iso(value.end) if value.end else None,
                "intervals": [{"start": iso(r.start), "end": iso(r.end)}
                              for r in value.intervals]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def print_json(value: Any, out: TextIO) -> None:
    json.dump(to_jsonable(value), out, indent=2, sort_keys=False)
    out.write("\n")


def table(rows: list[list[str]], out: TextIO) -> None:
    if not rows:
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")


duration = short_duration


def when(moment: datetime | None) -> str:
    return iso(moment.replace(microsecond=0)) if moment else "-"


def json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def service_and_json(parser: argparse.ArgumentParser) -> None:
    """The arguments of a command about one service that can print JSON."""
    parser.add_argument("service")
    json_flag(parser)

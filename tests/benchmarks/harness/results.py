"""Result rows, the table, and the JSON file."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    """One line of the table: btar's value against one peer (or an absolute target)."""

    case: str
    btar: float | None
    peer: str = "-"
    peer_value: float | None = None
    #: "s", "ms" or "MiB"
    unit: str = "s"
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.btar is None or not self.peer_value:
            return None
        return self.btar / self.peer_value


@dataclass
class Case:
    """What one case measured: its rows and details for the JSON file."""

    name: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row


def median(values: list[float]) -> float:
    return statistics.median(values)


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit in ("", "%"):
        return f"{value:.2f}{unit and ' ' + unit}"
    return f"{value:.0f} {unit}"


def _ratio(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    return f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.2g}"


def table(cases: list[Case]) -> str:
    header = ["case", "btar (s)", "peer", "peer (s)", "btar/peer", "target", "met"]
    lines = [header]
    for case in cases:
        for row in case.rows:
            ratio = row.ratio
            met = "" if row.met is None else ("yes" if row.met else "NO")
            lines.append([row.case, _value(row.btar, row.unit), row.peer,
                          _value(row.peer_value, row.unit),
                          _ratio(ratio), row.target, met])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    notes = [f"- {row.case} / {row.peer}: {row.note}" for case in cases for row in case.rows
             if row.note]
    if notes:
        out += ["", "notes:", *notes]
    return "\n".join(out)


def write_json(path: Path, machine: dict[str, Any], options: dict[str, Any],
               cases: list[Case], seconds: float) -> None:
    document = {
        "machine": machine, "options": options, "total_seconds": round(seconds, 1),
        "rows": [{**asdict(row), "ratio": row.ratio} for case in cases for row in case.rows],
        "cases": {case.name: case.details for case in cases},
    }
    path.write_text(json.dumps(document, indent=1, default=str) + "\n")

"""The report of a run: an SVG plot of the lag, the restorable windows and the status over
time (drawn here, no plotting dependency), an HTML page with the verdicts and what `btar
status` showed (state, faults, staleness, problems of `btar check`), and the journal itself.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

from engine.api import ServiceState
from engine.model import parse_iso
from simulator.journal import Entry
from simulator.runner import RunResult, summary
from simulator.states import fault_text, problems_text, state_spans, t_text
from simulator.units import format_duration

WIDTH, LEFT, RIGHT = 960, 70, 45
LAG_TOP, LAG_HEIGHT = 40, 200
WIN_TOP, WIN_HEIGHT = 300, 260
STATE_ROW = 16
#: the colour of each state of `btar status` in the status panel (by the start of the state)
#: (state, its name in the legend, colour), in the legend's order
STATE_COLORS = ((ServiceState.IN_SYNC, "in sync", "#2ca02c"),
                (ServiceState.COPYING, "copying", "#98df8a"),
                (ServiceState.LAGGING, "lagging", "#ff7f0e"),
                (ServiceState.WAITING, "waiting", "#c7c7c7"),
                (ServiceState.PAUSED, "paused", "#d62728"),
                (ServiceState.FAILING, "failing", "#e377c2"),
                (ServiceState.PRIMARY_UNREACHABLE, "primary unreachable", "#7f0000"),
                (ServiceState.PRIMARY_FAILING, "primary failing", "#8c564b"),
                (ServiceState.DISABLED, "disabled", "#eeeeee"),
                (ServiceState.UNSUPPORTED, "unsupported", "#eeeeee"))
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
          "#17becf")
FAULT_COLOR = "#f4cccc"


def _x(t: float, duration: float) -> float:
    return LEFT + (WIDTH - LEFT - RIGHT) * (t / duration if duration else 0.0)


def _polyline(points: Sequence[tuple[float, float]], color: str, width: float = 1.5) -> str:
    if not points:
        return ""
    text = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return (f'<polyline fill="none" stroke="{color}" stroke-width="{width}" '
            f'points="{text}"/>')


def _axis_ticks(duration: float, top: float, height: float) -> list[str]:
    parts = []
    for i in range(7):
        t = duration * i / 6
        x = _x(t, duration)
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + height}" '
                     'stroke="#ddd"/>')
        parts.append(f'<text x="{x:.1f}" y="{top + height + 14}" font-size="10" '
                     f'text-anchor="middle">T+{format_duration(t)}</text>')
    return parts


def _state_color(state: ServiceState) -> str:
    return next(color for known, _, color in STATE_COLORS if known is state)


def _state_panel(entries: Sequence[Entry], duration: float,
                 top: float) -> tuple[list[str], float]:
    """Panel 3 from ``top`` down: one band per service, coloured by the state btar status
    showed at each sample; and the height the whole plot needs."""
    spans = state_spans(entries)
    parts = [f'<text x="{LEFT}" y="{top - 8}" font-size="11">state shown by btar status (at '
             'each sample)</text>']
    parts += [f'<text x="{_x(duration * i / 6, duration):.1f}" y="{top - 8}" font-size="9" '
              f'text-anchor="middle" fill="#777">T+{format_duration(duration * i / 6)}</text>'
              for i in range(1, 7)]
    for row, (name, runs) in enumerate(spans.items()):
        y = top + STATE_ROW * row
        parts.append(f'<text x="{LEFT - 6}" y="{y + 11}" font-size="10" text-anchor="end">'
                     f'{html.escape(name)}</text>')
        for index, span in enumerate(runs):
            # A span lasts until the next one starts (the last one until the end of the run).
            end = runs[index + 1].first if index + 1 < len(runs) else max(span.last, duration)
            x1, x2 = _x(span.first, duration), _x(end, duration)
            parts.append(f'<rect x="{x1:.1f}" y="{y}" width="{max(0.5, x2 - x1):.1f}" '
                         f'height="{STATE_ROW - 3}" fill="{_state_color(span.state)}">'
                         f'<title>{html.escape(span.text)}</title></rect>')
    legend_y = top + STATE_ROW * max(1, len(spans)) + 12
    x = float(LEFT)
    shown = sorted({_state_color(s.state) for runs in spans.values() for s in runs})
    for _, label, color in STATE_COLORS:
        if color not in shown:
            continue
        shown.remove(color)
        parts.append(f'<rect x="{x:.1f}" y="{legend_y - 9}" width="10" height="10" '
                     f'fill="{color}"/><text x="{x + 13:.1f}" y="{legend_y}" '
                     f'font-size="10">{html.escape(label)}</text>')
        x += 20 + 6 * len(label)
    return parts, legend_y + 20


def plot(entries: Sequence[Entry], duration: float, title: str) -> str:
    """An SVG with three panels: the current lag of each service's additional region, each
    region's restorable window (the band of points it can restore), and the state btar status
    showed, over time."""
    snapshots = [e for e in entries if e["op"] == "snapshot"]
    start = parse_iso(next(e["start"] for e in entries if e["op"] == "run"))
    parts = ["(header)",
             '<rect width="100%" height="100%" fill="white"/>',
             f'<text x="{LEFT}" y="20" font-size="14" font-weight="bold">'
             f'{html.escape(title)}</text>']
    # Faults, shaded behind both panels.
    starts = {e["id"]: e for e in entries if e["op"] == "fault" and e["phase"] == "start"}
    ends = {e["id"]: e["t"] for e in entries if e["op"] == "fault" and e["phase"] == "end"}
    for fault, entry in sorted(starts.items()):
        x1, x2 = _x(entry["t"], duration), _x(ends.get(fault, duration), duration)
        parts.append(f'<rect x="{x1:.1f}" y="{LAG_TOP}" width="{max(1.0, x2 - x1):.1f}" '
                     f'height="{WIN_TOP + WIN_HEIGHT - LAG_TOP}" fill="{FAULT_COLOR}" '
                     'opacity="0.6"/>')
        parts.append(f'<text x="{x1 + 2:.1f}" y="{LAG_TOP + 10 + 10 * (fault % 3)}" '
                     f'font-size="9" fill="#a00">{html.escape(entry["kind"])}</text>')
    for entry in entries:
        if entry["op"] == "fork" and entry["phase"] in ("ok", "refused", "fail"):
            x = _x(entry["t"], duration)
            parts.append(f'<line x1="{x:.1f}" y1="{LAG_TOP}" x2="{x:.1f}" '
                         f'y2="{WIN_TOP + WIN_HEIGHT}" stroke="#555" stroke-dasharray="4,3"/>')
            parts.append(f'<text x="{x + 2:.1f}" y="{WIN_TOP - 8}" font-size="9">fork '
                         f'{html.escape(entry["name"])} {entry["phase"]}</text>')
    services = sorted({name for s in snapshots for name in s["services"]})
    # Panel 1: lag.
    lags = [s["services"][n]["lag"] or 0.0 for s in snapshots for n in services]
    top_lag = max([60.0, *lags]) * 1.1
    parts += _axis_ticks(duration, LAG_TOP, LAG_HEIGHT)
    parts.append(f'<text x="{LEFT}" y="{LAG_TOP - 6}" font-size="11">current lag of the '
                 f'additional region (max {format_duration(max([0.0, *lags]))})</text>')
    parts.append(f'<text x="{LEFT - 6}" y="{LAG_TOP + 8}" font-size="9" text-anchor="end">'
                 f'{format_duration(top_lag)}</text>')
    parts.append(f'<text x="{LEFT - 6}" y="{LAG_TOP + LAG_HEIGHT}" font-size="9" '
                 'text-anchor="end">0</text>')
    for index, name in enumerate(services):
        color = COLORS[index % len(COLORS)]
        points = [(_x(s["t"], duration),
                   LAG_TOP + LAG_HEIGHT * (1 - (s["services"][name]["lag"] or 0.0) / top_lag))
                  for s in snapshots if s["services"][name]["secondary"]]
        parts.append(_polyline(points, color))
        parts.append(f'<text x="{WIDTH - RIGHT}" y="{LAG_TOP + 12 + 12 * index}" '
                     f'font-size="10" text-anchor="end" fill="{color}">'
                     f'{html.escape(name)}</text>')
    # Panel 2: windows. y is a point in time (T+0 at the bottom, the end of the run on top).
    parts += _axis_ticks(duration, WIN_TOP, WIN_HEIGHT)
    parts.append(f'<text x="{LEFT}" y="{WIN_TOP - 22}" font-size="11">restorable window per '
                 'region (band between its oldest and latest restorable point)</text>')
    parts.append(f'<text x="{LEFT - 6}" y="{WIN_TOP + 8}" font-size="9" text-anchor="end">'
                 f'T+{format_duration(duration)}</text>')
    parts.append(f'<text x="{LEFT - 6}" y="{WIN_TOP + WIN_HEIGHT}" font-size="9" '
                 'text-anchor="end">T+0</text>')

    def y(point: str) -> float:
        offset = (parse_iso(point) - start).total_seconds()
        return WIN_TOP + WIN_HEIGHT * (1 - max(0.0, min(offset, duration)) / duration)

    series = sorted({(n, r) for s in snapshots for n in services
                     for r in s["services"][n]["windows"]})
    for index, (name, region) in enumerate(series):
        color = COLORS[index % len(COLORS)]
        runs: list[list[tuple[float, float, float]]] = [[]]
        for s in snapshots:
            window = s["services"][name]["windows"].get(region)
            if window and window["intervals"]:
                runs[-1].append((_x(s["t"], duration), y(window["intervals"][0][0]),
                                 y(window["intervals"][-1][1])))
            elif runs[-1]:
                runs.append([])
        for run in runs:
            if not run:
                continue
            outline = [(x, hi) for x, _, hi in run] + [(x, lo) for x, lo, _ in reversed(run)]
            corners = " ".join(f"{x:.1f},{v:.1f}" for x, v in outline)
            parts.append(f'<polygon points="{corners}" fill="{color}" fill-opacity="0.18" '
                         f'stroke="{color}" stroke-width="1"/>')
        row, column = divmod(index, 4)
        parts.append(f'<text x="{LEFT + 220 * column}" y="{WIN_TOP + WIN_HEIGHT + 32 + 12 * row}" '
                     f'font-size="10" fill="{color}">{html.escape(name)} @ '
                     f'{html.escape(region)}</text>')
    rows = (len(series) + 3) // 4
    state_parts, height = _state_panel(entries, duration,
                                       WIN_TOP + WIN_HEIGHT + 32 + 12 * rows + 30)
    parts[0] = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
                f'height="{height:.0f}" viewBox="0 0 {WIDTH} {height:.0f}" '
                'font-family="sans-serif">')
    parts += state_parts
    parts.append("</svg>")
    return "\n".join(p for p in parts if p) + "\n"


def write_report(result: RunResult, folder: Path) -> Path:
    """Write journal.jsonl, plot.svg, summary.json and report.html into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    scenario = result.loaded.scenario
    result.journal.write(folder / "journal.jsonl")
    svg = plot(result.journal.entries, scenario.duration,
               f"{scenario.name or result.loaded.path} (seed {result.seed})")
    (folder / "plot.svg").write_text(svg, encoding="utf-8")
    data = summary(result)
    data.pop("wall_seconds")  # the files of a run stay byte-identical across replays
    (folder / "summary.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n",
                                         encoding="utf-8")
    rows = "".join(
        f"<tr><td>{'PASS' if v.holds else 'FAIL'}</td><td>{html.escape(v.label)}</td>"
        f"<td>{html.escape(v.detail)}</td></tr>" for v in result.verdicts)
    page = (f"<!doctype html><meta charset='utf-8'><title>{html.escape(scenario.name)}</title>"
            f"<h1>{html.escape(scenario.name or result.loaded.path)}</h1>"
            f"<p>{html.escape(scenario.description)}</p>"
            f"<p>file {html.escape(result.loaded.path)} (sha256 {result.loaded.sha256}), seed "
            f"{result.seed}, {result.events} events, virtual time "
            f"{format_duration(result.virtual_seconds)}. Replay: "
            f"<code>{html.escape(result.replay)}</code></p>"
            f"<table border='1' cellpadding='4'><tr><th></th><th>expectation</th>"
            f"<th>detail</th></tr>{rows}</table>{_status_table(result.journal.entries)}{svg}")
    (folder / "report.html").write_text(page, encoding="utf-8")
    return folder


def _status_table(entries: Sequence[Entry]) -> str:
    """What btar status showed of each service: one row per span of samples with the same
    state and faults."""
    start = next(e["start"] for e in entries if e["op"] == "run")
    sections = []
    for name, spans in state_spans(entries).items():
        rows = "".join(
            f"<tr><td>{t_text(s.first)}</td><td>{t_text(s.last)}</td>"
            f"<td>{html.escape(s.text)}</td>"
            f"<td>{html.escape(fault_text(s.primary_fault, start))}</td>"
            f"<td>{html.escape(fault_text(s.destination_fault, start))}</td>"
            f"<td>{'-' if s.staleness is None else format_duration(s.staleness)}</td>"
            f"<td>{html.escape(problems_text(s.problems))}</td></tr>"
            for s in spans)
        sections.append(
            f"<h3>{html.escape(name)}</h3><table border='1' cellpadding='4'><tr>"
            "<th>first sample</th><th>last sample</th><th>state</th><th>primary fault</th>"
            "<th>destination fault</th><th>staleness (max)</th><th>btar check</th></tr>"
            f"{rows}</table>")
    if not sections:
        return ""
    return "<h2>Status over time (btar status and btar check at each sample)</h2>" + \
        "".join(sections)


def report_folder(base: Path, path: str) -> Path:
    """Where a scenario's report goes inside ``--report DIR``."""
    name = Path(path).name
    for suffix in (".btar.toml", ".toml"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return base / name

"""The status page's pictures as inline SVG, drawn on the server: no script, no CDN (the page must work on a
machine without internet), nothing to license.

Every chart is an `<svg role="img">` with a `<title>` and a `<desc>` that says its figures in words, each mark has
its own `<title>` (a tooltip, and what a screen reader reads), and values are printed next to what they measure,
so nobody needs to read a bar's length to know its number.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

INK, MUTED, GRID = "#1d2433", "#5b6478", "#e3e6ee"
BLUE, GREEN, ORANGE, RED, AMBER = "#1f6feb", "#2da44e", "#d4740a", "#cf222e", "#bf8700"
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif"'
_ids = itertools.count(1)


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    values: Sequence[float]


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _svg(width: int, height: int, title: str, desc: str, body: list[str]) -> Markup:
    uid = next(_ids)
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-labelledby="chart-t{uid} chart-d{uid}" class="chart" {FONT}>'
        f'<title id="chart-t{uid}">{escape(title)}</title><desc id="chart-d{uid}">{escape(desc)}</desc>'
        + "".join(body)
        + "</svg>"
    )


def _text(
    x: float,
    y: float,
    value: str,
    *,
    size: int = 11,
    color: str = MUTED,
    anchor: str = "start",
    weight: str = "normal",
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{color}" text-anchor="{anchor}" '
        f'font-weight="{weight}">{escape(value)}</text>'
    )


def gauge(label: str, value: int, limit: int, *, note: str = "") -> Markup:
    """How much of a limit is used: a bar against the limit, the figures in words beside it."""
    width, height, track = 400, 58, 380
    share = value / limit if limit else 0
    color = GREEN if share < 0.7 else AMBER if share < 0.9 else RED
    filled = max(0.0, min(1.0, share)) * track
    words = f"{_n(value)} of {_n(limit)} ({share:.0%})"
    body = [
        _text(0, 14, label, size=12, color=INK, weight="600"),
        _text(track, 14, words, size=12, color=INK, anchor="end"),
        f'<rect x="0" y="22" width="{track}" height="14" rx="7" fill="{GRID}"/>',
        f'<rect x="0" y="22" width="{filled:.1f}" height="14" rx="7" fill="{color}">'
        f"<title>{escape(label)}: {escape(words)}</title></rect>",
    ]
    if note:
        body.append(_text(0, 52, note, size=10))
    return _svg(width, height, f"{label}: {words}", f"{label}: {words}. {note}".strip(), body)


def _scale(top: float) -> tuple[float, list[float]]:
    """A round upper bound and 2-5 gridline values for counts up to `top` (whole numbers: steps of 1 at least)."""
    if top <= 0:
        return 1.0, [0.0, 1.0]
    magnitude = 10 ** math.floor(math.log10(top))
    for step in (0.25, 0.5, 1, 2, 2.5, 5, 10):
        unit = max(1.0, step * magnitude)
        if top / unit <= 4:
            bound = math.ceil(top / unit) * unit
            return bound, [unit * i for i in range(int(round(bound / unit)) + 1)]
    return top, [0.0, top]


def _frame(
    width: int, height: int, left: int, top: int, bottom: int, bound: float, ticks: list[float]
) -> list[str]:
    plot_h = height - top - bottom
    body = []
    for tick in ticks:
        y = top + plot_h - tick / bound * plot_h
        body.append(f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        body.append(_text(left - 6, y + 4, _n(tick), size=10, anchor="end"))
    return body


def _legend(series: Sequence[Series], x: float, y: float) -> list[str]:
    body = []
    for s in series:
        body.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" rx="2" fill="{s.color}"/>')
        body.append(_text(x + 14, y, s.name, size=11, color=INK))
        x += 24 + 6.5 * len(s.name)
    return body


def _time_labels(times: Sequence[datetime], xs: Sequence[float], baseline: float) -> list[str]:
    """The first, the last and a few between, so labels never overlap; as precise as the span needs."""
    if not times:
        return []
    span = (max(times) - min(times)).total_seconds()
    style = "%H:%M:%S" if span < 600 else "%H:%M" if span < 86_400 else "%d %b %H:%M"
    every = max(1, math.ceil(len(times) / 5))
    picks = sorted({*range(0, len(times), every), len(times) - 1})
    if len(picks) > 1 and picks[-1] - picks[-2] < every:
        picks.pop(-2)
    return [_text(xs[i], baseline, times[i].strftime(style), size=10, anchor="middle") for i in picks]


def when(value: datetime) -> str:
    return value.strftime("%d %b %H:%M:%S")


def bars(title: str, times: Sequence[datetime], series: Sequence[Series], *, labels: Sequence[str]) -> Markup:
    """Grouped bars, one group per run (`labels`: what each group is, for its tooltips), oldest on the left."""
    width, height, left, top, bottom = 460, 220, 48, 30, 40
    bound, ticks = _scale(max((v for s in series for v in s.values), default=0))
    plot_w, plot_h = width - left - 8, height - top - bottom
    groups = max(1, len(times))
    slot = plot_w / groups
    bar_w = max(2.0, min(22.0, slot * 0.8 / max(1, len(series))))
    body = _frame(width, height, left, top, bottom, bound, ticks)
    centres = []
    for i in range(len(times)):
        centre = left + slot * (i + 0.5)
        centres.append(centre)
        start = centre - bar_w * len(series) / 2
        for k, s in enumerate(series):
            value = s.values[i]
            h = max(2.0, value / bound * plot_h) if value else 0.0  # a small count stays visible
            x = start + k * bar_w
            body.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w - 1:.1f}" height="{h:.1f}" '
                f'fill="{s.color}"><title>{escape(labels[i])}: {_n(value)} {escape(s.name.lower())}</title></rect>'
            )
            if value and len(times) <= 8:
                body.append(
                    _text(x + bar_w / 2, top + plot_h - h - 3, _n(value), size=9, color=INK, anchor="middle")
                )
    body.append(
        f'<line x1="{left}" x2="{width - 8}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="{MUTED}"/>'
    )
    body += _time_labels(times, centres, height - bottom + 14)
    body += _legend(series, left, 14)
    totals = "; ".join(f"{s.name}: {_n(sum(s.values))} in all" for s in series)
    latest = "; ".join(f"{s.name.lower()} {_n(s.values[-1])}" for s in series) if times else ""
    desc = f"{len(times)} runs. {totals}. Latest run ({labels[-1] if labels else 'none'}): {latest}."
    if not times:
        body.append(_text(width / 2, top + plot_h / 2, "No runs yet", size=12, anchor="middle"))
        desc = "No runs yet."
    return _svg(width, height, title, desc, body)


def lines(title: str, times: Sequence[datetime], series: Sequence[Series]) -> Markup:
    """Counts over time, one line per series, a dot with its value at each point."""
    width, height, left, top, bottom = 460, 220, 48, 30, 40
    bound, ticks = _scale(max((v for s in series for v in s.values), default=0))
    plot_w, plot_h = width - left - 8, height - top - bottom
    body = _frame(width, height, left, top, bottom, bound, ticks)
    n = len(times)
    xs = [left + (plot_w * (i + 0.5) / n) for i in range(n)]
    for s in series:
        points = [(xs[i], top + plot_h - s.values[i] / bound * plot_h) for i in range(n)]
        if n > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            body.append(f'<polyline points="{path}" fill="none" stroke="{s.color}" stroke-width="2"/>')
        for i, (x, y) in enumerate(points):
            body.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{s.color}">'
                f"<title>{escape(when(times[i]))}: {_n(s.values[i])} {escape(s.name.lower())}</title></circle>"
            )
        if n:
            body.append(
                _text(
                    points[-1][0] - 6,
                    points[-1][1] - 7,
                    _n(s.values[-1]),
                    size=10,
                    color=s.color,
                    anchor="end",
                    weight="600",
                )
            )
    body.append(
        f'<line x1="{left}" x2="{width - 8}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="{MUTED}"/>'
    )
    body += _time_labels(times, xs, height - bottom + 14)
    body += _legend(series, left, 14)
    if n:
        desc = "Now: " + "; ".join(f"{_n(s.values[-1])} {s.name.lower()}" for s in series)
        desc += ". Highest: " + "; ".join(f"{_n(max(s.values))} {s.name.lower()}" for s in series) + "."
    else:
        body.append(_text(width / 2, top + plot_h / 2, "No runs yet", size=12, anchor="middle"))
        desc = "No runs yet."
    return _svg(width, height, title, desc, body)


def organisation_charts(picture: dict) -> dict[str, Markup]:
    """The four pictures of one organisation (`status.report(...).pictures` item)."""
    budget, runs, backlog = picture["budget"], picture["runs"], picture["backlog"]
    labels = [f"{r['kind']} {when(r['started_at'])} ({r['run_id']})" for r in runs]
    return {
        "calls_today": gauge(
            "API calls in the last 24 hours",
            budget["calls_today"],
            budget["day_limit"],
            note=f"Xero allows {_n(budget['day_limit'])} a day per organisation; {budget['runs_today']} runs",
        ),
        "calls_minute": gauge(
            "Busiest minute",
            budget["peak_minute"],
            budget["minute_limit"],
            note=f"Xero allows {budget['minute_limit']} calls a minute per organisation",
        ),
        "records": bars(
            "Records imported and pushed per run",
            [r["started_at"] for r in runs],
            [
                Series("Imported", BLUE, [r["imported"] for r in runs]),
                Series("Pushed", GREEN, [r["pushed"] for r in runs]),
            ],
            labels=labels,
        ),
        "backlog": lines(
            "Quarantined records and unresolved errors over time",
            [p["at"] for p in backlog],
            [
                Series("Quarantined", ORANGE, [p["quarantined"] for p in backlog]),
                Series("Unresolved", RED, [p["unresolved"] for p in backlog]),
            ],
        ),
    }

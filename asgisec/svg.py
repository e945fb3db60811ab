"""Small self-contained SVG charts (no plotting library): line charts with a legend.

Used by ``asgisec bench --plot`` (latency distributions, bare vs secured) and by
``benchmarks/report.py`` (scaling curves). Every text is escaped; the output is a complete
``<svg>`` document that browsers and GitHub render as an image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from xml.sax.saxutils import escape

__all__ = ["Series", "bar_chart", "line_chart"]

_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf")
_WIDTH, _HEIGHT = 720, 420
_LEFT, _RIGHT, _TOP, _BOTTOM = 80, 24, 48, 64


class Series:
    """One line: a name for the legend and its (x, y) points."""

    __slots__ = ("name", "points")

    def __init__(self, name: str, points: Sequence[tuple[float, float]]) -> None:
        self.name = name
        self.points = list(points)


def _ticks(low: float, high: float, log: bool) -> list[float]:
    if log:
        first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
        return [10.0**e for e in range(first, last + 1)]
    span = high - low or 1.0
    step = 10 ** math.floor(math.log10(span / 5))
    for multiple in (1, 2, 5, 10):
        if span / (step * multiple) <= 6:
            step *= multiple
            break
    start = math.floor(low / step) * step
    ticks, value = [], start
    while value <= high + step / 2:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _label(value: float) -> str:
    if value and (abs(value) >= 100_000 or abs(value) < 0.01):
        exponent = math.floor(math.log10(abs(value)))
        mantissa = value / 10**exponent
        return f"{mantissa:g}e{exponent}" if mantissa != 1 else f"1e{exponent}"
    return f"{value:g}"


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    log_x: bool = False,
    y_from_zero: bool = True,
    legend: str = "top-left",
) -> str:
    """An SVG line chart of ``series``; ``log_x`` for sizes spanning decades.

    ``legend`` is ``"top-left"`` or ``"bottom-right"`` (where a rising curve leaves room).
    """
    points = [p for s in series for p in s.points]
    if not points:
        raise ValueError("nothing to plot")
    xs, ys = [x for x, _ in points], [y for _, y in points]
    x_low, x_high = min(xs), max(xs)
    if log_x:
        x_low, x_high = 10 ** math.floor(math.log10(x_low)), 10 ** math.ceil(math.log10(x_high))
        if x_low == x_high:  # one decade at least
            x_high *= 10
    elif x_low == x_high:
        x_low, x_high = x_low - 1, x_high + 1
    y_low = 0.0 if y_from_zero else min(ys)
    y_high = max(ys) * 1.08 or 1.0
    y_ticks = _ticks(y_low, y_high, log=False)
    y_high = max(y_high, y_ticks[-1])
    x_ticks = _ticks(x_low, x_high, log=log_x)
    if not log_x:
        x_low, x_high = min(x_low, x_ticks[0]), max(x_high, x_ticks[-1])
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM

    def px(x: float) -> float:
        if log_x:
            fraction = (math.log10(x) - math.log10(x_low)) / (
                math.log10(x_high) - math.log10(x_low)
            )
        else:
            fraction = (x - x_low) / (x_high - x_low)
        return _LEFT + fraction * plot_w

    def py(y: float) -> float:
        return _TOP + plot_h - (y - y_low) / ((y_high - y_low) or 1.0) * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" '
        f'viewBox="0 0 {_WIDTH} {_HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{_WIDTH}" height="{_HEIGHT}" fill="white"/>',
        f'<text x="{_WIDTH / 2}" y="24" text-anchor="middle" font-size="15">{escape(title)}</text>',
    ]
    for tick in y_ticks:
        y = py(tick)
        out.append(
            f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
        )
        out.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_label(tick)}</text>')
    for tick in x_ticks:
        if not x_low <= tick <= x_high:
            continue
        x = px(tick)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}" y2="{_TOP + plot_h}" stroke="#eee"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{_TOP + plot_h + 18}" text-anchor="middle">{_label(tick)}</text>'
        )
    out.append(
        f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#333"/>'
    )
    out.append(
        f'<text x="{_LEFT + plot_w / 2}" y="{_HEIGHT - 18}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
    )
    out.append(
        f'<text transform="translate(18 {_TOP + plot_h / 2}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    for index, line in enumerate(series):
        colour = _COLOURS[index % len(_COLOURS)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in sorted(line.points))
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        if len(line.points) <= 30:
            out.extend(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>'
                for x, y in line.points
            )
        if legend == "bottom-right":
            lx, ly = _WIDTH - _RIGHT - 250, _TOP + plot_h - 12 - (len(series) - 1 - index) * 18
        else:
            lx, ly = _LEFT + 12, _TOP + 16 + index * 18
        out.append(
            f'<line x1="{lx}" x2="{lx + 24}" y1="{ly - 4}" y2="{ly - 4}" '
            f'stroke="{colour}" stroke-width="3"/>'
        )
        out.append(f'<text x="{lx + 30}" y="{ly}">{escape(line.name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def bar_chart(
    title: str, bars: Sequence[tuple[str, float]], *, unit: str, highlight: str = "asgisec"
) -> str:
    """Horizontal bars, one per ``(label, value)``, longest scale first; labels that start with
    ``highlight`` are drawn in the first colour, the others in grey."""
    if not bars:
        raise ValueError("nothing to plot")
    row, label_w, value_w = 26, 330, 90
    width = 760
    height = _TOP + row * len(bars) + 24
    high = max(value for _, value in bars) or 1.0
    plot_w = width - label_w - value_w - _RIGHT
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="24" text-anchor="middle" font-size="15">{escape(title)}</text>',
    ]
    for index, (label, value) in enumerate(bars):
        y = _TOP + index * row
        colour = _COLOURS[0] if label.startswith(highlight) else "#999"
        length = max(1.0, max(value, 0.0) / high * plot_w)
        out.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(label)}</text>')
        out.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{length:.1f}" height="{row - 8}" '
            f'fill="{colour}"/>'
        )
        out.append(
            f'<text x="{label_w + length + 6:.1f}" y="{y + 15}">{value:,.1f} {escape(unit)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"

"""Small, dependency-free SVG charts for self-contained HTML reports: a line chart of time
series and a horizontal bar chart. Text is escaped; output is deterministic."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape

WIDTH, HEIGHT = 720, 280
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 48, 40
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    step = (high - low) / (count - 1)
    return [low + i * step for i in range(count)]


def line_chart(
    title: str,
    series: Mapping[str, Sequence[tuple[datetime, float]]],
    unit: str,
    threshold: tuple[str, float] | None = None,
) -> str:
    """Lines over time, one per series; an optional dashed horizontal threshold."""
    points = [p for values in series.values() for p in values]
    if not points:
        return _empty(title)
    t0 = min(t for t, _ in points).timestamp()
    t1 = max(t for t, _ in points).timestamp()
    y1 = max([v for _, v in points] + ([threshold[1]] if threshold else [])) * 1.05 or 1.0
    span = (t1 - t0) or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: datetime) -> float:
        return LEFT + plot_w * (t.timestamp() - t0) / span

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / y1)

    parts = [_open(title)]
    for tick in _ticks(0.0, y1):
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" '
            f'y2="{y(tick):.1f}" stroke="#eee"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" '
            f'font-size="11">{tick:,.1f}</text>'
        )
    for label, when in (("start", t0), ("end", t1)):
        anchor = "start" if label == "start" else "end"
        xpos = LEFT if label == "start" else WIDTH - RIGHT
        text = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M")
        parts.append(
            f'<text x="{xpos}" y="{HEIGHT - 12}" text-anchor="{anchor}" '
            f'font-size="11">{escape(text)}</text>'
        )
    for i, (name, values) in enumerate(sorted(series.items())):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(
            f"{'M' if j == 0 else 'L'}{x(t):.1f},{y(v):.1f}" for j, (t, v) in enumerate(values)
        )
        parts.append(
            f'<path class="series" d="{path}" fill="none" stroke="{colour}" '
            f'stroke-width="2"><title>{escape(name)}</title></path>'
        )
        parts.append(
            f'<text x="{LEFT + 8 + 150 * i}" y="{TOP - 14}" fill="{colour}" '
            f'font-size="12">{escape(name)}</text>'
        )
    if threshold is not None:
        label, value = threshold
        parts.append(
            f'<line class="threshold" x1="{LEFT}" x2="{WIDTH - RIGHT}" '
            f'y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#d62728" '
            f'stroke-dasharray="6 4"><title>{escape(label)}</title></line>'
        )
    parts.append(
        f'<text x="12" y="{TOP + plot_h / 2:.0f}" font-size="11" '
        f'transform="rotate(-90 12 {TOP + plot_h / 2:.0f})">{escape(unit)}</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def bar_chart(title: str, values: Mapping[str, float], unit: str) -> str:
    """Horizontal bars, largest first."""
    if not values:
        return _empty(title)
    rows = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    top = max(v for _, v in rows) or 1.0
    bar_h = 22
    height = TOP + bar_h * len(rows) + 20
    parts = [_open(title, height)]
    for i, (label, value) in enumerate(rows):
        width = (WIDTH - 260) * value / top
        ypos = TOP + i * bar_h
        parts.append(
            f'<text x="150" y="{ypos + 15}" text-anchor="end" font-size="12">{escape(label)}</text>'
        )
        parts.append(
            f'<rect class="bar" x="160" y="{ypos + 3}" width="{width:.1f}" '
            f'height="{bar_h - 6}" fill="{COLOURS[i % len(COLOURS)]}">'
            f"<title>{escape(label)}: {value:,.3f} {escape(unit)}</title></rect>"
        )
        parts.append(
            f'<text x="{166 + width:.1f}" y="{ypos + 15}" font-size="11">'
            f"{value:,.2f} {escape(unit)}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _open(title: str, height: int = HEIGHT) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}">\n<text x="{LEFT}" y="16" font-size="14" '
        f'font-weight="bold">{escape(title)}</text>'
    )


def _empty(title: str) -> str:
    return _open(title, 60) + '\n<text x="70" y="45" font-size="12">no data</text>\n</svg>'

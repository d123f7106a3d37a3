"""Server-rendered SVG charts for the dashboard: no chart library, no script, nothing inline
that the strict CSP would block (colours come from classes in static/analytics/dashboard.css).
Pure logic: series in, markup out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any

from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 34


def _label(start: str, daily: bool) -> str:
    moment = datetime.fromisoformat(start)
    return moment.strftime("%d %b") if daily else moment.strftime("%H:%M")


def _ceiling(value: float) -> float:
    """A round top for the axis: 1, 2, 5 × 10ⁿ."""
    if value <= 0:
        return 1
    magnitude = 1.0
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def stacked_bars(
    *,
    title: str,
    points: Sequence[dict[str, Any]],
    layers: Sequence[tuple[str, str, str]],
    daily: bool,
) -> SafeString:
    """One bar per point, stacked from ``layers`` (key, label, css class) bottom up."""
    if not points:
        return mark_safe("")
    totals = [sum(float(point[key]) for key, _, _ in layers) for point in points]
    top = _ceiling(max(totals))
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / len(points)
    bar = max(1.0, slot * 0.7)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        value = top * fraction
        text = f"{value:g}"
        parts.append(
            f'<line class="chart__grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" '
            f'y2="{y:.1f}"/><text class="chart__axis" x="{LEFT - 6}" y="{y + 4:.1f}" '
            f'text-anchor="end">{escape(text)}</text>'
        )
    every = max(1, len(points) // 8)
    for index, point in enumerate(points):
        x = LEFT + slot * index + (slot - bar) / 2
        base = float(TOP + plot_h)
        tooltip = [_label(str(point["start"]), daily)]
        for key, label, css in layers:
            value = float(point[key])
            tooltip.append(f"{label}: {value:g}")
            if value <= 0:
                continue
            height = plot_h * value / top
            base -= height
            parts.append(
                f'<rect class="chart__bar {escape(css)}" x="{x:.1f}" y="{base:.1f}" '
                f'width="{bar:.1f}" height="{height:.1f}"/>'
            )
        parts.append(
            f'<rect class="chart__hit" x="{LEFT + slot * index:.1f}" y="{TOP}" '
            f'width="{slot:.1f}" height="{plot_h}"><title>{escape(", ".join(tooltip))}</title>'
            "</rect>"
        )
        if index % every == 0:
            parts.append(
                f'<text class="chart__axis" x="{x + bar / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" '
                f'text-anchor="middle">{escape(_label(str(point["start"]), daily))}</text>'
            )
    legend_x = LEFT
    for _, label, css in layers:
        parts.append(
            f'<rect class="chart__bar {escape(css)}" x="{legend_x}" y="{HEIGHT - 12}" '
            f'width="10" height="10"/><text class="chart__legend" x="{legend_x + 14}" '
            f'y="{HEIGHT - 3}">{escape(label)}</text>'
        )
        legend_x += 24 + 7 * len(label)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every text above is escaped)

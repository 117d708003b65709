"""Charts for the admin's metrics dashboard, drawn on the server.

These functions turn figures into plain geometry (numbers already formatted as strings);
the templates draw it as inline SVG. Nothing runs in the browser and nothing is fetched
from elsewhere, so the dashboard works offline and under a strict Content Security Policy.
Colours come from CSS classes (`rd-fill-<key>`), the same palette as the status badges.
"""

from __future__ import annotations

import math


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 × 10^k at or above `value` (1 for nothing): a round axis top."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5):
        if step * power >= value:
            return step * power
    return 10 * power


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def stacked_columns(rows: list[dict], *, keys: list[tuple[str, str]], label_key: str = "date",
                    width: int = 760, height: int = 240) -> dict:
    """One column per row, stacked by `keys` ((key, label) in stacking order, bottom first)."""
    left, right, top, bottom = 40, 8, 10, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(row.get(k, 0) for k, _ in keys) for row in rows]
    top_value = nice_ceiling(max(totals, default=0))
    slot = plot_w / max(len(rows), 1)
    bar = max(slot * 0.72, 1)
    every = max(1, math.ceil(len(rows) / 10))
    columns = []
    for index, (row, total) in enumerate(zip(rows, totals)):
        x = left + index * slot + (slot - bar) / 2
        y = top + plot_h
        segments = []
        for key, label in keys:
            count = row.get(key, 0)
            if not count:
                continue
            h = plot_h * count / top_value
            y -= h
            segments.append({"key": key, "label": label, "count": count, "y": _n(y), "height": _n(h)})
        columns.append({
            "x": _n(x), "width": _n(bar), "label": str(row.get(label_key, ""))[5:], "full_label": row.get(label_key, ""),
            "show_label": index % every == 0, "label_x": _n(x + bar / 2), "total": total, "segments": segments,
        })
    ticks = [
        {"y": _n(top + plot_h - plot_h * fraction), "label": _n(top_value * fraction)}
        for fraction in (0, 0.25, 0.5, 0.75, 1)
    ]
    return {
        "width": width, "height": height, "left": left, "right": _n(width - right), "tick_x": left - 4,
        "middle_x": _n(left + plot_w / 2), "middle_y": _n(top + plot_h / 2),
        "label_y": _n(height - 6), "columns": columns, "ticks": ticks, "legend": [{"key": k, "label": l} for k, l in keys],
        "empty": not any(totals),
    }


def horizontal_bars(items: list[tuple[str, str, float | None, str]], *, max_value: float | None = None,
                    width: int = 520, row: int = 26, tone: str | None = None, label_w: int = 150) -> dict:
    """One bar per (key, label, value, shown value); the scale runs to `max_value` or a round
    top. Bars take their colour from their key, or all from `tone`."""
    value_w = 90
    plot_w = width - label_w - value_w
    values = [value or 0 for _, _, value, _ in items]
    top_value = max_value or nice_ceiling(max(values, default=0))
    bars = []
    for index, (key, label, value, shown) in enumerate(items):
        y = index * row
        length = plot_w * (value or 0) / top_value if top_value else 0
        bars.append({
            "key": tone or key, "label": label, "shown": shown, "y": _n(y + 4), "text_y": _n(y + row / 2 + 4),
            "length": _n(max(length, 0)), "value_x": _n(label_w + max(length, 0) + 6),
        })
    return {"width": width, "height": len(items) * row + 4, "label_w": label_w, "label_x": label_w - 6, "plot_w": plot_w, "bars": bars,
            "bar_h": row - 8, "empty": not items}

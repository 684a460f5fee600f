"""A small line-chart writer on PIL (no plotting library is a dependency): enough for a sweep figure."""
from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def line_panels(path: str | Path, x: list[float], panels: dict[str, dict[str, list[float]]], xlabel: str,
                title: str = "", size: tuple[int, int] = (360, 260)) -> Path:
    """One panel per entry of ``panels`` (panel title -> {series name -> y values over ``x``}), side by side.

    Non-finite values are skipped. Returns the written PNG path.
    """
    if not x or not panels:
        raise ValueError("nothing to plot: give at least one x value and one panel")
    pw, ph = size
    top = 28 if title else 6
    img = Image.new("RGB", (pw * len(panels), ph + top), "white")
    draw = ImageDraw.Draw(img)
    if title:
        draw.text((8, 8), title, fill="black")
    x0, x1 = min(x), max(x) if max(x) > min(x) else min(x) + 1
    for k, (name, series) in enumerate(panels.items()):
        ox, oy = k * pw, top
        left, right, upper, lower = ox + 52, ox + pw - 12, oy + 22, oy + ph - 34
        values = [v for ys in series.values() for v in ys if v == v and abs(v) != float("inf")]
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        pad = (hi - lo) * 0.08 or 0.05
        lo, hi = lo - pad, hi + pad
        draw.text((left, oy + 4), name, fill="black")
        draw.rectangle([left, upper, right, lower], outline=(90, 90, 90))
        sx = lambda v: left + (v - x0) / (x1 - x0) * (right - left)  # noqa: E731
        sy = lambda v: lower - (v - lo) / (hi - lo) * (lower - upper)  # noqa: E731
        for t in _ticks(lo, hi):
            draw.line([left - 3, sy(t), left, sy(t)], fill=(90, 90, 90))
            draw.text((ox + 4, sy(t) - 6), f"{t:.3g}", fill=(60, 60, 60))
        for t in x:
            draw.line([sx(t), lower, sx(t), lower + 3], fill=(90, 90, 90))
            draw.text((sx(t) - 8, lower + 6), f"{t:g}", fill=(60, 60, 60))
        draw.text(((left + right) // 2 - 3 * len(xlabel), lower + 20), xlabel, fill="black")
        for j, (label, ys) in enumerate(series.items()):
            colour = COLOURS[j % len(COLOURS)]
            pts = [(sx(a), sy(b)) for a, b in zip(x, ys) if b == b and abs(b) != float("inf")]
            if len(pts) > 1:
                draw.line(pts, fill=colour, width=2)
            for px, py in pts:
                draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
            if len(series) > 1:
                draw.text((right - 110, upper + 6 + 14 * j), label, fill=colour)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path

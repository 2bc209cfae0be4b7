"""Small server-side SVG charts (no JavaScript, no external assets). Pure functions.

Every text that goes into the SVG is escaped; callers pass numbers and short labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from markupsafe import Markup

PALETTE = ("#2563eb", "#d97706", "#059669", "#dc2626", "#7c3aed")


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000):
        if v <= step:
            return float(step)
    mag = 10 ** (len(str(int(v))) - 1)
    return float(((int(v) // mag) + 1) * mag)


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.1f}"


def bar_chart(
    values: Sequence[float],
    *,
    title: str,
    first_label: str = "",
    last_label: str = "",
    width: int = 560,
    height: int = 160,
    color: str = PALETTE[0],
) -> Markup:
    """A bar chart of ``values`` (oldest first) with a y axis and labels under the first and last bar."""
    left, right, top, bottom = 36, 8, 22, 20
    plot_w, plot_h = width - left - right, height - top - bottom
    top_v = _nice_max(max(values, default=0))
    n = max(len(values), 1)
    bw = plot_w / n
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}"><title>{escape(title)}</title>',
        f'<text x="{left}" y="14" class="ct">{escape(title)}</text>',
        _axes(left, top, plot_w, plot_h, top_v),
    ]
    for i, v in enumerate(values):
        h = 0.0 if top_v == 0 else plot_h * max(v, 0) / top_v
        x = left + i * bw
        parts.append(
            f'<rect x="{x + 0.5:.1f}" y="{top + plot_h - h:.1f}" width="{max(bw - 1, 0.5):.1f}" height="{h:.1f}" '
            f'fill="{escape(color)}"><title>{escape(_fmt(v))}</title></rect>'
        )
    parts.append(f'<text x="{left}" y="{height - 4}" class="cl">{escape(first_label)}</text>')
    parts.append(f'<text x="{left + plot_w}" y="{height - 4}" class="cl" text-anchor="end">{escape(last_label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    first_label: str = "",
    last_label: str = "",
    width: int = 560,
    height: int = 160,
) -> Markup:
    """Lines sharing one x axis (samples, oldest first) with a legend; an empty series draws nothing."""
    left, right, top, bottom = 36, 8, 22, 20
    plot_w, plot_h = width - left - right, height - top - bottom
    top_v = _nice_max(max((max(s, default=0) for s in series.values()), default=0))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}"><title>{escape(title)}</title>',
        f'<text x="{left}" y="14" class="ct">{escape(title)}</text>',
        _axes(left, top, plot_w, plot_h, top_v),
    ]
    lx = left + 170
    for idx, (name, values) in enumerate(series.items()):
        color = PALETTE[idx % len(PALETTE)]
        n = len(values)
        if n:
            step = plot_w / max(n - 1, 1)
            pts = " ".join(
                f"{left + i * step:.1f},{top + plot_h - plot_h * max(v, 0) / top_v:.1f}" for i, v in enumerate(values)
            )
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>')
            if n == 1:  # one sample so far: a dot
                x, y = pts.split(",")
                parts.append(f'<circle cx="{x}" cy="{y}" r="3" fill="{color}"/>')
        parts.append(f'<rect x="{lx}" y="6" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{lx + 14}" y="15" class="cl">{escape(name)}</text>')
        lx += 14 + 8 * len(name) + 16
    parts.append(f'<text x="{left}" y="{height - 4}" class="cl">{escape(first_label)}</text>')
    parts.append(f'<text x="{left + plot_w}" y="{height - 4}" class="cl" text-anchor="end">{escape(last_label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _axes(left: int, top: int, plot_w: int, plot_h: int, top_v: float) -> str:
    out = []
    for frac in (0.0, 0.5, 1.0):
        y = top + plot_h - plot_h * frac
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" class="grid"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" class="cl" text-anchor="end">{_fmt(top_v * frac)}</text>')
    return "".join(out)

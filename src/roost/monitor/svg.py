"""Hand-made SVG charts for reports: no JavaScript, no CDN, readable under a `sandbox; default-src 'none'` CSP."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

REF = "#4c78a8"
CUR = "#f58518"
W, H = 420, 170
PAD_L, PAD_R, PAD_T, PAD_B = 44, 10, 18, 34


FONT_PX = 10
_NARROW = set("il.,:;'|!ijtfrI ()[]-")
_WIDE = set("WMmw@%")


def text_width(text: str, px: float = FONT_PX) -> float:
    """A generous width estimate of `text` in a sans-serif font (wider than DejaVu Sans, Arial, Helvetica)."""
    em = 0.0
    for c in text:
        if c in _NARROW:
            em += 0.42
        elif c in _WIDE or not c.isascii():
            em += 1.02
        elif c.isupper():
            em += 0.8
        else:
            em += 0.68
    return em * px


def fit_text(text: str, width: float, px: float = FONT_PX) -> str:
    """`text` itself when it fits in `width` px, else its longest prefix that fits with an ellipsis."""
    if text_width(text, px) <= width:
        return text
    keep = len(text)
    while keep > 0 and text_width(text[:keep] + "…", px) > width:
        keep -= 1
    return text[:keep] + "…" if keep else ""


def _pad_left(y_max: float) -> float:
    """Left margin wide enough for the rotated axis label and the widest y tick label."""
    widest = max(text_width(_fmt(y_max * k / 2)) for k in range(3))
    return max(float(PAD_L), 16 + widest + 4)


def _fmt(v: float) -> str:
    """A short number label."""
    if v == 0 or not math.isfinite(v):
        return "0" if v == 0 else str(v)
    a = abs(v)
    if a >= 1e4 or a < 1e-2:
        return f"{v:.2g}"
    return f"{v:.3g}"


def _frame(inner: str, title: str, y_max: float, y_label: str = "share", pad_l: float = PAD_L) -> str:
    """Axes, y ticks, title and legend around plot content."""
    shown = fit_text(title, (W - pad_l - PAD_R) / 1.1)  # bold is up to 10 % wider
    tip = f"<title>{escape(title)}</title>" if shown != title else ""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
        f'role="img" aria-label="{escape(title)}" style="font:10px sans-serif">',
        f'<text x="{pad_l:.1f}" y="11" font-weight="bold">{tip}{escape(shown)}</text>',
    ]
    y0, y1 = H - PAD_B, PAD_T
    for k in range(3):
        v = y_max * k / 2
        y = y0 - (y0 - y1) * k / 2
        parts.append(
            f'<line x1="{pad_l:.1f}" x2="{W - PAD_R}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{pad_l - 4:.1f}" y="{y + 3:.1f}" text-anchor="end">{_fmt(v)}</text>'
        )
    parts.append(
        f'<text x="6" y="{(y0 + y1) / 2:.0f}" transform="rotate(-90 6 {(y0 + y1) / 2:.0f})" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    parts.append(inner)
    parts.append("</svg>")
    return "".join(parts)


def legend(names: Sequence[str] = ("reference", "current"), colors: Sequence[str] = (REF, CUR)) -> str:
    """A small legend as HTML."""
    return " ".join(
        f'<span style="display:inline-block;width:10px;height:10px;background:{c};opacity:.8"></span> {escape(n)}'
        for n, c in zip(names, colors)
    )


def bars(
    labels: Sequence[str],
    series: Sequence[Sequence[float]],
    title: str,
    colors: Sequence[str] = (REF, CUR),
    y_label: str = "share",
    max_bars: int = 30,
) -> str:
    """Grouped bars (one group per label, one bar per series).

    Category labels never leave the canvas or overlap: a label too wide for its slot is cut with an ellipsis
    and keeps its full text in a <title> tooltip (as does every bar).
    """
    labels = list(labels)[:max_bars]
    series = [list(s)[:max_bars] for s in series]
    y_max = max([max(s, default=0) for s in series] + [0.0]) or 1.0
    y0, y1 = H - PAD_B, PAD_T
    n = max(len(labels), 1)
    pad_l = _pad_left(y_max)
    gw = (W - pad_l - PAD_R) / n
    bw = gw * 0.8 / max(len(series), 1)
    out = []
    for i, lab in enumerate(labels):
        for j, s in enumerate(series):
            v = s[i] if i < len(s) else 0
            h = (y0 - y1) * v / y_max
            x = pad_l + i * gw + gw * 0.1 + j * bw
            out.append(
                f'<rect x="{x:.1f}" y="{y0 - h:.1f}" width="{bw:.1f}" height="{h:.1f}" '
                f'fill="{colors[j % len(colors)]}" opacity=".8"><title>{escape(str(lab))}: {_fmt(v)}'
                f"</title></rect>"
            )
        step = math.ceil(n / 12)
        if i % step == 0:
            full = str(lab)
            cx = pad_l + (i + 0.5) * gw
            shown = fit_text(full, min(gw * step, 2 * (cx - 2), 2 * (W - cx - 2)) - 4)  # own slot, on canvas
            tip = f"<title>{escape(full)}</title>" if shown != full else ""
            out.append(f'<text x="{cx:.1f}" y="{y0 + 12}" text-anchor="middle">{tip}{escape(shown)}</text>')
    return _frame("".join(out), title, y_max, y_label, pad_l)


def histogram(
    edges: Sequence[float],
    series: Sequence[Sequence[float]],
    title: str,
    colors: Sequence[str] = (REF, CUR),
    y_label: str = "share",
) -> str:
    """Overlaid histograms on shared bin edges (translucent bars)."""
    y_max = max([max(s, default=0) for s in series] + [0.0]) or 1.0
    y0, y1 = H - PAD_B, PAD_T
    lo, hi = float(edges[0]), float(edges[-1])
    span = (hi - lo) or 1.0

    def sx(v: float) -> float:
        return PAD_L + (W - PAD_L - PAD_R) * (float(v) - lo) / span

    out = []
    for j, s in enumerate(series):
        for i, v in enumerate(s):
            h = (y0 - y1) * v / y_max
            width = max(sx(edges[i + 1]) - sx(edges[i]), 0.5)
            out.append(
                f'<rect x="{sx(edges[i]):.1f}" y="{y0 - h:.1f}" width="{width:.1f}" height="{h:.1f}"'
                f' fill="{colors[j % len(colors)]}" opacity=".5"><title>'
                f"[{_fmt(edges[i])}, {_fmt(edges[i + 1])}): {_fmt(v)}</title></rect>"
            )
    for v in (lo, (lo + hi) / 2, hi):
        out.append(f'<text x="{sx(v):.1f}" y="{y0 + 12}" text-anchor="middle">{_fmt(v)}</text>')
    return _frame("".join(out), title, y_max, y_label)


def lines(
    xs: Sequence[Sequence[float]],
    ys: Sequence[Sequence[float]],
    title: str,
    names: Sequence[str],
    colors: Sequence[str] = (CUR, REF),
    diagonal: bool = False,
    x_label: str = "",
    y_label: str = "",
) -> str:
    """Line chart with points on [0, 1] × [0, 1] (calibration curves)."""
    y0, y1 = H - PAD_B, PAD_T

    def sx(v: float) -> float:
        return PAD_L + (W - PAD_L - PAD_R) * float(v)

    def sy(v: float) -> float:
        return y0 - (y0 - y1) * float(v)

    out = []
    if diagonal:
        out.append(f'<line x1="{sx(0)}" y1="{sy(0)}" x2="{sx(1)}" y2="{sy(1)}" stroke="#999" stroke-dasharray="4 3"/>')
    for j, (x, y) in enumerate(zip(xs, ys)):
        pts = [(a, b) for a, b in zip(x, y) if a == a and b == b]
        c = colors[j % len(colors)]
        out.append(
            f'<polyline fill="none" stroke="{c}" stroke-width="1.5" points="'
            + " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in pts)
            + '"/>'
        )
        out += [
            f'<circle cx="{sx(a):.1f}" cy="{sy(b):.1f}" r="2.5" fill="{c}"><title>{escape(names[j])}: '
            f"{_fmt(a)} → {_fmt(b)}</title></circle>"
            for a, b in pts
        ]
    for v in (0, 0.5, 1):
        out.append(f'<text x="{sx(v):.1f}" y="{y0 + 12}" text-anchor="middle">{_fmt(v)}</text>')
    if x_label:
        out.append(f'<text x="{(PAD_L + W) / 2:.0f}" y="{H - 4}" text-anchor="middle">{escape(x_label)}</text>')
    return _frame("".join(out), title, 1.0, y_label)

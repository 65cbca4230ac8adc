"""Report SVG bar charts keep labels on the canvas and apart (measured with a real font), full text in a tooltip."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest

from roost.monitor import svg

PIL = pytest.importorskip("PIL.ImageFont")
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # a wide, common default sans-serif


def _font() -> object:
    """DejaVu Sans at 10 px where installed, else Pillow's bundled sans-serif."""
    return PIL.truetype(str(DEJAVU), 10) if DEJAVU.exists() else PIL.load_default(size=10)


TEXT = re.compile(r"<text ([^>]*)>(.*?)</text>", re.S)


def _extents(doc: str) -> list[tuple[float, float, str]]:
    """(left, right, text) of every horizontal <text>, measured with the font."""
    font = _font()
    out = []
    for attrs, body in TEXT.findall(doc):
        if "transform" in attrs:  # the rotated axis label
            continue
        x = float(re.search(r'\bx="([-\d.]+)"', attrs).group(1))  # type: ignore[union-attr]
        text = unescape(re.sub(r"<title>.*?</title>", "", body, flags=re.S))
        w = float(font.getlength(text))  # type: ignore[attr-defined]
        anchor = (re.search(r'text-anchor="(\w+)"', attrs) or [None, "start"])[1]
        left = x - w if anchor == "end" else x - w / 2 if anchor == "middle" else x
        out.append((left, left + w, text))
    return out


LONG = [
    "WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW",
    "Mississippi_Metropolitan_Wholesale_Warehouse_Co",
    "short",
    "ÉCOLE_MUNICIPALE_DE_MUSIQUE_ET_DE_DANSE_MONTMARTRE",
]


@pytest.mark.parametrize("n", [1, 3, 4, 13, 30])
def test_bar_labels_fit_canvas_and_do_not_overlap(n: int) -> None:
    labels = [f"{LONG[i % len(LONG)]}_{i}" for i in range(n)]
    doc = svg.bars(labels, [[12345.0 + i for i in range(n)], [9.0] * n], "count of a very long categorical column")
    ext = _extents(doc)
    for left, right, text in ext:
        assert 0 <= left and right <= svg.W, (left, right, text)
    axis = sorted(e for e in ext if e[2] not in ("", "0") and not e[2][0].isdigit() and "count of" not in e[2])
    for a, b in zip(axis, axis[1:]):
        assert a[1] <= b[0], (a, b)  # neighbouring category labels do not overlap


def test_truncated_label_has_ellipsis_and_full_text_tooltip() -> None:
    name = LONG[0] + "_tail"
    doc = svg.bars([name, "b", "c", "d", "e", "f"], [[1, 2, 3, 4, 5, 6]], "t")
    shown = [t for _, _, t in _extents(doc) if t.startswith("WWW")]
    assert len(shown) == 1 and shown[0].endswith("…") and len(shown[0]) < len(name)
    label = next(body for _, body in TEXT.findall(doc) if "WWW…" in body)
    assert f"<title>{name}</title>" in label


def test_short_labels_are_shown_whole() -> None:
    doc = svg.bars(["a", "bb", "ccc"], [[1, 2, 3]], "t")
    texts = [t for _, _, t in _extents(doc)]
    assert {"a", "bb", "ccc"} <= set(texts)

"""Notebook diff views: Rich renderables for the terminal, a standalone side-by-side HTML page."""

from __future__ import annotations

import base64
import difflib
import html
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from roost.notebook.diff import Cell, CellChange, NotebookDiff

_B64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
CONTEXT_LINES = 3
CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:20px;color:#222}
h1{font-size:18px;margin:0 0 4px} .summary{color:#555;margin:0 0 16px}
section{margin:0 0 22px;border:1px solid #ddd;border-radius:4px}
h2{font-size:14px;margin:0;padding:6px 10px;background:#f3f3f3;border-bottom:1px solid #ddd}
h2 .what{font-weight:normal;color:#666}
table{border-collapse:collapse;width:100%;table-layout:fixed}
th{text-align:left;font-weight:normal;color:#666;padding:2px 8px;border-bottom:1px solid #eee}
td{vertical-align:top;padding:0 8px;width:50%;border-right:1px solid #eee}
td pre{margin:0;white-space:pre-wrap;word-break:break-all;font:12px/1.45 ui-monospace,monospace}
tr.part td{background:#fafafa;color:#888;font-size:12px;padding:3px 8px}
td.del{background:#ffebe9} td.ins{background:#e6ffec}
td.none{background:#f7f7f7} img{max-width:100%;margin:4px 0;border:1px solid #eee}
.note{color:#888;font-style:italic;padding:4px 8px}
"""


def line_pairs(a: list[str], b: list[str]) -> Iterator[tuple[str | None, str | None, str]]:
    """Side-by-side rows (left, right, kind) with kind equal/replace/delete/insert."""
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            for x, y in zip(a[i1:i2], b[j1:j2]):
                yield x, y, "equal"
        else:
            left, right = a[i1:i2], b[j1:j2]
            for k in range(max(len(left), len(right))):
                lx = left[k] if k < len(left) else None
                ry = right[k] if k < len(right) else None
                yield (
                    lx,
                    ry,
                    op
                    if op != "replace"
                    else ("replace" if lx is not None and ry is not None else "delete" if ry is None else "insert"),
                )


def _td(text: str | None, side: str, kind: str) -> str:
    if text is None:
        return '<td class="none"></td>'
    cls = "" if kind == "equal" else ("del" if side == "a" else "ins")
    return f'<td class="{cls}"><pre>{html.escape(text) or "&#8203;"}</pre></td>'


def _rows(a: list[str], b: list[str]) -> list[str]:
    return [f"<tr>{_td(x, 'a', k)}{_td(y, 'b', k)}</tr>" for x, y, k in line_pairs(a, b)]


def _img(o: Any) -> str:
    """An <img> with a data URI for a valid image output; escaped text otherwise."""
    if o.kind == "image/svg+xml":
        data = base64.b64encode(o.data.encode("utf-8")).decode("ascii")
    elif _B64.match(o.data):
        data = o.data
    else:
        return '<div class="note">(invalid image data)</div>'
    return f'<img alt="{html.escape(o.kind)}" src="data:{html.escape(o.kind)};base64,{data}">'


def _cell_html(ch: CellChange) -> str:
    a, b = ch.a, ch.b
    parts = [
        f'<section><h2>{html.escape(ch.label)} <span class="what">— {html.escape(ch.what)}</span></h2>',
        "<table><tbody>",
    ]
    src_a = a.source.splitlines() if a else []
    src_b = b.source.splitlines() if b else []
    ctype = (a or b).cell_type  # type: ignore[union-attr]
    parts.append(
        f'<tr class="part"><td colspan="2">{html.escape(ctype)} source'
        f"{'' if ch.source_changed or ch.status != 'modified' else ' (unchanged)'}</td></tr>"
    )
    parts.extend(_rows(src_a, src_b))
    out_a, out_b = (a.output_lines() if a else []), (b.output_lines() if b else [])
    if out_a or out_b:
        parts.append(
            f'<tr class="part"><td colspan="2">outputs'
            f"{'' if ch.outputs_changed or ch.status != 'modified' else ' (unchanged)'}</td></tr>"
        )
        parts.extend(_rows(out_a, out_b))
    imgs_a = [o for o in (a.outputs if a else ()) if o.is_image]
    imgs_b = [o for o in (b.outputs if b else ()) if o.is_image]
    if (imgs_a or imgs_b) and imgs_a != imgs_b:
        parts.append('<tr class="part"><td colspan="2">images</td></tr>')
        parts.append(
            "<tr><td>"
            + "".join(_img(o) for o in imgs_a)
            + "</td><td>"
            + "".join(_img(o) for o in imgs_b)
            + "</td></tr>"
        )
    parts.append("</tbody></table></section>")
    return "\n".join(parts)


def to_html(d: NotebookDiff) -> str:
    """A standalone page (no scripts, no external resources) with every changed cell side by side."""
    title = f"{d.a_name} ⇄ {d.b_name}"
    head = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        "style-src 'unsafe-inline'\">"
        f"<title>notebook diff: {html.escape(title)}</title><style>{CSS}</style></head><body>"
    )
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="summary">{html.escape(d.summary())}</p>',
        f"<table><thead><tr><th>A: {html.escape(d.a_name)}</th><th>B: {html.escape(d.b_name)}</th></tr>"
        "</thead></table>",
    ]
    body.extend(_cell_html(c) for c in d.changes)
    return head + "\n".join(body) + "\n</body></html>\n"


def _unified(a: list[str], b: list[str]) -> Iterator[tuple[str, str]]:
    """(style, line) pairs of a unified diff without file headers."""
    for ln in difflib.unified_diff(a, b, lineterm="", n=CONTEXT_LINES):
        if ln.startswith(("---", "+++")):
            continue
        if ln.startswith("@@"):
            yield "cyan", ln
        elif ln.startswith("-"):
            yield "red", ln
        elif ln.startswith("+"):
            yield "green", ln
        else:
            yield "", ln


def _whole(cell: Cell, sign: str, style: str) -> Iterator[tuple[str, str]]:
    for ln in cell.source.splitlines():
        yield style, f"{sign}{ln}"
    for ln in cell.output_lines():
        yield style, f"{sign}» {ln}"


def rich_renderables(d: NotebookDiff) -> Iterator[Any]:
    """Rich renderables: a rule per changed cell, its source and output diffs, then a summary line."""
    from rich.rule import Rule
    from rich.text import Text

    yield Text(f"--- a: {d.a_name}\n+++ b: {d.b_name}", style="bold")
    for ch in d.changes:
        yield Rule(Text(f"{ch.label}: {ch.what}", style="bold"), align="left", style="dim")
        lines: list[tuple[str, str]] = []
        if ch.status == "added":
            lines.extend(_whole(ch.b, "+", "green"))  # type: ignore[arg-type]
        elif ch.status == "removed":
            lines.extend(_whole(ch.a, "-", "red"))  # type: ignore[arg-type]
        else:
            a, b = ch.a, ch.b
            assert a is not None and b is not None
            if ch.source_changed:
                lines.extend(_unified(a.source.splitlines(), b.source.splitlines()))
            else:
                src = a.source.splitlines()
                lines.extend(("dim", f" {ln}") for ln in src[:CONTEXT_LINES])
                if len(src) > CONTEXT_LINES:
                    lines.append(("dim", f" … {len(src) - CONTEXT_LINES} more source lines"))
            if ch.outputs_changed:
                lines.append(("bold", "outputs:"))
                lines.extend(_unified(a.output_lines(), b.output_lines()))
        text = Text()
        for style, ln in lines:
            text.append(ln + "\n", style=style or None)
        yield text
    yield Text(d.summary(), style="bold" if d.changes else "green")

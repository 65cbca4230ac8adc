"""The `roost runs list` table: the UI's column choice and nesting, fitted to the terminal width."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

FIXED = ("run", "name", "status", "started")
PAD = 3  # Rich's cell padding and separator per column


def _cell(v: Any) -> str:
    """A value as the table shows it: floats to 4 significant digits, large counts with separators."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:.4g}"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M")
    return str(v)


def _width(head: str, cells: list[str]) -> int:
    """Characters a column takes in the table: its widest cell or header, plus Rich's padding."""
    return max([len(head)] + [len(c) for c in cells]) + PAD


def runs_rows(
    runs: list[dict[str, Any]], columns: str | None = None, width: int | None = None
) -> tuple[list[str], list[list[str]], int]:
    """(headers, rows, number of columns left out to fit `width`) for a list of run dicts."""
    from roost.registry.columns import choose_columns, nest_runs, parse_columns

    cols = parse_columns(columns, runs) if columns else choose_columns(runs)
    nested = nest_runs(runs)
    fixed = [
        [
            (r["run_id"] or "")[:8],
            ("  " * depth + "└ " if depth else "") + " ".join(x for x in (r["name"], f"(+{n})" if n else "") if x),
            r["status"] or "",
            _cell(r["start_time"]),
        ]
        for r, depth, n in nested
    ]
    extra = [[_cell(c.value(r)) for c in cols] for r, _, _ in nested]
    heads = [c.key if c.kind != "tag" else c.field for c in cols]
    keep = len(cols)
    if width is not None and not columns:
        used = sum(_width(h, [row[i] for row in fixed]) for i, h in enumerate(FIXED))
        keep = 0
        for i, h in enumerate(heads):
            w = _width(h, [row[i] for row in extra])
            if used + w > width:
                break
            used, keep = used + w, keep + 1
    rows = [f + e[:keep] for f, e in zip(fixed, extra)]
    return [*FIXED, *heads[:keep]], rows, len(cols) - keep


def print_runs(runs: list[dict[str, Any]], columns: str | None = None) -> None:
    """Print runs as a table that fits the terminal (a note on stderr names what was left out)."""
    from rich.console import Console

    console = Console(soft_wrap=True)
    heads, rows, dropped = runs_rows(runs, columns, console.width if console.is_terminal else None)
    print_fitted(f"{len(runs)} run(s)", heads, rows, len(FIXED), dropped, "--columns")


def print_fitted(title: str, heads: list[str], rows: list[list[str]], n_fixed: int, dropped: int, how: str) -> None:
    """Print rows already fitted to the terminal; in a pipe or a file every column whole, as wide as it needs (not
    squeezed into 80). The first `n_fixed` columns are left-aligned and never wrap; a note says what was dropped."""
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=True)
    if not console.is_terminal:
        needed = sum(_width(h, [r[i] for r in rows]) for i, h in enumerate(heads)) + 1
        console = Console(soft_wrap=True, width=max(needed, console.width))
    t = Table(title=title, show_lines=False)
    for i, h in enumerate(heads):
        t.add_column(h, overflow="fold", justify="right" if i >= n_fixed else "left", no_wrap=i < n_fixed)
    for r in rows:
        t.add_row(*r)
    console.print(t)
    if dropped:
        sys.stderr.write(f"note: {dropped} more column(s) do not fit the terminal; choose them with {how}\n")


def fit(heads: list[str], rows: list[list[str]], n_fixed: int, width: int | None) -> int:
    """How many columns fit `width` (all when None): the first `n_fixed` always, then the others in order."""
    if width is None:
        return len(heads)
    used = sum(_width(h, [r[i] for r in rows]) for i, h in enumerate(heads[:n_fixed]))
    keep = n_fixed
    for i in range(n_fixed, len(heads)):
        w = _width(heads[i], [r[i] for r in rows])
        if used + w > width:
            break
        used, keep = used + w, keep + 1
    return keep

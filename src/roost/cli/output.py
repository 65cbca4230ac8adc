"""Shared CLI output helpers: Rich tables for people, JSON for machines."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

import typer

from roost.console import echo

__all__ = ["LIMIT", "ORDER_BY", "echo", "print_json", "print_table", "sort_limit"]

T = TypeVar("T")

# The options of every list verb (#37): the same names, help and meaning everywhere.
LIMIT: Any = typer.Option(None, "--limit", "-n", min=1, help="Show at most N rows [default: all].")
ORDER_BY: Any = typer.Option(
    None, "--order-by", help='Sort by a field, e.g. "name" or "created_at DESC" (nested: "metrics.auc DESC").'
)


def _field(row: dict[str, Any], key: str) -> tuple[bool, Any]:
    """(found, value) of a field, dotted keys reaching into nested dicts."""
    cur: Any = row
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return False, None
        cur = cur[part]
    return True, cur


def _keys(row: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k, v in row.items():
        out.append(prefix + k)
        if isinstance(v, dict) and v and len(v) < 50:
            out += _keys(v, f"{prefix}{k}.")
    return out


def _sort_key(v: Any) -> tuple[int, Any] | None:
    """Numbers before text, each in its own order; None for a missing value (always listed last)."""
    if v is None:
        return None
    return (0, v) if isinstance(v, int | float) else (1, str(v))


def sort_limit(
    rows: Sequence[T], order_by: str | None, limit: int | None, fields: Callable[[T], dict[str, Any]] | None = None
) -> list[T]:
    """Rows sorted by `--order-by "KEY [ASC|DESC]"` (missing values last), then cut to `--limit`."""
    from roost.errors import RoostError

    out = list(rows)
    if order_by:
        parts = order_by.split()
        desc = len(parts) == 2 and parts[1].upper() == "DESC"
        if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1].upper() not in ("ASC", "DESC")):
            raise RoostError(f"--order-by {order_by!r}: expected KEY [ASC|DESC]", hint='e.g. --order-by "name DESC"')
        dicts = [fields(r) if fields else cast(dict[str, Any], r) for r in out]
        if dicts and not any(_field(d, parts[0])[0] for d in dicts):
            names = sorted({k for d in dicts for k in _keys(d)})
            raise RoostError(f"--order-by {parts[0]!r}: no such field", hint=f"fields: {', '.join(names)}")
        keys = [_sort_key(_field(d, parts[0])[1]) for d in dicts]
        known = [(k, i) for i, k in enumerate(keys) if k is not None]
        known.sort(key=lambda ki: ki[0], reverse=desc)
        out = [out[i] for _, i in known] + [out[i] for i, k in enumerate(keys) if k is None]
    return out if limit is None else out[:limit]


def print_json(obj: Any) -> None:
    """Print `obj` as JSON on stdout (datetimes and paths as strings)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print rows as a Rich table."""
    from rich.console import Console
    from rich.table import Table

    cells = [["" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v)) for v in r] for r in rows]
    t = Table(title=title, show_lines=False)
    for c in columns:
        t.add_column(str(c), overflow="fold")
    for r in cells:
        t.add_row(*r)
    console = Console(soft_wrap=True)
    if not console.is_terminal:  # a pipe or a file: every cell whole, as wide as it needs (not folded into 80)
        widths = [max([len(str(c)), *(len(r[i]) for r in cells if i < len(r))]) for i, c in enumerate(columns)]
        console = Console(soft_wrap=True, width=max(console.width, sum(w + 3 for w in widths) + 1))
    console.print(t)

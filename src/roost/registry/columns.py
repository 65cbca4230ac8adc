"""Which columns a runs table shows, in what order: shared by `roost runs list` and the UI runs table.

Headline metrics of the runs' task come first (test before val, the task's primary metric first), then the
params whose values vary across the listed runs, then the other metrics that vary. Columns every run leaves
empty are hidden, and so are columns that hold one value in every run that sets them (given two runs or more).
Nested runs (tuning trials, `auto` candidates, pipeline tasks) are listed right under their parent.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from roost.errors import RoostError, closest

__all__ = ["HEADLINE", "Column", "choose_columns", "headline_metrics", "nest_runs", "parse_columns"]

# Per task (the run's `roost.task` tag): metric names in order of importance; each is looked up as test_X, val_X.
HEADLINE: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "pr_auc", "log_loss", "accuracy"),
    "multiclass": ("log_loss", "accuracy", "macro_f1"),  # the primary metric first (roost.metrics.overall.PRIMARY)
    "regression": ("rmse", "mae", "r2"),
}
_SECTIONS = {"metrics": "metric", "params": "param", "tags": "tag"}


@dataclass(frozen=True)
class Column:
    """One table column: a metric, param or tag key."""

    kind: str  # "metric" | "param" | "tag"
    key: str

    @property
    def field(self) -> str:
        """The filter-language name, e.g. metrics.test_roc_auc."""
        return f"{self.kind}s.{self.key}"

    def value(self, run: dict[str, Any]) -> Any:
        """This column's value in a run dict (None when the run has none)."""
        return (run.get(f"{self.kind}s") or {}).get(self.key)


def _norm(v: Any) -> str:
    """A comparable form of a value (so 1 and 1.0, or equal lists, count as one value)."""
    if isinstance(v, bool) or v is None:
        return repr(v)
    if isinstance(v, (int, float)):
        return repr(float(v))
    return json.dumps(v, sort_keys=True, default=str)


def _varies(runs: Sequence[dict[str, Any]], col: Column) -> bool:
    """Whether the runs that set the column hold two or more distinct values (runs without it do not count).

    So a parent run without params (a tuning run) does not make every param of its trials look varied.
    """
    return len({_norm(v) for v in (col.value(r) for r in runs) if v is not None}) > 1


def _present(runs: Sequence[dict[str, Any]], col: Column) -> bool:
    """Whether any run has a non-null value in the column."""
    return any(col.value(r) is not None for r in runs)


def headline_metrics(runs: Sequence[dict[str, Any]]) -> list[str]:
    """Metric keys that headline these runs: their task's test_/val_ metrics, most common task first."""
    tasks = Counter((r.get("tags") or {}).get("roost.task") for r in runs)
    have = {k for r in runs for k in (r.get("metrics") or {})}
    out: list[str] = []
    for task, _ in tasks.most_common():
        for name in HEADLINE.get(str(task), ()):
            out += [k for k in (f"test_{name}", f"val_{name}") if k in have and k not in out]
    return out


def choose_columns(runs: Sequence[dict[str, Any]], limit: int | None = None) -> list[Column]:
    """The default columns for these runs: headline metrics, varying params, other varying metrics."""
    many = len(runs) > 1
    heads = [Column("metric", k) for k in headline_metrics(runs)]
    heads = [c for c in heads if _present(runs, c)]
    params = sorted({k for r in runs for k in (r.get("params") or {})})
    pcols = [c for c in (Column("param", k) for k in params) if _present(runs, c) and (not many or _varies(runs, c))]
    taken = {c.key for c in heads}
    metrics = sorted({k for r in runs for k in (r.get("metrics") or {})} - taken)
    mcols = [c for c in (Column("metric", k) for k in metrics) if _present(runs, c) and (not many or _varies(runs, c))]
    cols = heads + pcols + mcols
    return cols[:limit] if limit is not None else cols


def parse_columns(spec: str | Sequence[str], runs: Sequence[dict[str, Any]]) -> list[Column]:
    """Columns named by the user ("params.lr,test_roc_auc"); a bare name is looked up in metrics, params, tags."""
    names = [s.strip() for part in ([spec] if isinstance(spec, str) else spec) for s in part.split(",")]
    known = {kind: {k for r in runs for k in (r.get(f"{kind}s") or {})} for kind in ("metric", "param", "tag")}
    out: list[Column] = []
    for name in (n for n in names if n):
        section, _, key = name.partition(".")
        if key and section in _SECTIONS:
            col = Column(_SECTIONS[section], key)
        else:
            kind = next((k for k in ("metric", "param", "tag") if name in known[k]), None)
            if kind is None:
                every = [f"{k}s.{x}" for k, keys in known.items() for x in sorted(keys)]
                near = closest(name, every + [x for keys in known.values() for x in keys])
                raise RoostError(
                    f"column {name!r}: no listed run has a metric, param or tag of that name",
                    hint=f"did you mean {near!r}?" if near else "name columns as metrics.X, params.X or tags.X",
                )
            col = Column(kind, name)
        if col not in out:
            out.append(col)
    return out


def nest_runs(runs: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], int, int]]:
    """Runs in table order with nesting: (run, depth, number of children listed), children right after parents.

    A run whose parent is not among `runs` stays at the top level; order among siblings is kept.
    """
    ids = {r["run_id"] for r in runs}
    kids: dict[str, list[dict[str, Any]]] = {}
    roots: list[dict[str, Any]] = []
    for r in runs:
        parent = r.get("parent_run_id")
        if parent and parent in ids and parent != r["run_id"]:
            kids.setdefault(parent, []).append(r)
        else:
            roots.append(r)
    out: list[tuple[dict[str, Any], int, int]] = []
    seen: set[str] = set()

    def walk(r: dict[str, Any], depth: int) -> None:
        if r["run_id"] in seen:
            return
        seen.add(r["run_id"])
        out.append((r, depth, len(kids.get(r["run_id"], []))))
        for c in kids.get(r["run_id"], []):
            walk(c, depth + 1)

    for r in roots:
        walk(r, 0)
    for r in runs:  # a parent cycle leaves runs unreached: list them flat rather than drop them
        walk(r, 0)
    return out

"""The UI's views over the registry's read functions (registry.reads, registry.curves): pages, columns, diffs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from roost.registry import curves, paging, reads
from roost.registry.columns import Column, choose_columns, nest_runs
from roost.registry.paging import Count
from roost.registry.store import Store, default_store

MAX_KEY_COLUMNS = 30
MAX_PER_PAGE = 500
MAX_CHILDREN = 1000  # nested runs fetched under one page of parents
NEST_DEPTH = 3


@dataclass
class RunsPage:
    """One page of the runs table: the runs, the total count and the param/metric columns."""

    runs: list[dict[str, Any]]
    total: int
    page: int
    per_page: int
    param_keys: list[str] = field(default_factory=list)
    metric_keys: list[str] = field(default_factory=list)
    columns: list[Column] = field(default_factory=list)
    more_columns: list[Column] = field(default_factory=list)
    rows: list[tuple[dict[str, Any], int, int]] = field(default_factory=list)
    nested: int = 0
    total_exact: bool = True  # False: `total` is at least (cap) or about (approx) how many runs match
    total_approx: bool = False  # `total` is an estimate from the newest runs (registry.paging.capped_count)

    @property
    def groups(self) -> list[tuple[str, int]]:
        """(label, span) of consecutive columns of one kind, for the header's group row."""
        out: list[tuple[str, int]] = []
        for c in self.columns:
            label = c.kind + "s"
            if out and out[-1][0] == label:
                out[-1] = (label, out[-1][1] + 1)
            else:
                out.append((label, 1))
        return out

    @property
    def pages(self) -> int:
        """Number of pages (at least 1; when the count is capped, the pages known to exist)."""
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_next(self) -> bool:
        """Whether a page follows this one."""
        return self.page < self.pages or (not self.total_exact and len(self.runs) == self.per_page)

    @property
    def total_text(self) -> str:
        """The count as shown: '1,234', '~6,700' (estimated) or '10,000+' (capped)."""
        return str(Count(self.total, self.total_exact, self.total_approx))


def experiment_names(store: Store | None = None) -> list[str]:
    """Every experiment's name, oldest first (no run counts: those read every run)."""
    return reads.experiment_names(store)


def experiments_with_counts(store: Store | None = None) -> list[dict[str, Any]]:
    """Every experiment with its active runs counted as the runs page counts (exact up to 10,000 runs, else
    estimated or "10,000+"): store.list_experiments counts every run, seconds at a million."""
    return [
        {"id": e.id, "name": e.name, "created_at": e.created_at, "runs": str(e.runs), "count": e.runs}
        for e in reads.experiments_with_counts(store)
    ]


def count_runs(
    filter: str | None = None,
    experiments: list[str] | None = None,
    store: Store | None = None,
    cap: int | None = paging.COUNT_CAP,
    archived: bool = False,
    window: int | None = paging.COUNT_WINDOW,
) -> Count:
    """How many runs match a filter, as the runs page shows it (registry.paging.capped_count: exact up to `cap`
    when the scope fits in `window` runs, else estimated from the newest `window`, "10,000+" beyond the cap).

    cap=None counts every match exactly (reads them all: seconds for a common condition at a million runs).
    """
    return reads.count_runs(filter, experiments, store, cap, archived, window)


def column_keys(experiments: list[str] | None = None, store: Store | None = None) -> tuple[list[str], list[str]]:
    """Distinct param and metric keys of the runs in scope (capped), for the table's columns."""
    return reads.column_keys(experiments, store, MAX_KEY_COLUMNS)


def runs_page(
    filter: str | None = None,
    experiments: list[str] | None = None,
    order_by: str | None = None,
    page: int = 1,
    per_page: int = 50,
    store: Store | None = None,
    nest: bool = False,
    archived: bool = False,
) -> RunsPage:
    """One page of matching runs, paged in SQL, with the count (exact up to COUNT_CAP) and the columns to show.

    With `nest`, pages hold top-level runs only and each brings its nested runs (trials, candidates, tasks).
    With `archived`, archived runs are listed too (deleted runs never are).
    """
    st = store or default_store("the web UI")
    per_page = max(1, min(int(per_page), MAX_PER_PAGE))
    page = max(1, int(page))
    got = reads.runs_slice(
        filter, experiments, order_by, page, per_page, st, nest, archived, max_children=MAX_CHILDREN, depth=NEST_DEPTH
    )
    runs, kids, count, page = got.runs, got.children, got.count, got.page
    pkeys, mkeys = column_keys(experiments, st)
    everything = runs + kids
    shown = choose_columns(everything)
    every = [Column("metric", k) for k in sorted({k for r in everything for k in r["metrics"]})]
    every += [Column("param", k) for k in sorted({k for r in everything for k in r["params"]})]
    more = [c for c in every if c not in shown][: 2 * MAX_KEY_COLUMNS]
    return RunsPage(
        runs,
        count.n,
        page,
        per_page,
        pkeys,
        mkeys,
        shown,
        more,
        nest_runs(everything),
        len(kids),
        total_exact=count.exact,
        total_approx=count.approx,
    )


def metric_series(run_id: str, max_points: int = 2000, store: Store | None = None) -> dict[str, dict[str, list[Any]]]:
    """Every metric of a run as {key: {"steps": [...], "values": [...]}}, evenly thinned to max_points."""
    return {
        k: {"steps": list(c.steps), "values": list(c.values)}
        for k, c in curves.metric_curves(run_id, max_points, store).items()
    }


def diff_rows(runs: list[dict[str, Any]], section: str) -> list[dict[str, Any]]:
    """Rows of one section (params/metrics/tags) across runs: key, per-run values, and whether they differ."""
    keys = sorted({k for r in runs for k in r[section]})
    rows = []
    for k in keys:
        vals = [r[section].get(k) for r in runs]
        shown = [repr(v) if isinstance(v, float) else v for v in vals]
        rows.append({"key": k, "values": vals, "differs": len({str(v) for v in shown}) > 1})
    return rows


def runs_by_ids(ids: list[str], store: Store | None = None) -> dict[str, dict[str, Any]]:
    """Full run dicts for the given (full) ids, keyed by id; unknown ids are left out."""
    return (store or default_store("the web UI")).runs_by_ids(ids, reap=False)


def model_view(name: str, store: Store | None = None) -> dict[str, Any]:
    """A model's versions with aliases, producing runs and metrics side by side, plus its alias history."""
    from roost.registry import modelreg

    st = store or default_store("the web UI")
    versions = [v.to_dict() for v in modelreg.list_versions(st, name)]
    runs = runs_by_ids([v["run_id"] for v in versions if v["run_id"]], st)
    for v in versions:
        run = runs.get(v["run_id"] or "")
        v["run"] = run
        meta_metrics = (v.get("meta") or {}).get("metrics") or {}
        v["metrics"] = {k: x for k, x in meta_metrics.items() if isinstance(x, (int, float))} or (
            dict(run["metrics"]) if run else {}
        )
    from roost.ui.served import DEFAULT_EXTRA_METRICS, headline, order_metrics, task_of

    keys = sorted({k for v in versions for k in v["metrics"]})
    task = task_of(versions)
    primary = headline(task, keys)
    lead, rest = order_metrics(keys, primary)
    return {
        "name": name,
        "versions": versions,
        "task": task,
        "primary": primary,
        "metric_keys": lead + rest,
        "default_metrics": lead + rest[:DEFAULT_EXTRA_METRICS],
        "alias_history": modelreg.alias_history(st, name),
    }


def feature_views(store: Store | None = None) -> dict[str, dict[str, Any]]:
    """Feature view specs registered by the feature store ({} when there are none)."""
    st = store or default_store("the web UI")
    return st.list_objects("feature_view")

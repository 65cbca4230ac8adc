"""What the run and compare pages chart: per-epoch curves only, honest y ranges, time axes as dates.

A metric with one point per run (test_*, a final score) is a number, not a curve: it goes to the metrics
table, never to a chart. A step logged twice (the restored best model's val_* metrics re-logged at the last
epoch) keeps its first value on the curve, and the restored epoch is drawn as a marker instead.
"""

from __future__ import annotations

import math
from typing import Any

from roost.registry.store import Store

MIN_RELATIVE_SPAN = 0.02  # a y axis spans at least 2% of the values' magnitude: 0.8000 vs 0.8001 look equal
PAD = 0.05
EPOCH_SECONDS = 1e9  # steps at or above this (2001-09 as Unix seconds) are timestamps
EPOCH_MILLIS = 1e12
STEP_KEYS = ("train_loss_step",)  # logged per mini-batch, not per epoch: no best-epoch marker

__all__ = ["chart_payload", "honest_range", "runs_charts"]


def honest_range(values: list[float | None]) -> list[float]:
    """A y range [lo, hi] for values: padded, and never narrower than 2% of their magnitude (1 around 0)."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return [0.0, 1.0]
    lo, hi = min(vals), max(vals)
    floor = max(abs(lo), abs(hi)) * MIN_RELATIVE_SPAN or 1.0
    if hi - lo < floor:
        mid = (lo + hi) / 2
        lo, hi = mid - floor / 2, mid + floor / 2
    pad = (hi - lo) * PAD
    return [lo - pad, hi + pad]


def _dedupe(steps: list[Any], values: list[Any]) -> tuple[list[Any], list[Any]]:
    """One point per step (the first logged), keeping order."""
    seen: set[Any] = set()
    s_out, v_out = [], []
    for s, v in zip(steps, values):
        if s in seen:
            continue
        seen.add(s)
        s_out.append(s)
        v_out.append(v)
    return s_out, v_out


def _best_epoch(run: dict[str, Any]) -> int | None:
    """The restored best epoch of a training run (tag roost.best_epoch), or None."""
    raw = (run.get("tags") or {}).get("roost.best_epoch")
    try:
        return int(float(raw)) if raw not in (None, "") else None
    except (TypeError, ValueError):
        return None


def chart_payload(runs: list[dict[str, Any]], series: list[dict[str, dict[str, list[Any]]]]) -> dict[str, Any]:
    """Charts for runs (dicts with run_id, name, tags) and their metric series, plus the keys left to tables."""
    names = [r.get("name") or r["run_id"][:8] for r in runs]
    labels = [n if names.count(n) == 1 else f"{n} ({r['run_id'][:8]})" for n, r in zip(names, runs)]
    keys = sorted({k for s in series for k in s})
    charts, final = [], []
    for key in keys:
        lines = []
        for r, label, s in zip(runs, labels, series):
            m = s.get(key) or {"steps": [], "values": []}
            steps, values = _dedupe(m["steps"], m["values"])
            lines.append({"id": r["run_id"], "label": label, "steps": steps, "values": values})
        if max(len(ln["steps"]) for ln in lines) < 2:
            final.append(key)
            continue
        all_steps = [s for ln in lines for s in ln["steps"]]
        x_type = "time" if all_steps and min(all_steps) >= EPOCH_SECONDS else "step"
        if x_type == "time":
            scale = 1 if min(all_steps) >= EPOCH_MILLIS else 1000
            for ln in lines:
                ln["steps"] = [s * scale for s in ln["steps"]]
        markers = []
        if x_type == "step" and key not in STEP_KEYS:
            for r, ln in zip(runs, lines):
                best = _best_epoch(r)
                if best is not None and ln["steps"] and best in ln["steps"]:
                    markers.append({"id": r["run_id"], "step": best, "label": f"restored best epoch {best}"})
        y_range = honest_range([v for ln in lines for v in ln["values"]])
        charts.append({"key": key, "x_type": x_type, "y_range": y_range, "series": lines, "markers": markers})
    return {"charts": charts, "final": final}


def runs_charts(
    runs: list[str] | list[dict[str, Any]], max_points: int = 2000, store: Store | None = None
) -> dict[str, Any]:
    """The chart payload of runs (dicts, or full ids: unknown ones left out), in the given order.

    Every curve of every run comes from one query (roost.ui.compare.metric_series_many), thinned to max_points.
    """
    from roost.ui.compare import metric_series_many
    from roost.ui.data import runs_by_ids

    if all(isinstance(r, str) for r in runs):
        found = runs_by_ids([r for r in runs if isinstance(r, str)], store)
        dicts = [found[i] for i in runs if isinstance(i, str) and i in found]
    else:
        dicts = [r for r in runs if isinstance(r, dict)]
    series = metric_series_many([r["run_id"] for r in dicts], max_points, store)
    return chart_payload(dicts, [series[r["run_id"]] for r in dicts])

"""What the run and compare pages chart: curves per kind of step, honest y ranges, time axes as dates.

A metric with one point per run (test_*, a final score) is a number, not a curve: it goes to the metrics
table and the final-value bars, never to a chart as a dot. Curves whose steps count different things (LightGBM
boosting rounds, network epochs, mini-batches: roost.ui.stepkind) get separate charts. A step logged twice (the
restored best model's val_* metrics re-logged at the last epoch) keeps its first value on the curve, and the
restored epoch is drawn as a marker instead.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from roost.registry.store import Store
from roost.ui import stepkind

MIN_RELATIVE_SPAN = 0.02  # a y axis spans at least 2% of the values' magnitude: 0.8000 vs 0.8001 look equal
PAD = 0.05
EPOCH_MILLIS = 1e12

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


def _dedupe(steps: list[Any], values: list[Any], times: list[Any]) -> tuple[list[Any], list[Any], list[Any]]:
    """One point per step (the first logged), keeping order; `times` may be empty (then it stays empty)."""
    seen: set[Any] = set()
    s_out, v_out, t_out = [], [], []
    for i, (s, v) in enumerate(zip(steps, values)):
        if s in seen:
            continue
        seen.add(s)
        s_out.append(s)
        v_out.append(v)
        if i < len(times):
            t_out.append(times[i])
    return s_out, v_out, t_out


def _best_epoch(run: dict[str, Any]) -> int | None:
    """The restored best epoch of a training run (tag roost.best_epoch), or None."""
    raw = (run.get("tags") or {}).get("roost.best_epoch")
    try:
        return int(float(raw)) if raw not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _start_ms(run: dict[str, Any]) -> float | None:
    """The run's start as Unix milliseconds (None when unknown)."""
    t = run.get("start_time")
    if isinstance(t, datetime):
        return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp() * 1000
    return None


def chart_payload(runs: list[dict[str, Any]], series: list[dict[str, dict[str, list[Any]]]]) -> dict[str, Any]:
    """Charts for runs (dicts with run_id, name, tags) and their metric series, plus the keys left to tables.

    A metric whose runs count different things per step (boosting rounds, epochs, mini-batches) gets one chart
    per kind of step, never one shared axis; a run with one point of a metric is a final value (`finals`), not
    a dot at step 0.
    """
    names = [r.get("name") or r["run_id"][:8] for r in runs]
    labels = [n if names.count(n) == 1 else f"{n} ({r['run_id'][:8]})" for n, r in zip(names, runs)]
    keys = sorted({k for s in series for k in s})
    charts, final, finals = [], [], []
    for key in keys:
        by_kind: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
        singles = []
        for r, label, s in zip(runs, labels, series):
            m = s.get(key)
            if not m:
                continue
            steps, values, times = _dedupe(m["steps"], m["values"], m.get("times") or [])
            if len(steps) < 2:
                if values and values[0] is not None:
                    singles.append({"id": r["run_id"], "label": label, "value": values[0]})
                continue
            kind = stepkind.step_kind(r, key, steps)
            line = {
                "id": r["run_id"],
                "label": label,
                "steps": steps,
                "values": values,
                "times": [round(t * 1000) for t in times],  # Unix ms
                "start": _start_ms(r),
                "steps_per_epoch": stepkind.steps_per_epoch(r) if kind == "batch" else None,
            }
            by_kind.setdefault(kind, []).append((r, line))
        if singles:
            finals.append({"key": key, "values": singles})
        if not by_kind:
            final.append(key)
            continue
        for kind, pairs in sorted(by_kind.items()):
            charts.append(_chart(key, kind, pairs, split=len(by_kind) > 1))
    return {"charts": charts, "final": final, "finals": finals}


def _chart(key: str, kind: str, pairs: list[tuple[dict[str, Any], dict[str, Any]]], split: bool) -> dict[str, Any]:
    """One chart of metric `key` over steps of one kind (`split`: the metric has charts of other kinds too)."""
    lines = [ln for _, ln in pairs]
    x_type = "time" if kind == "time" else "step"
    if x_type == "time":
        scale = 1 if min(s for ln in lines for s in ln["steps"]) >= EPOCH_MILLIS else 1000
        for ln in lines:
            ln["steps"] = [s * scale for s in ln["steps"]]
    markers = []
    if kind in ("epoch", "boosting_round", "step"):
        for r, ln in pairs:
            best = _best_epoch(r)
            if best is not None and ln["steps"] and best in ln["steps"]:
                what = "epoch" if kind == "step" else stepkind.label(kind)
                markers.append({"id": r["run_id"], "step": best, "label": f"restored best {what} {best}"})
    values = [v for ln in lines for v in ln["values"]]
    return {
        "key": key,
        "kind": kind,
        "x_label": stepkind.label(kind),
        "x_type": x_type,
        "split": split,
        "y_range": honest_range(values),
        "log_ok": all(v is None or v > 0 for v in values),
        "series": lines,
        "markers": markers,
    }


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

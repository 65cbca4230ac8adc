"""The model page's production side: the headline metric first, the fleets serving the model, and its traffic.

Traffic comes from the minute rollups in the registry (roost.registry.fleets, written by the serving fleets from
their request logs): a page reads at most MAX_POINTS rows per version, never a log file.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from roost.registry import fleets, sketch
from roost.registry.store import Store, default_store

WINDOWS = {"1h": 60, "6h": 360, "24h": 24 * 60, "7d": 7 * 24 * 60}
SPAN = {"1h": 1, "6h": 10, "24h": 10, "7d": 60}  # minutes per point: rows of that span (roost.registry.fleets.SPANS)
DEFAULT_WINDOW = "1h"
DEFAULT_EXTRA_METRICS = 4  # metric columns shown besides the headline ones until the user picks others
_TASK_BY_KEY = (("roc_auc", "binary"), ("rmse", "regression"), ("log_loss", "multiclass"))
_SPLITS = ("test_", "val_", "")


def headline(task: str | None, keys: list[str]) -> str | None:
    """The task's headline metric name (roc_auc | rmse | log_loss) given a task, else guessed from the keys."""
    from roost.metrics.overall import PRIMARY

    if task in PRIMARY:
        return PRIMARY[task][0]
    for name, _task in _TASK_BY_KEY:
        if any(k == name or k.endswith("_" + name) for k in keys):
            return name
    return None


def order_metrics(keys: list[str], primary: str | None) -> tuple[list[str], list[str]]:
    """(headline columns: test_, val_ then bare primary, accuracy for multiclass after; the rest, alphabetical)."""
    lead = [s + primary for s in _SPLITS if primary and s + primary in keys]
    if primary == "log_loss":
        lead += [s + "accuracy" for s in _SPLITS if s + "accuracy" in keys]
    lead += sorted(k for k in keys if primary and k not in lead and k.endswith(primary))
    return lead, sorted(k for k in keys if k not in lead)


def task_of(versions: list[dict[str, Any]]) -> str | None:
    """The model's task (binary | multiclass | regression) from its newest version that says."""
    for v in reversed(versions):
        task = (v.get("signature") or {}).get("task") or (v.get("meta") or {}).get("task")
        if isinstance(task, str):
            return task
    return None


def _uptime(seconds: float) -> str:
    """A duration as '3 d 4 h', '2 h 5 min', '4 min 10 s'."""
    s = int(seconds)
    if s >= 86400:
        return f"{s // 86400} d {s % 86400 // 3600} h"
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 60} min {s % 60} s" if s >= 60 else f"{s} s"


def served(name: str, store: Store | None = None) -> list[dict[str, Any]]:
    """The fleets serving (or that served) a model, live first, with uptime as text."""
    st = store or default_store("the web UI")
    rows = fleets.fleets_of(st, name)
    for f in rows:
        f["uptime"] = _uptime(f["uptime_s"])
    rank = {"live": 0, "gone": 1, "stopped": 2}
    return sorted(rows, key=lambda f: rank.get(f["state"], 3))


def traffic(
    name: str, window: str = DEFAULT_WINDOW, store: Store | None = None, now: float | None = None
) -> dict[str, Any]:
    """The model's traffic over a window ending now (or at its last logged minute when the window is empty):
    a summary per version and the chart payloads (requests/min, p50/p99 latency, error rate, predictions).

    One query reads the window's rows (at most 168 per version and fleet: the 7d window reads hourly rows); sums
    and quantiles are array operations over the dense histograms (roost.registry.sketch.dense)."""
    st = store or default_store("the web UI")
    window = window if window in WINDOWS else DEFAULT_WINDOW
    span, step = WINDOWS[window], SPAN[window]
    now_min = int((time.time() if now is None else now) // 60)
    last = fleets.last_minute(st, name)
    if last is None:
        return {"window": window, "windows": list(WINDOWS), "empty": True, "versions": [], "charts": []}
    end, note = now_min, None
    if last <= now_min - span:
        end = last
        note = f"no logged requests in the last {window}: showing the {window} up to the last one"
    start = (end - span + 1) // step * step
    w = fleets.window(st, name, start, end, span=step)
    order = sorted(set(w.versions), key=lambda x: (len(x), x))
    vidx = np.array([order.index(v) for v in w.versions], dtype=np.int64)
    nv = len(order)

    def per_version(a: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.bincount(vidx, weights=a, minlength=nv) if len(a) else np.zeros(nv)
        return out

    lat_v = np.zeros((nv, w.latency.shape[1]), dtype=np.int64)
    np.add.at(lat_v, vidx, w.latency)
    q = sketch.dense_quantiles(lat_v, w.latency_first, (0.5, 0.99))
    req, est, rows, errs = (per_version(a.astype(np.float64)) for a in (w.requests, w.est_requests, w.rows, w.errors))
    lat_sum = per_version(w.latency_ms_sum)
    summary = []
    for i, v in enumerate(order):
        answered = est[i] + errs[i]
        summary.append(
            {
                "version": v,
                "requests": int(req[i]),
                "est_requests": float(est[i]),
                "rows": int(rows[i]),
                "errors": int(errs[i]),
                "error_rate": float(errs[i] / answered) if answered else None,
                "per_min": float(est[i] / (end - start + 1)),
                "p50": _num(q[i, 0]),
                "p99": _num(q[i, 1]),
                "mean_ms": float(lat_sum[i] / req[i]) if req[i] else None,
            }
        )
    return {
        "window": window,
        "windows": list(WINDOWS),
        "empty": not len(w.versions),
        "note": note,
        "start_ms": start * 60_000,
        "end_ms": (end + 1) * 60_000,
        "step_min": step,
        "versions": summary,
        "pred_name": w.pred_name,
        "charts": _charts(w, order, vidx, start, end, step),
    }


def _num(x: float) -> float | None:
    """A float for a page (None for NaN: no value)."""
    return None if np.isnan(x) else float(x)


def _charts(
    w: fleets.Window, order: list[str], vidx: np.ndarray, start: int, end: int, step: int
) -> list[dict[str, Any]]:
    """Chart payloads (roost.ui.charts' shape, x in ms) of per-version series over the window."""
    xs = np.arange(start, end + 1, step, dtype=np.int64)
    ms = (xs * 60_000).tolist()
    per = " / min" if step == 1 else f" / min ({step}-min buckets)"
    col = (w.minutes - start) // step  # each entry's point
    known = int(w.minutes.max()) if len(w.minutes) else end  # newest point rolled up so far

    def grid(values: np.ndarray) -> np.ndarray:
        """(versions × points) of one value per entry; NaN where a version has no entry at a point."""
        out = np.full((len(order), len(xs)), np.nan)
        out[vidx, col] = values
        return out

    # requests: 0 where nothing was logged, unless the fleets have not rolled that far yet (no false drop to 0);
    # the newest point's span has only partly passed
    rate = grid(w.est_requests / np.maximum(1, np.minimum(step, end - w.minutes + 1)))
    rate[np.isnan(rate) & (xs <= known)[None, :]] = 0.0
    lat = sketch.dense_quantiles(w.latency, w.latency_first, (0.5, 0.99))
    answered = w.est_requests + w.errors
    err = grid(np.where(answered > 0, w.errors / np.where(answered > 0, answered, 1), np.nan))
    pred = sketch.dense_quantiles(w.predictions, w.predictions_first, (0.1, 0.5, 0.9))

    def series(label: str, values: np.ndarray, ident: str) -> list[dict[str, Any]]:
        return [
            {
                "id": f"{ident}-{v}",
                "label": f"v{v} {label}".strip(),
                "steps": ms,
                "values": [None if np.isnan(x) else float(x) for x in values[i]],
            }
            for i, v in enumerate(order)
        ]

    charts: list[dict[str, Any]] = [
        {"key": "requests" + per, "series": series("", rate, "req")},
        {
            "key": "latency p50 / p99 (ms)",
            "series": series("p50", grid(lat[:, 0]), "p50") + series("p99", grid(lat[:, 1]), "p99"),
        },
        {"key": "error rate", "series": series("", err, "err")},
    ]
    if w.pred_name:
        charts.append(
            {
                "key": f"prediction ({w.pred_name}) p10 / p50 / p90",
                "series": series("p10", grid(pred[:, 0]), "pq10")
                + series("p50", grid(pred[:, 1]), "pq50")
                + series("p90", grid(pred[:, 2]), "pq90"),
            }
        )
    for c in charts:
        c["x_type"] = "time"
        c["markers"] = []
        vals = [v for s in c["series"] for v in s["values"] if v is not None]
        lo = min(vals, default=0.0)
        hi = max(vals, default=1.0)
        c["y_range"] = [min(0.0, lo), hi * 1.1 if hi > 0 else 1.0]
    return charts

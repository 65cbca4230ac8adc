"""The model page's production side: the headline metric first, the fleets serving the model, and its traffic.

Traffic comes from the minute rollups in the registry (roost.registry.fleets, written by the serving fleets from
their request logs): a page reads at most MAX_POINTS rows per version, never a log file.
"""

from __future__ import annotations

import time
from typing import Any

from roost.registry import fleets, sketch
from roost.registry.fleets import Rollup
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


def _quantile(h: sketch.Hist, q: float) -> float | None:
    return sketch.quantile(h, q) if h else None


def traffic(
    name: str, window: str = DEFAULT_WINDOW, store: Store | None = None, now: float | None = None
) -> dict[str, Any]:
    """The model's traffic over a window ending now (or at its last logged minute when the window is empty):
    a summary per version and the chart payloads (requests/min, p50/p99 latency, error rate, predictions)."""
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
    rows = fleets.traffic(st, name, start, end, span=step)
    per_version: dict[str, Rollup] = {}
    buckets: dict[str, dict[int, Rollup]] = {}
    pred_name = None
    for r in rows:
        v, roll = r["version"], r["rollup"]
        per_version.setdefault(v, Rollup()).add(roll)
        buckets.setdefault(v, {})[r["minute"]] = roll
        pred_name = pred_name or roll.pred_name
    summary = []
    for v in sorted(per_version, key=lambda x: (len(x), x)):
        t = per_version[v]
        answered = t.requests + t.errors
        summary.append(
            {
                "version": v,
                "requests": t.requests,
                "rows": t.rows,
                "errors": t.errors,
                "error_rate": t.errors / answered if answered else None,
                "per_min": t.requests / (end - start + 1),
                "p50": _quantile(t.latency, 0.5),
                "p99": _quantile(t.latency, 0.99),
                "mean_ms": t.latency_ms_sum / t.requests if t.requests else None,
            }
        )
    return {
        "window": window,
        "windows": list(WINDOWS),
        "empty": not rows,
        "note": note,
        "start_ms": start * 60_000,
        "end_ms": (end + 1) * 60_000,
        "step_min": step,
        "versions": summary,
        "pred_name": pred_name,
        "charts": _charts(buckets, start, end, step, pred_name),
    }


def _charts(
    buckets: dict[str, dict[int, Rollup]], start: int, end: int, step: int, pred_name: str | None
) -> list[dict[str, Any]]:
    """Chart payloads (roost.ui.charts' shape, x in ms) of per-version series over the window."""
    xs = list(range(start, end + 1, step))
    ms = [x * 60_000 for x in xs]
    per = " / min" if step == 1 else f" / min ({step}-min buckets)"

    def series(label: str, fn: Any, ident: str) -> list[dict[str, Any]]:
        out = []
        for v in sorted(buckets, key=lambda x: (len(x), x)):
            got = buckets[v]
            out.append(
                {
                    "id": f"{ident}-{v}",
                    "label": f"v{v} {label}".strip(),
                    "steps": ms,
                    "values": [fn(got.get(x), x, v) for x in xs],
                }
            )
        return out

    known = max((x for got in buckets.values() for x in got), default=end)  # newest point rolled up so far

    def rate(r: Rollup | None, x: int, v: str) -> float | None:
        if r is None:  # nothing logged: 0, unless the fleets have not rolled that far yet (no false drop to 0)
            return None if x > known else 0.0
        return r.requests / max(1, min(step, end - x + 1))  # the newest point's span has only partly passed

    lat = {v: {x: sketch.quantiles(r.latency, (0.5, 0.99)) for x, r in got.items()} for v, got in buckets.items()}
    pred = {
        v: {x: sketch.quantiles(r.predictions, (0.1, 0.5, 0.9)) for x, r in got.items()} for v, got in buckets.items()
    }

    def q(i: int) -> Any:  # i-th latency quantile (p50, p99) of version v's point x
        return lambda r, x, v: None if r is None else lat[v][x][i]

    def err(r: Rollup | None, x: int, v: str) -> float | None:
        if r is None or not (r.requests + r.errors):
            return None
        return r.errors / (r.requests + r.errors)

    def pq(i: int) -> Any:  # i-th prediction quantile (p10, p50, p90)
        return lambda r, x, v: None if r is None else pred[v][x][i]

    charts: list[dict[str, Any]] = [
        {"key": "requests" + per, "series": series("", rate, "req")},
        {"key": "latency p50 / p99 (ms)", "series": series("p50", q(0), "p50") + series("p99", q(1), "p99")},
        {"key": "error rate", "series": series("", err, "err")},
    ]
    if pred_name:
        charts.append(
            {
                "key": f"prediction ({pred_name}) p10 / p50 / p90",
                "series": series("p10", pq(0), "pq10") + series("p50", pq(1), "pq50") + series("p90", pq(2), "pq90"),
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

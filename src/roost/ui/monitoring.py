"""Monitoring history for the UI: drift, skew, shadow and analysis checks over time, one point per monitor run.

Reads the monitor runs roost.monitor.record writes (one bounded search per check: the newest HISTORY runs) and
turns them into the chart payloads static/chart.js draws, with each check's threshold as a horizontal line.
Used by the model page's monitoring section (templates/_monitoring.html), /models/{name}/monitoring and the
feature view pages.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from roost.errors import NotFoundError, RoostError
from roost.ui.charts import honest_range

if TYPE_CHECKING:
    from roost.ui.app import UI

log = logging.getLogger(__name__)

HISTORY = 200  # monitor runs read per check and chart (the newest)
MAX_CHARTS = 24  # features charted per check (the worst first)
P_VALUE_STATS = ("ks_pvalue", "chi2_pvalue")


def _ms(t: Any) -> float | None:
    """A run time as Unix milliseconds (what chart.js puts on a time axis)."""
    if isinstance(t, datetime):
        return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp() * 1000.0
    return None


# what each check's charts read: (metric key prefixes, param key prefixes, params of the newest run only)
READS: dict[str, tuple[tuple[str, ...], tuple[str, ...], bool]] = {
    "drift": (("drift.score.", "drift.drifted."), ("drift.threshold.", "drift.method."), True),
    "skew": (("skew.rate.", "skew.compared.", "skew.stale_online."), ("skew.ref.", "skew.max_mismatch"), False),
    "shadow": (("shadow.agreement",), ("shadow.min_agreement",), True),
    "analysis": (("analysis.",), (), True),
}


def monitor_runs(
    model: str | None = None, check: str = "drift", view: str | None = None, limit: int = HISTORY
) -> list[dict[str, Any]]:
    """The newest `limit` monitor runs of one check (of a model, or reading a view), oldest first, with the
    metrics and params its charts use (roost.registry.reads.run_history: a bounded read)."""
    from roost.monitor.record import KIND, PREFIX, experiment_for
    from roost.registry.reads import experiment_names, run_history

    conds = [f"tags.roost.kind = 'monitor' and tags.roost.monitor.check = '{check}'"]
    if view:
        conds.append(f"tags.`roost.monitor.view.{view}` = '1'")
    names = experiment_names()
    if model:
        scope = [experiment_for(model)] if experiment_for(model) in names else []
    else:  # every monitor experiment (by name: no scan of other experiments' runs)
        scope = [n for n in names if n == KIND or n.startswith(PREFIX)]
    if not scope:
        return []
    metrics, params, newest = READS[check]
    return run_history(" and ".join(conds), scope, limit, metrics, params, params_newest=1 if newest else None)


def _suffixes(runs: list[dict[str, Any]], prefix: str) -> list[str]:
    """Feature names of metrics `prefix<feature>` across runs, in first-seen order."""
    seen: dict[str, None] = {}
    for r in runs:
        for k in r["metrics"]:
            if k.startswith(prefix):
                seen.setdefault(k[len(prefix) :], None)
    return list(seen)


def _series(runs: list[dict[str, Any]], key: str, sid: str, label: str) -> dict[str, Any]:
    """One chart line: a point per run that logged `key`, at the run's start time."""
    steps, values = [], []
    for r in runs:
        v, t = r["metrics"].get(key), _ms(r.get("start_time"))
        if v is not None and t is not None:
            steps.append(t)
            values.append(v)
    return {"id": sid, "label": label, "steps": steps, "values": values}


def _chart(key: str, title: str, series: list[dict[str, Any]], threshold: Any, note: str) -> dict[str, Any]:
    """A chart payload for chart.js: time x axis, a dot per point, the threshold as a line."""
    thr = float(threshold) if isinstance(threshold, (int, float)) and not isinstance(threshold, bool) else None
    values = [v for s in series for v in s["values"]] + ([thr] if thr is not None else [])
    return {
        "key": key,
        "title": title,
        "x_type": "time",
        "y_range": honest_range(values),
        "series": series,
        "markers": [],
        "dots": True,
        "thresholds": [] if thr is None else [{"value": thr, "label": note}],
    }


def drift_charts(runs: list[dict[str, Any]], label: str = "") -> list[dict[str, Any]]:
    """Per feature: the deciding drift statistic over time, with the threshold it is judged against."""
    charts = []
    latest = runs[-1] if runs else None
    for f in _suffixes(runs, "drift.score."):
        params: dict[str, Any] = next((r["params"] for r in reversed(runs) if f"drift.score.{f}" in r["metrics"]), {})
        method, thr = params.get(f"drift.method.{f}", ""), params.get(f"drift.threshold.{f}")
        below = method in ("ks", "chi2")
        note = f"drift {'below' if below else 'above'} {thr}" if thr is not None else ""
        title = f"{f} · {method}" if method else f
        chart = _chart(f"drift.score.{f}", title, [_series(runs, f"drift.score.{f}", label, label)], thr, note)
        chart["feature"] = f
        chart["drifted"] = bool(latest and latest["metrics"].get(f"drift.drifted.{f}"))
        charts.append(chart)
    charts.sort(key=lambda c: not c["drifted"])  # drifted features first
    return charts[:MAX_CHARTS]


def skew_charts(runs: list[dict[str, Any]], view: str | None = None) -> list[dict[str, Any]]:
    """Per served feature (of one view, when given): its mismatch rate over time, one line per model."""
    by_ref: dict[str, dict[str, Any]] = {}
    for f in _suffixes(runs, "skew.rate."):
        for r in runs:
            ref = r["params"].get(f"skew.ref.{f}")
            if ref is None or (view is not None and not str(ref).startswith(f"{view}:")):
                continue
            entry = by_ref.setdefault(str(ref), {"inputs": {}, "thr": None})
            model = r["tags"].get("roost.monitor.model", "")
            entry["inputs"][(model, f)] = None
            entry["thr"] = r["params"].get("skew.max_mismatch", entry["thr"])
    charts = []
    for ref, entry in by_ref.items():
        series = []
        for model, f in entry["inputs"]:
            mine = [r for r in runs if r["tags"].get("roost.monitor.model", "") == model]
            label = f"{model} · input {f}" if model else f"input {f}"
            series.append(_series(mine, f"skew.rate.{f}", f"{model}:{f}", label))
        thr = entry["thr"]
        note = f"max mismatch {thr}" if thr is not None else ""
        title = ref if view is None else ref.split(":", 1)[1]
        chart = _chart(f"skew.rate.{ref}", f"{title} · mismatch rate", series, thr, note)
        chart["feature"] = ref
        charts.append(chart)
    return charts[:MAX_CHARTS]


def shadow_charts(runs: list[dict[str, Any]], label: str = "") -> list[dict[str, Any]]:
    """Shadow agreement over time, with the gate's minimum agreement when one was set."""
    if not any("shadow.agreement" in r["metrics"] for r in runs):
        return []
    thr = next(r["params"].get("shadow.min_agreement") for r in reversed(runs) if "shadow.agreement" in r["metrics"])
    note = f"min agreement {thr}" if thr is not None else ""
    return [
        _chart("shadow.agreement", "shadow agreement", [_series(runs, "shadow.agreement", label, label)], thr, note)
    ]


def analysis_charts(runs: list[dict[str, Any]], label: str = "", most: int = 4) -> list[dict[str, Any]]:
    """The model analysis's overall metrics over time (no threshold)."""
    keys = [k for k in _suffixes(runs, "analysis.") if k != "rows"][:most]
    return [_chart(f"analysis.{k}", k, [_series(runs, f"analysis.{k}", label, label)], None, "") for k in keys]


def _latest_skew(runs: list[dict[str, Any]], view: str | None = None) -> list[dict[str, Any]]:
    """The newest skew result per (model, served feature): rate, threshold, values compared, run."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for r in reversed(runs):
        model = r["tags"].get("roost.monitor.model", "")
        for f in (k[len("skew.rate.") :] for k in r["metrics"] if k.startswith("skew.rate.")):
            ref = str(r["params"].get(f"skew.ref.{f}", ""))
            if (view is not None and not ref.startswith(f"{view}:")) or (model, f) in seen:
                continue
            rate, thr = r["metrics"][f"skew.rate.{f}"], r["params"].get("skew.max_mismatch")
            seen[(model, f)] = {
                "model": model,
                "feature": f,
                "ref": ref,
                "rate": rate,
                "threshold": thr,
                "failing": thr is not None and rate > float(thr),
                "compared": r["metrics"].get(f"skew.compared.{f}"),
                "stale": r["metrics"].get(f"skew.stale_online.{f}"),
                "run_id": r["run_id"],
                "when": r.get("start_time"),
                "version": r["tags"].get("roost.monitor.version", ""),
            }
    return sorted(seen.values(), key=lambda s: (not s["failing"], s["model"], s["feature"]))


def model_monitoring(name: str) -> dict[str, Any]:
    """Everything the model page's monitoring section shows: latest verdicts and the charts over time."""
    drift = monitor_runs(name, "drift")
    skew = monitor_runs(name, "skew")
    shadow = monitor_runs(name, "shadow")
    analysis = monitor_runs(name, "analysis")
    latest = drift[-1:] + skew[-1:] + shadow[-1:] + analysis[-1:]
    latest.sort(key=lambda r: _ms(r.get("start_time")) or 0.0, reverse=True)
    return {
        "model": name,
        "runs": len(drift) + len(skew) + len(shadow) + len(analysis),
        "latest": [
            {
                "check": r["tags"].get("roost.monitor.check", ""),
                "verdict": r["tags"].get("roost.monitor.verdict", ""),
                "version": r["tags"].get("roost.monitor.version", ""),
                "views": r["tags"].get("roost.monitor.views", ""),
                "run_id": r["run_id"],
                "when": r.get("start_time"),
            }
            for r in latest
        ],
        "drift": drift_charts(drift, name),
        "drift_runs": len(drift),
        "skew": skew_charts(skew),
        "skew_latest": _latest_skew(skew),
        "shadow": shadow_charts(shadow, name),
        "analysis": analysis_charts(analysis, name),
    }


def view_skew(view: str) -> dict[str, Any]:
    """The skew results of models that read a view: the latest per served field and the rates over time."""
    runs = monitor_runs(check="skew", view=view)
    return {"latest": _latest_skew(runs, view), "charts": skew_charts(runs, view), "runs": len(runs)}


def section(name: str) -> dict[str, Any] | None:
    """The model page's monitoring section data, or None when it cannot be read (the page still renders)."""
    try:
        return model_monitoring(name)
    except RoostError as exc:
        log.warning("monitoring of %s not shown: %s", name, exc.message)
        return None


def routes(ui: UI) -> list[Route]:
    """/models/{name}/monitoring: the monitoring section of a model on a page of its own."""

    async def monitoring(request: Request) -> Response:
        from roost.registry import api as reg

        name = request.path_params["name"]
        if name not in {m["name"] for m in reg.list_models()}:
            return ui.error(request, NotFoundError(f"model {name!r} is not registered"), 404)
        return ui.render(request, "monitoring.html", name=name, monitoring=model_monitoring(name))

    return [Route("/models/{name}/monitoring", monitoring)]

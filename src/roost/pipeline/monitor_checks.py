"""One monitor check of a model, run from options (what a schedule's `monitor` pipeline task does) and recorded.

Defaults: request logs are the workspace's (.roost/request_logs, the model's folder), the drift reference is the
training reference of `MODEL@latest`, and `window_minutes` limits the logs to the last N minutes.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from roost.errors import RoostError

log = logging.getLogger(__name__)


def _logs(opts: dict[str, Any], key: str = "logs") -> str:
    """The request-log folder to read (the option, else the workspace's)."""
    if opts.get(key):
        return str(opts[key])
    from roost import workspace
    from roost.lineage import REQUEST_LOG_SUBDIR

    return str(workspace.current().state_dir / REQUEST_LOG_SUBDIR)


def _since(opts: dict[str, Any]) -> str | None:
    """The start of the window (`window_minutes` before now), ISO, or None for all logs."""
    w = opts.get("window_minutes")
    if w in (None, ""):
        return None
    return (datetime.now(UTC) - timedelta(minutes=float(w))).isoformat()


def _version(ref: str) -> int | None:
    """The version a model reference points to now (None when it cannot be resolved)."""
    from roost.registry.backend import default_store

    try:
        return default_store().lookup_version(ref).version
    except (RoostError, AttributeError):
        return None


def run_check(model: str, check: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one check (drift, skew, shadow, analysis) of `model`, record it as a monitor run; returns its summary."""
    from roost.lineage import model_views
    from roost.monitor import record

    opts = dict(options or {})
    rep: Any
    served = str(opts.get("log_model") or model)
    if check == "drift":
        from roost.monitor.api import drift
        from roost.monitor.html_report import drift_html

        ref = str(opts.get("reference") or f"{model}@latest")
        thr = opts.get("threshold")
        rep = drift(
            ref,
            str(opts.get("current") or _logs(opts, "current")),
            features=opts.get("features") or None,
            method=str(opts.get("method") or "auto"),
            thresholds=None if thr is None else dict.fromkeys(("ks", "chi2", "wasserstein", "js", "psi"), float(thr)),
            drift_share=float(opts.get("drift_share") or 0.5),
            model=served,
            since=_since(opts),
        )
        version = _version(ref) if "@" in ref or "/" in ref else None
        views = model_views(model, version)
        run_id = record.record_drift(rep, model, version=version, views=views, html=drift_html(rep))
        verdict = "drift" if rep.dataset_drift else "ok"
    elif check == "skew":
        from roost.monitor.skew import skew
        from roost.monitor.skew_report import skew_html

        rep = skew(_logs(opts), model=served, since=_since(opts), max_mismatch=float(opts.get("max_mismatch", 0.01)))
        run_id = record.record_skew(rep, model, html=skew_html(rep))
        verdict = "skew" if rep.failed else "ok"
    elif check == "shadow":
        from roost.monitor.shadow import shadow_summary

        mina, maxd = opts.get("min_agreement"), opts.get("max_diff")
        rep = shadow_summary(_logs(opts), served, _since(opts), min_agreement=mina, max_diff=maxd)
        views = model_views(model)
        run_id = record.record_shadow(rep, model, views, min_agreement=mina, max_diff=maxd)
        verdict = "fail" if rep.failed else "ok"
    elif check == "analysis":
        from roost.monitor.analysis import analyze
        from roost.monitor.api import analysis_frame
        from roost.monitor.html_report import analysis_html

        mref = None if opts.get("run") else str(opts.get("model_ref") or f"{model}@latest")
        frame, source, label = analysis_frame(
            opts.get("run"), mref, opts.get("data"), opts.get("labels"), None, opts.get("label")
        )
        thr = float(opts.get("threshold", 0.5))
        an = analyze(frame, label, threshold=thr, source=source)
        version = _version(mref) if mref else None
        run_id = record.record_analysis(
            an, model, version, model_views(model, version), threshold=thr, html=analysis_html(an)
        )
        verdict = "ok"
    else:
        raise RoostError(f"unknown monitor check {check!r}", hint="drift, skew, shadow or analysis")
    log.info("monitor %s of %s: %s (run %s)", check, model, verdict, run_id)
    return {"model": model, "check": check, "run_id": run_id, "verdict": verdict}

"""Monitor runs: drift, skew, shadow and analysis checks recorded as runs, so each check adds a point to a history.

Every check is a run of kind `monitor` in the experiment `monitor/<model>` (`monitor` without a model), tagged with
the check (`roost.monitor.check`), the model, its version and the feature views it read (`roost.monitor.views`,
plus one `roost.monitor.view.<view>` tag each, so a view's page finds them with one filter). Numbers are metrics
named per feature — `drift.score.<f>` (the deciding statistic), `drift.<statistic>.<f>`, `skew.rate.<f>`,
`shadow.agreement`, `analysis.<metric>` — logged at step = the check's Unix time; thresholds are params.
The UI charts them over time (roost.ui.monitoring), one point per run.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

KIND = "monitor"
CHECKS = ("drift", "skew", "shadow", "analysis")
PREFIX = "monitor/"


def experiment_for(model: str | None) -> str:
    """The experiment that holds a model's monitor runs."""
    return f"{PREFIX}{model}" if model else KIND


def _finite(v: Any) -> bool:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return False
    return x == x and x not in (float("inf"), float("-inf"))


def record(
    check: str,
    model: str | None,
    metrics: dict[str, float],
    params: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    version: str | int | None = None,
    views: list[str] | None = None,
    files: dict[str, str] | None = None,
    experiment: str | None = None,
    at: float | None = None,
) -> str:
    """Record one monitor check as a run: metrics at step = `at` (Unix seconds, default now); returns its id."""
    from roost.registry.api import start_run

    views = sorted(set(views or []))
    all_tags = {
        "roost.kind": KIND,
        "roost.monitor.check": check,
        **({"roost.monitor.model": model} if model else {}),
        **({"roost.monitor.version": str(version)} if version not in (None, "") else {}),
        **({"roost.monitor.views": ",".join(views)} if views else {}),
        **{f"roost.monitor.view.{v}": "1" for v in views},
        **(tags or {}),
    }
    step = int(at if at is not None else time.time())
    kept = {k: float(v) for k, v in metrics.items() if _finite(v)}
    name = f"{check} {model or ''}".strip()
    with start_run(experiment=experiment or experiment_for(model), name=name, params=params, tags=all_tags) as run:
        if kept:
            run.log_metrics(kept, step=step)
        if files:
            with tempfile.TemporaryDirectory(prefix="roost-monitor-") as tmp:
                for fname, text in files.items():
                    p = Path(tmp) / fname
                    p.write_text(text, encoding="utf-8")
                    run.log_artifact(p, fname)
    log.info("recorded %s check of %s as run %s", check, model or "(no model)", run.id)
    return run.id


def drift_metrics(report: Any) -> tuple[dict[str, float], dict[str, Any]]:
    """(metrics, params) of a drift report: the deciding score and every statistic per feature, thresholds."""
    metrics: dict[str, float] = {
        "drift_share": report.share,
        "features_drifted": float(report.n_drifted),
        "dataset_drift": float(report.dataset_drift),
        "rows_current": float(report.rows_cur),
        "rows_reference": float(report.rows_ref),
    }
    params: dict[str, Any] = {"drift.share_threshold": report.drift_share}
    for f in report.features:
        if f.score is not None:
            metrics[f"drift.score.{f.feature}"] = f.score
            metrics[f"drift.drifted.{f.feature}"] = float(f.drifted)
        for stat, value in f.stats.items():
            metrics[f"drift.{stat}.{f.feature}"] = value
        if f.method is not None:
            params[f"drift.method.{f.feature}"] = f.method
        if f.threshold is not None:
            params[f"drift.threshold.{f.feature}"] = f.threshold
    return metrics, params


def record_drift(
    report: Any,
    model: str | None = None,
    version: str | int | None = None,
    views: list[str] | None = None,
    html: str | None = None,
    experiment: str | None = None,
) -> str:
    """Record a drift report (roost.monitor.drift_compute.DriftReport) as a monitor run."""
    metrics, params = drift_metrics(report)
    tags = {
        "roost.monitor.verdict": "drift" if report.dataset_drift else "ok",
        "roost.monitor.reference": str(report.reference)[:5000],
        "roost.monitor.current": str(report.current)[:5000],
    }
    files = {"drift.json": json.dumps(report.to_dict(bins=True), default=str)}
    if html is not None:
        files["drift.html"] = html
    return record("drift", model, metrics, params, tags, version, views, files, experiment)


def skew_views(report: Any) -> list[str]:
    """The feature views a skew report compared (from each feature's `view:field` ref)."""
    return sorted({f.ref.split(":", 1)[0] for f in report.features if ":" in f.ref})


def record_skew(
    report: Any,
    model: str | None = None,
    version: str | int | None = None,
    html: str | None = None,
    experiment: str | None = None,
) -> str:
    """Record a skew report (roost.monitor.skew.SkewReport) as a monitor run; the views are those compared."""
    from roost.monitor.skew import CATEGORIES

    metrics: dict[str, float] = {
        "rows_compared": float(report.rows_compared),
        "features_failing": float(len(report.failing)),
    }
    params: dict[str, Any] = {"skew.max_mismatch": report.max_mismatch, "skew.rtol": report.rtol}
    for f in report.features:
        metrics[f"skew.rate.{f.feature}"] = f.mismatch_rate
        metrics[f"skew.compared.{f.feature}"] = float(f.compared)
        for cat, n in zip(CATEGORIES, f.counts):
            if cat != "ok":
                metrics[f"skew.{cat}.{f.feature}"] = float(n)
        params[f"skew.ref.{f.feature}"] = f.ref
    if version in (None, ""):
        served = sorted({v for f in report.features for v in f.by_version})
        version = served[-1] if len(served) == 1 else None
    tags = {"roost.monitor.verdict": "skew" if report.failed else "ok", "roost.monitor.current": report.source[:5000]}
    files = {"skew.json": json.dumps(report.to_dict(), default=str)}
    if html is not None:
        files["skew.html"] = html
    return record("skew", model, metrics, params, tags, version, skew_views(report), files, experiment)


def record_shadow(
    report: Any,
    model: str | None = None,
    views: list[str] | None = None,
    min_agreement: float | None = None,
    max_diff: float | None = None,
    experiment: str | None = None,
) -> str:
    """Record a shadow summary (roost.monitor.shadow.ShadowReport): agreement overall and per version pair."""
    metrics: dict[str, float] = {"shadow.requests": float(sum(p.requests for p in report.pairs))}
    agreed = [(p.agreement, p.rows) for p in report.pairs if p.agreement is not None]
    if agreed and sum(n for _, n in agreed):
        metrics["shadow.agreement"] = sum(a * n for a, n in agreed) / sum(n for _, n in agreed)
    for p in report.pairs:
        pair = f"v{p.primary_version}_v{p.shadow_version}"
        if p.agreement is not None:
            metrics[f"shadow.agreement.{pair}"] = p.agreement
        for q, v in p.abs_diff.items():
            metrics[f"shadow.abs_diff_{q}.{pair}"] = v
    params = {
        k: v for k, v in (("shadow.min_agreement", min_agreement), ("shadow.max_diff", max_diff)) if v is not None
    }
    model = model or (report.pairs[0].model if len({p.model for p in report.pairs}) == 1 else None)
    version = report.pairs[0].primary_version if len({p.primary_version for p in report.pairs}) == 1 else None
    tags = {"roost.monitor.verdict": "fail" if report.failed else "ok"}
    files = {"shadow.json": json.dumps(report.to_dict(), default=str)}
    return record("shadow", model, metrics, params, tags, version, views, files, experiment)


def record_analysis(
    an: Any,
    model: str | None = None,
    version: str | int | None = None,
    views: list[str] | None = None,
    threshold: float | None = None,
    html: str | None = None,
    experiment: str | None = None,
) -> str:
    """Record a model analysis (roost.monitor.analysis.Analysis): its overall metrics as `analysis.<metric>`."""
    metrics = {f"analysis.{k}": v for k, v in an.overall.items() if _finite(v)}
    metrics["analysis.rows"] = float(an.rows)
    params: dict[str, Any] = {"analysis.label": an.label, "analysis.score": an.score, "analysis.task": an.task}
    if threshold is not None:
        params["analysis.threshold"] = threshold
    files = {"analysis.json": json.dumps(an.to_dict(), default=str)}
    if html is not None:
        files["analysis.html"] = html
    tags = {"roost.monitor.current": str(an.source)[:5000]}
    return record("analysis", model, metrics, params, tags, version, views, files, experiment)

"""Drift for alerting: Prometheus gauges (textfile-collector `.prom` file or prometheus_client) and exit codes."""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_DRIFT = 1  # exit 2 stays reserved for user errors (RoostError)

GAUGES = {
    "roost_drift_dataset_drift": "1 when the share of drifted features reached the threshold",
    "roost_drift_share": "share of tested features that drifted",
    "roost_drift_features_drifted": "number of drifted features",
    "roost_drift_feature_score": "drift score of a feature under its method",
    "roost_drift_feature_threshold": "threshold of the feature's drift method",
    "roost_drift_feature_drifted": "1 when the feature drifted",
    "roost_drift_report_timestamp_seconds": "when the drift report was computed (Unix time)",
}


def _esc(v: str) -> str:
    """A Prometheus label value, escaped."""
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(d: dict[str, str]) -> str:
    """Labels in the exposition format."""
    return "{" + ",".join(f'{k}="{_esc(v)}"' for k, v in d.items()) + "}" if d else ""


def _num(v: float | None) -> str:
    """A sample value (NaN for unknown)."""
    if v is None or not math.isfinite(float(v)):
        return "NaN"
    return repr(float(v))


def samples(report: Any, model: str = "") -> list[tuple[str, dict[str, str], float | None]]:
    """(metric, labels, value) for every gauge of a drift report."""
    base = {"model": model} if model else {}
    out: list[tuple[str, dict[str, str], float | None]] = [
        ("roost_drift_dataset_drift", base, float(report.dataset_drift)),
        ("roost_drift_share", base, report.share),
        ("roost_drift_features_drifted", base, float(report.n_drifted)),
        ("roost_drift_report_timestamp_seconds", base, time.time()),
    ]
    for f in report.tested:
        lab = {**base, "feature": f.feature, "method": f.method or "none"}
        out.append(("roost_drift_feature_score", lab, f.score))
        out.append(("roost_drift_feature_threshold", lab, f.threshold))
        out.append(("roost_drift_feature_drifted", {**base, "feature": f.feature}, float(f.drifted)))
    return out


def prometheus_text(report: Any, model: str = "") -> str:
    """The report's gauges in the Prometheus text exposition format."""
    lines: list[str] = []
    seen: set[str] = set()
    order = list(GAUGES)
    for name, labels, value in sorted(samples(report, model), key=lambda s: order.index(s[0])):
        if name not in seen:
            seen.add(name)
            lines += [f"# HELP {name} {GAUGES[name]}", f"# TYPE {name} gauge"]
        lines.append(f"{name}{_labels(labels)} {_num(value)}")
    return "\n".join(lines) + "\n"


def write_prom(report: Any, path: str | Path, model: str = "") -> Path:
    """Write the gauges for node_exporter's textfile collector (atomically: temp file, then rename)."""
    from roost.errors import RoostError

    p = Path(path)
    if p.is_dir():
        raise RoostError(
            f"{p} is a folder, not a .prom file",
            hint=f"name the file in it, e.g. {p / 'roost_drift.prom'} (node_exporter reads every *.prom there)",
        )
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(prometheus_text(report, model))
        os.replace(tmp, p)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise RoostError(f"cannot write {p}: {exc.strerror or exc}", hint="pass a writable file path") from None
    return p


def drift_gauges(report: Any, registry: Any = None, model: str = "") -> dict[str, Any]:
    """prometheus_client Gauges (in `registry`, a fresh CollectorRegistry by default) set from the report."""
    from prometheus_client import CollectorRegistry, Gauge

    reg = registry if registry is not None else CollectorRegistry()
    gauges: dict[str, Any] = {}
    for name, labels, value in samples(report, model):
        g = gauges.get(name)
        if g is None:
            g = gauges[name] = Gauge(name, GAUGES[name], list(labels), registry=reg)
        (g.labels(**labels) if labels else g).set(float("nan") if value is None else value)
    return gauges


def exit_code(report: Any) -> int:
    """EXIT_DRIFT when the dataset drifted, else EXIT_OK."""
    return EXIT_DRIFT if report.dataset_drift else EXIT_OK

"""Monitoring: mergeable profiles, drift statistics and verdicts, serving skew, model analysis, reports, alerts.

Importing this package imports no heavy library; each name loads its module on first use.
"""

from __future__ import annotations

from roost._lazy import lazy_api

_API = {
    "Profile": "roost.monitor.profile:Profile",
    "ColumnProfile": "roost.monitor.profile:ColumnProfile",
    "profile_frame": "roost.monitor.profile:profile_frame",
    "merge_profiles": "roost.monitor.profile:merge_profiles",
    "drift": "roost.monitor.api:drift",
    "compare": "roost.monitor.drift_compute:compare",
    "DriftReport": "roost.monitor.drift_compute:DriftReport",
    "write_run_reference": "roost.monitor.api:write_run_reference",
    "log_skew": "roost.monitor.api:log_skew",
    "read_request_logs": "roost.monitor.sources:read_request_logs",
    "analyze": "roost.monitor.analysis:analyze",
    "analysis_frame": "roost.monitor.api:analysis_frame",
    "training_overlap": "roost.monitor.overlap:training_overlap",
    "drift_html": "roost.monitor.html_report:drift_html",
    "prometheus_text": "roost.monitor.alerts:prometheus_text",
    "write_prom": "roost.monitor.alerts:write_prom",
    "drift_gauges": "roost.monitor.alerts:drift_gauges",
    "skew": "roost.monitor.skew:skew",
    "SkewReport": "roost.monitor.skew:SkewReport",
}

__all__ = sorted(_API)

__getattr__, __dir__ = lazy_api(__name__, _API)

"""Monitoring: mergeable profiles, drift statistics and verdicts, model analysis, HTML/JSON reports, alerts.

Importing this package imports no heavy library; each name loads its module on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

_API = {
    "Profile": "roost.monitor.profile:Profile",
    "ColumnProfile": "roost.monitor.profile:ColumnProfile",
    "profile_frame": "roost.monitor.profile:profile_frame",
    "merge_profiles": "roost.monitor.profile:merge_profiles",
    "drift": "roost.monitor.api:drift",
    "compare": "roost.monitor.drift:compare",
    "DriftReport": "roost.monitor.drift:DriftReport",
    "write_run_reference": "roost.monitor.api:write_run_reference",
    "read_request_logs": "roost.monitor.sources:read_request_logs",
    "analyze": "roost.monitor.analysis:analyze",
    "drift_html": "roost.monitor.report:drift_html",
    "prometheus_text": "roost.monitor.alerts:prometheus_text",
    "write_prom": "roost.monitor.alerts:write_prom",
    "drift_gauges": "roost.monitor.alerts:drift_gauges",
    "engagement_demo": "roost.monitor.demo:engagement_demo",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        mod, attr = _API[name].split(":")
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'roost.monitor' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))

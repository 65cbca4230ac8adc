"""Model serving: a fleet of workers behind one port speaking KServe V2 and TF-Serving REST.

`roost.serve.serve(ServeConfig(models=[...]))` runs the fleet (what `roost serve` does);
`roost.serve.create_app([...])` gives an in-process ASGI app. Nothing here imports torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_API = {
    "ServeConfig": "roost.serve.config:ServeConfig",
    "serve": "roost.serve.fleet:serve",
    "create_app": "roost.serve.worker:create_app",
    "FeatureFetcher": "roost.serve.features:FeatureFetcher",
    "alert_rules": "roost.serve.metrics:alert_rules",
    "write_alert_rules": "roost.serve.metrics:write_alert_rules",
}


def __getattr__(name: str) -> Any:
    if name in _API:
        mod, attr = _API[name].split(":")
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'roost.serve' has no attribute {name!r}")


__all__ = list(_API)

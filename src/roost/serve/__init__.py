"""Model serving: a fleet of workers behind one port speaking KServe V2 and TF-Serving REST.

`roost.serve.serve(ServeConfig(models=[...]))` runs the fleet (what `roost serve` does);
`roost.serve.create_app([...])` gives an in-process ASGI app. Nothing here imports torch.
"""

from __future__ import annotations

from roost._lazy import lazy_api

_API = {
    "ServeConfig": "roost.serve.config:ServeConfig",
    "serve": "roost.serve.fleet:serve",
    "create_app": "roost.serve.worker:create_app",
    "FeatureFetcher": "roost.serve.features:FeatureFetcher",
    "alert_rules": "roost.serve.metrics:alert_rules",
    "write_alert_rules": "roost.serve.metrics:write_alert_rules",
}


__getattr__, __dir__ = lazy_api(__name__, _API)

__all__ = list(_API)

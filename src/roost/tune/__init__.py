"""Tuning: search spaces, Optuna samplers behind roost's `auto` choice, a persisted ask/tell engine, its HTTP
service and client, and `tune()`, which runs trials as child runs of a tuning run.

Importing this package is cheap: Optuna, Starlette and httpx load on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

_API = {
    "Client": "roost.tune.client:Client",
    "Engine": "roost.tune.engine:Engine",
    "Space": "roost.tune.space:Space",
    "SpaceError": "roost.tune.space:SpaceError",
    "tune": "roost.tune.runner:tune",
    "Pruned": "roost.tune.runner:Pruned",
    "TrialContext": "roost.tune.runner:TrialContext",
    "TuneResult": "roost.tune.runner:TuneResult",
    "create_app": "roost.tune.service:create_app",
    "load_config": "roost.tune.config:load",
}


def __getattr__(name: str) -> Any:
    if name in _API:
        mod, attr = _API[name].split(":")
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'roost.tune' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))

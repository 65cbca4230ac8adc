"""roost feature store: definitions, point-in-time training sets, materialisation and online reads.

Names load lazily so `import roost.features` stays fast (no DuckDB, Arrow or pandas until used).
"""
from __future__ import annotations

import importlib
from typing import Any

_API = {
    "Entity": "roost.features.definitions:Entity",
    "Source": "roost.features.definitions:Source",
    "FeatureView": "roost.features.definitions:FeatureView",
    "training_set": "roost.features.offline:training_set",
    "online": "roost.features.serving:online",
    "OnlineFetcher": "roost.features.serving:OnlineFetcher",
    "apply": "roost.features.apply:apply",
    "list_definitions": "roost.features.apply:list_definitions",
    "materialize": "roost.features.materialize:materialize",
    "open_online_store": "roost.features.online_stores:open_online_store",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        mod, attr = _API[name].split(":")
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'roost.features' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))

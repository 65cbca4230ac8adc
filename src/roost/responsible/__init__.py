"""Responsible ML: group fairness metrics, feature attributions and model cards.

Importing this package imports no heavy library; each name loads its module on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

_API = {
    "group_metrics": "roost.responsible.fairness:group_metrics",
    "FairnessReport": "roost.responsible.fairness:FairnessReport",
    "fairness": "roost.responsible.api:fairness",
    "explain": "roost.responsible.explain:explain",
    "Explanation": "roost.responsible.explain:Explanation",
    "build_card": "roost.responsible.card:build_card",
    "write_card": "roost.responsible.card:write_card",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        mod, attr = _API[name].split(":")
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'roost.responsible' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))

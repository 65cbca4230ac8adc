"""Responsible ML: group fairness metrics, feature attributions and model cards.

Importing this package imports no heavy library; each name loads its module on first use.
"""

from __future__ import annotations

from roost._lazy import lazy_api

_API = {
    "group_metrics": "roost.responsible.group_fairness:group_metrics",
    "FairnessReport": "roost.responsible.group_fairness:FairnessReport",
    "fairness": "roost.responsible.api:fairness",
    "explain": "roost.responsible.attributions:explain",
    "Explanation": "roost.responsible.attributions:Explanation",
    "build_card": "roost.responsible.card:build_card",
    "write_card": "roost.responsible.card:write_card",
}

__all__ = [
    "Explanation",
    "FairnessReport",
    "build_card",
    "explain",
    "fairness",
    "group_metrics",
    "write_card",
]
assert sorted(__all__) == sorted(_API), "__all__ lists exactly the lazily loaded names"

__getattr__, __dir__ = lazy_api(__name__, _API)
